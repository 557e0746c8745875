"""What code made a result: dataloop's git commit (and whether its tree was modified) and the
versions of the packages that decide a run's numbers.

A run records this in ``environment.jsonl`` (one line per start or resume), and ``dataloop
bench`` carries it into every per-run result, so that results made by different code are never
paired silently.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, Field

PACKAGES = ("dataloop", "torch", "transformers", "trl", "peft", "accelerate", "datasets")
"""Packages whose versions are recorded: dataloop and the student's training stack."""


class CodeIdentity(BaseModel):
    """The code and packages a run ran with."""

    commit: str | None = None
    """dataloop's git commit (None when it is not run from a git checkout, e.g. a wheel)."""
    dirty: bool = False
    """Whether the checkout's ``dataloop/`` or ``prompts/`` differed from the commit."""
    python: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    """Installed version of each of :data:`PACKAGES` (absent when not installed)."""
    packages: str = ""
    """A digest of every installed distribution and its version: runs with the same digest
    ran on the same packages ("" in records made before it was recorded)."""
    cpu: str = ""
    """The processor: its model name and a digest of its instruction-set flags, which decide
    the math kernels torch picks ("" where unknown, and in older records)."""

    @property
    def label(self) -> str:
        """The commit, short, with ``+dirty`` when the tree was modified; ``unknown`` if none."""
        if self.commit is None:
            return "unknown"
        return self.commit[:10] + ("+dirty" if self.dirty else "")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@cache
def code_identity() -> CodeIdentity:
    """This process's :class:`CodeIdentity`, computed once: the code a process runs is the code
    it imported, whatever is committed after it started."""
    root = Path(__file__).resolve().parent.parent
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    head = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--", "dataloop", "prompts") if head else None
    return CodeIdentity(
        commit=head.strip() if head else None,
        dirty=bool(status and status.strip()),
        python=platform.python_version(),
        versions=versions,
        packages=_digest(
            sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
        ),
        cpu=_cpu(),
    )


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def _cpu() -> str:
    """``"<model name> (flags <digest>)"`` from /proc/cpuinfo; ``""`` where there is none."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in info.splitlines())
        if value
    )
    model = fields.get("model name", platform.processor())
    flags = sorted(set(fields.get("flags", "").split()))
    return f"{model} (flags {_digest(flags)})" if flags else model


def version_differences(recorded: Iterable[CodeIdentity], here: CodeIdentity) -> list[str]:
    """One entry per package of :data:`PACKAGES` (dataloop aside: its commit is the code)
    whose version ``here`` is none of those the ``recorded`` runs were made with, e.g.
    ``"transformers 5.24.0 recorded, 5.25.0 here"``. A run is reproduced only in the environment
    it was made in; these versions are the part of it a run records (docs/benchmarks.md,
    "Reproducing E4 and E5")."""
    seen: dict[str, set[str]] = {}
    for identity in recorded:
        for name, version in identity.versions.items():
            seen.setdefault(name, set()).add(version)
    differing = []
    for name in PACKAGES:
        if name == "dataloop" or name not in seen:
            continue
        mine = here.versions.get(name)
        if mine not in seen[name]:
            versions = ", ".join(sorted(seen[name]))
            differing.append(f"{name} {versions} recorded, {mine or 'none'} here")
    return differing
