"""Deprecations: one wording and one removal release for every renamed or moved public name.

A deprecated name keeps working until :data:`REMOVED_IN`, with a :class:`DeprecationWarning`
that says what to use instead (the CHANGELOG lists them under "Deprecated").
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

REMOVED_IN = "0.3.0"


def deprecated(instead: str, *, stacklevel: int = 2) -> None:
    """Warn that a deprecated name was used; ``instead`` says what it is and what to use now.

    ``stacklevel`` counts as :func:`warnings.warn`'s does from the deprecated function: the
    default 2 points the warning at that function's caller.
    """
    warnings.warn(
        f"{instead} (removed in {REMOVED_IN})", DeprecationWarning, stacklevel=stacklevel + 1
    )


def moved_names(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved: ``{name: new_module}``.

    ``from module import name`` keeps working, with a warning naming the new place; the new
    module is imported only then.
    """

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        deprecated(f"{module}.{name} moved to {target}.{name}: import {name} from {target}")
        return getattr(importlib.import_module(target), name)

    return __getattr__
