"""The YAML reader (duplicate keys refused) and the base of every config section."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
)

from dataloop.errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: PyYAML
    would keep the last silently (a second ``student:`` section replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"key '{key}' appears twice in one section (line {line})")
        self.key = key
        self.line = line


def parse_yaml(text: str, origin: str) -> Any:
    """YAML text as plain data, duplicate keys refused; errors name ``origin`` and the position,
    never the offending text, which may be a pasted secret."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except DuplicateKey as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context
        raise ConfigError(f"{origin} is not valid YAML: {problem}{where}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{origin} is not valid YAML") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
