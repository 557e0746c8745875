"""Fail unless .ci/floors.txt pins every direct dependency at the lower bound pyproject declares.

Checked: the runtime dependencies (torch aside, installed as the local CPU build) and the test
runners of the ``dev`` extra. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_RUNNERS = {"pytest", "pytest-timeout", "pytest-xdist"}
UNPINNED = {"torch"}


def name_of(requirement: str) -> str:
    """The normalised project name of a requirement string."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ ;\[]", requirement)[0]).lower()


def declared_floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors: dict[str, str] = {}
    dev = [r for r in project["optional-dependencies"]["dev"] if name_of(r) in TEST_RUNNERS]
    for requirement in project["dependencies"] + dev:
        match = re.search(r">=\s*([^,;\s]+)", requirement)
        name = name_of(requirement)
        if name in UNPINNED:
            continue
        if match is None:
            sys.exit(f"pyproject.toml: {requirement!r} has no '>=' lower bound to test")
        floors[name] = match.group(1)
    return floors


def pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name_of(name)] = version.strip()
    return pins


def main() -> None:
    floors, pins = declared_floors(), pinned()
    wrong = [
        f"  {name}: pyproject says >={floor}, floors.txt pins {pins.get(name, 'nothing')}"
        for name, floor in floors.items()
        if pins.get(name) not in (floor, floor + ".0", floor + ".0.0")
    ]
    extra = sorted(pins.keys() - floors.keys())
    wrong += [f"  {name}: pinned but not a direct dependency" for name in extra]
    if wrong:
        sys.exit(".ci/floors.txt disagrees with pyproject.toml:\n" + "\n".join(wrong))
    print(f"floors: {len(floors)} direct dependencies pinned at their declared lower bounds")


if __name__ == "__main__":
    main()
