"""Load user code named by ``path/to/file.py:Name``, ``module:Name`` or an entry point.

:class:`Registry` is the one lookup every kind of plug-in goes through (strategies, policies,
environments): a built-in name, a name in the kind's entry-point group, or a reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from dataloop.errors import RegistryError
from dataloop.resources import checkout_entry_points


def load_module_from_path(path: Path) -> ModuleType:
    """Import a Python file by path; it is registered in ``sys.modules`` under a stable name."""
    path = path.resolve()
    if not path.is_file():
        raise RegistryError(f"no such file: {path}")
    # The full path decides the name, so two files that share a base name never collide.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"dataloop_user_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise RegistryError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def is_reference(spec: str) -> bool:
    """True when ``spec`` names code (a file or ``module:attr``) rather than a registered name."""
    return ":" in spec or spec.endswith(".py") or "/" in spec


def load_reference(spec: str) -> Any:
    """Resolve ``file.py:Name`` or ``package.module:Name`` to the object it names.

    ``file.py`` alone returns the module, for callers that search it themselves.
    """
    target, _, attr = spec.partition(":")
    if target.endswith(".py") or "/" in target:
        module = load_module_from_path(Path(target))
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise RegistryError(f"cannot import module '{target}' (from '{spec}'): {exc}") from exc
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise RegistryError(f"'{target}' has no attribute '{attr}'") from None


def entry_point_targets(group: str) -> dict[str, str]:
    """The entry points of a group: name -> ``module:attr``. Those of installed packages, and
    dataloop's own from its ``pyproject.toml`` when it runs from an uninstalled checkout."""
    installed = {ep.name: ep.value for ep in entry_points(group=group)}
    return {**checkout_entry_points(group), **installed}


def load_entry_point(group: str, name: str) -> Any:
    """Load the entry point ``name`` of ``group``."""
    target = entry_point_targets(group).get(name)
    if target is None:
        raise RegistryError(f"no entry point '{name}' in group '{group}'")
    try:
        return EntryPoint(name=name, value=target, group=group).load()
    except Exception as exc:
        raise RegistryError(
            f"entry point '{name}' in group '{group}' ({target}) failed to load: {exc}"
        ) from exc


T = TypeVar("T")


class Registry(Generic[T]):
    """Finds a plug-in of one ``kind`` by its spec, the same way for every kind:

    1. ``path/to/file.py:Name`` or ``package.module:Name`` (:func:`load_reference`);
    2. a built-in name (``builtins``);
    3. a name in the entry-point group ``group`` (an installed package's plug-in).

    ``accept(obj, spec)`` returns what the registry hands out for a found object (the object
    itself, or a class a module defines), or None when it is not of the kind, which is then
    refused as not being ``what``. Every failure is one :class:`~dataloop.errors.RegistryError`
    line naming the spec and what would do.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        what: str,
        accept: Callable[[Any, str], T | None],
        builtins: Mapping[str, T] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.what = what
        self.accept = accept
        self.builtins: Mapping[str, T] = builtins if builtins is not None else {}

    def names(self) -> dict[str, str]:
        """Every name known: the built-ins (-> ``built-in``), then the entry points (-> their
        ``module:attr``); a plug-in cannot take a built-in's name."""
        plugged = entry_point_targets(self.group)
        return {
            **{name: "built-in" for name in self.builtins},
            **{n: t for n, t in sorted(plugged.items()) if n not in self.builtins},
        }

    def resolve(self, spec: str) -> T:
        """What ``spec`` names; raises RegistryError (one line) if nothing of the kind."""
        if is_reference(spec):
            obj, where = load_reference(spec), f"'{spec}'"
        elif spec in self.builtins:
            return self.builtins[spec]
        elif spec in entry_point_targets(self.group):
            obj = load_entry_point(self.group, spec)
            where = f"entry point '{spec}' (group '{self.group}')"
        else:
            known = ", ".join(self.names())
            raise RegistryError(
                f"unknown {self.kind} '{spec}'; known: {known} (or path/to/file.py:Class, or an "
                f"entry point in group '{self.group}')"
            )
        found = self.accept(obj, spec)
        if found is None:
            raise RegistryError(f"{self.kind} {where} is not {self.what}")
        return found


def origin(obj: Any) -> str:
    """Where a plug-in is written, for messages: ``path/to/file.py:Class`` (a class, an
    instance's class, or a function); the qualified name alone when no file is known."""
    target = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    name = getattr(target, "__qualname__", repr(target))
    try:
        path = Path(inspect.getfile(target))
    except (TypeError, OSError):
        return name
    with contextlib.suppress(ValueError):
        path = path.resolve().relative_to(Path.cwd())
    return f"{path}:{name}"


def raised(exc: BaseException) -> str:
    """``TypeError: message (at file.py:12, in plan)``: an exception and the line that raised
    it, in one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    message = " ".join(str(exc).split())
    if not frames:
        return f"{type(exc).__name__}: {message}"
    last = frames[-1]
    return f"{type(exc).__name__}: {message} (at {last.filename}:{last.lineno}, in {last.name})"
