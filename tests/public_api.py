"""dataloop's public surface as text, one line per name, for tests/test_public_api.py.

The surface is what users are told to use: the names in ``dataloop.__all__``; the public names
of the modules README and docs import from (``__all__`` where a module has one, else every
name without a leading underscore that the module defines); for each public class its public
methods, properties and declared attributes with their signatures (those it inherits from a
private base included; a public base lists its own, so a class users subclass shows its whole
contract); and every CLI command with its arguments and options. Rendering is deterministic
across Python and library versions (checked with pydantic 2.7.0 and typer 0.13.0, the floors,
and the current releases): annotations are the source's own strings (the modules use
``from __future__ import annotations``), defaults are written without memory addresses, and CLI
options by name, declared type and default, read from the typer declarations.

``python -m tests.public_api --write`` rewrites ``tests/public_api.txt`` after a deliberate
change; the diff then shows the change in review.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import inspect
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from types import ModuleType
from typing import Any

SNAPSHOT = Path(__file__).with_name("public_api.txt")
WRITE_COMMAND = "python -m tests.public_api --write"

MODULES = [
    "dataloop",
    "dataloop.assemble",
    "dataloop.config",
    "dataloop.engine",
    "dataloop.env_checker",
    "dataloop.environments",
    "dataloop.errors",
    "dataloop.gym",
    "dataloop.llm",
    "dataloop.llm.backends",
    "dataloop.loop",
    "dataloop.plugins",
    "dataloop.policies",
    "dataloop.schema",
    "dataloop.students",
    "dataloop.taxonomy",
    "dataloop.tree",
]
"""The modules README, docs and examples import from (``dataloop.bench`` is the CLI's, and
its names are covered by ``dataloop bench``'s options)."""


def _default(value: Any) -> str:
    """A default value as text with no memory address in it."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, PurePath):
        return f"Path({str(value)!r})"
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(map(_default, value)) if isinstance(value, set | frozenset) else value
        inner = ", ".join(items if isinstance(value, set | frozenset) else map(_default, items))
        return {list: f"[{inner}]", tuple: f"({inner})"}.get(type(value), f"{{{inner}}}")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_default(k)}: {_default(v)}" for k, v in value.items()) + "}"
    if inspect.isclass(value) or callable(value):
        return f"<{getattr(value, '__qualname__', type(value).__name__)}>"
    return f"<{type(value).__name__}>"


def _annotation(value: Any) -> str:
    """An annotation as written in the source (a string under postponed evaluation)."""
    if value is inspect.Parameter.empty:
        return ""
    if isinstance(value, str):
        return value
    if inspect.isclass(value):
        return value.__qualname__
    return repr(value).replace("typing.", "")


def signature(obj: Callable[..., Any]) -> str:
    """``(a: int, *, b: str = 'x') -> T`` from the callable's own parameters and annotations."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())
    parts: list[str] = []
    star_done = False
    for i, p in enumerate(params):
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
            text = f"*{p.name}"
        elif p.kind is p.VAR_KEYWORD:
            text = f"**{p.name}"
        else:
            if p.kind is p.KEYWORD_ONLY and not star_done:
                parts.append("*")
                star_done = True
            text = p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {_default(p.default)}"
        parts.append(text)
        last_positional = i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        if p.kind is p.POSITIONAL_ONLY and last_positional:
            parts.append("/")
    result = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty:
        result += f" -> {_annotation(sig.return_annotation)}"
    return result


def _is_pydantic(cls: type) -> bool:
    return any(c.__module__.startswith("pydantic") for c in cls.__mro__[1:])


def _owners(cls: type, listed: set[type]) -> list[type]:
    """``cls`` and the dataloop bases whose members it shows, most derived first: a base
    listed in the surface itself shows its own members there."""
    return [
        c
        for c in cls.__mro__
        if c.__module__.split(".")[0] == "dataloop" and (c is cls or c not in listed)
    ]


def _set_in_init(cls: type) -> list[str]:
    """The public instance attributes ``cls.__init__`` sets (``self.name = ...``), in order."""
    init = vars(cls).get("__init__")
    if not inspect.isfunction(init) or not init.__module__.startswith("dataloop"):
        return []
    try:
        source = inspect.getsource(init)
    except OSError:  # made by dataclasses: its fields are the attributes
        return []
    found = re.findall(r"^\s*self\.([a-z]\w*)\s*(?::[^=\n]+)?=(?!=)", source, re.MULTILINE)
    return list(dict.fromkeys(found))


def _members(cls: type, listed: set[type]) -> Iterator[str]:
    """One line per public member of ``cls``: attributes (declared or pydantic fields) with
    their annotation and default, methods and properties with their signatures."""
    seen: set[str] = set()
    fields = getattr(cls, "model_fields", {}) if _is_pydantic(cls) else {}
    data_fields = (
        {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    )
    for owner in _owners(cls, listed):
        for name, annotation in vars(owner).get("__annotations__", {}).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            text = f"{name}: {_annotation(annotation)}"
            if name in fields:
                field = fields[name]
                if field.default_factory is not None:
                    text += " = <factory>"
                elif not field.is_required():
                    text += f" = {_default(field.default)}"
            elif name in data_fields:
                dfield = data_fields[name]
                if dfield.default_factory is not dataclasses.MISSING:
                    text += " = <factory>"
                elif dfield.default is not dataclasses.MISSING:
                    text += f" = {_default(dfield.default)}"
            elif name in vars(owner) and not callable(vars(owner)[name]):
                text += f" = {_default(vars(owner)[name])}"
            yield f"  attribute {text}"
        for name in _set_in_init(owner):
            if name not in seen and name not in vars(owner):
                seen.add(name)
                yield f"  attribute {name} (set by __init__)"
        for name, raw in vars(owner).items():
            if (name.startswith("_") and name != "__init__") or name in seen:
                continue
            if fields and name.startswith("model_"):
                continue  # pydantic's namespace, which pydantic may wrap differently by version
            if name == "__init__" and not getattr(raw, "__module__", "").startswith("dataloop"):
                continue  # a Protocol's placeholder
            seen.add(name)
            if name == "__init__" and (fields or data_fields or owner is not cls):
                continue  # pydantic and dataclass constructors are their fields
            if isinstance(raw, property):
                returns = inspect.signature(raw.fget).return_annotation if raw.fget else ""
                yield f"  property {name}: {_annotation(returns)}"
            elif isinstance(raw, classmethod):
                yield f"  classmethod {name}{signature(getattr(cls, name))}"
            elif isinstance(raw, staticmethod):
                yield f"  staticmethod {name}{signature(raw.__func__)}"
            elif inspect.isfunction(raw):
                prefix = "async method" if inspect.iscoroutinefunction(raw) else "method"
                yield f"  {prefix} {name}{signature(raw)}"
            elif not fields and not inspect.isclass(raw) and not callable(raw):
                yield f"  attribute {name} = {_default(raw)}"


def _describe(qualified: str, obj: Any, listed: set[type]) -> Iterator[str]:
    if inspect.isclass(obj):
        bases = ", ".join(
            b.__qualname__ for b in obj.__bases__ if b is not object and b.__name__ != "Generic"
        )
        kind = "exception" if issubclass(obj, BaseException) else "class"
        if issubclass(obj, enum.Enum):
            yield f"{qualified}: enum {', '.join(m.name for m in obj)}"
            return
        yield f"{qualified}: {kind}({bases})"
        if kind == "class":
            yield from _members(obj, listed)
    elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
        prefix = "async function" if inspect.iscoroutinefunction(obj) else "function"
        yield f"{qualified}: {prefix}{signature(obj)}"
    elif isinstance(obj, ModuleType):
        yield f"{qualified}: module"
    else:
        origin = getattr(obj, "__origin__", None)
        if origin is not None or type(obj).__module__ in {"typing", "types"}:
            yield f"{qualified}: type alias"
        else:
            yield f"{qualified}: {type(obj).__name__} = {_default(obj)}"


def _public_names(module: ModuleType) -> list[str]:
    if hasattr(module, "__all__"):
        return sorted(module.__all__)
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, ModuleType):
            continue
        home = getattr(value, "__module__", module.__name__)
        if inspect.isclass(value) or inspect.isfunction(value):
            if home != module.__name__:
                continue  # imported from elsewhere: listed where it is defined
        elif name not in vars(module).get("__annotations__", {}) and not name.isupper():
            continue  # a module-level constant is public when declared or in CAPITALS
        names.append(name)
    return sorted(names)


def _cli() -> Iterator[str]:
    """Every command and its arguments and options, from the typer declarations in
    ``dataloop.cli`` (not from the click objects typer builds, whose classes and attributes
    differ between typer releases)."""
    import typing

    import typer

    from dataloop import cli

    commands = {
        info.name or info.callback.__name__.lower().replace("_", "-"): info.callback
        for info in cli.app.registered_commands
        if info.callback is not None
    }
    for name in sorted(commands):
        callback = commands[name]
        yield f"dataloop {name}"
        hints = typing.get_type_hints(callback, include_extras=True)
        for param in inspect.signature(callback).parameters.values():
            info = next(
                (m for m in getattr(hints[param.name], "__metadata__", ()) if _is_param_info(m)),
                None,
            )
            # Under Annotated, typer reads a first positional '--name' as the option's name.
            decls = (getattr(info, "default", None), *(getattr(info, "param_decls", None) or ()))
            declared = [d for d in decls if isinstance(d, str) and d.startswith("-")]
            if isinstance(info, typer.models.ArgumentInfo):
                text = f"  argument {param.name.upper()}"
            else:
                flags = declared or ["--" + param.name.rstrip("_").replace("_", "-")]
                text = f"  option {' / '.join(flags)}"
            text += f": {_unannotated(_annotation(param.annotation))}"
            if param.default is not param.empty:
                text += f" = {_default(param.default)}"
            yield text


def _unannotated(annotation: str) -> str:
    """``T`` from ``Annotated[T, typer.Option(help=...)]``: the help text is not the API."""
    if not annotation.startswith("Annotated["):
        return annotation
    start = len("Annotated[")
    depth = 0
    for i, char in enumerate(annotation[start:], start=start):
        depth += (char in "[(") - (char in "])")
        if char == "," and depth == 0:
            return annotation[start:i]
    return annotation


def _is_param_info(value: object) -> bool:
    import typer

    return isinstance(value, typer.models.ParameterInfo)


def surface() -> list[str]:
    """The public surface, one line per name or member, in a fixed order."""
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a deprecated alias is read, not called
        modules = {name: importlib.import_module(name) for name in MODULES}
        names = {name: _public_names(module) for name, module in modules.items()}
        listed = {
            obj
            for name, module in modules.items()
            for obj in (getattr(module, n) for n in names[name])
            if inspect.isclass(obj)
        }
        for module_name, module in modules.items():
            lines.append(f"# {module_name}")
            for name in names[module_name]:
                lines.extend(_describe(f"{module_name}.{name}", getattr(module, name), listed))
    lines.append("# cli")
    lines.extend(_cli())
    return lines


def main(argv: list[str] | None = None) -> int:
    """``--write`` rewrites the snapshot; without it, print the live surface."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {SNAPSHOT.name}")
    args = parser.parse_args(argv)
    text = "\n".join(surface()) + "\n"
    if args.write:
        SNAPSHOT.write_text(text)
        print(f"wrote {SNAPSHOT}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
