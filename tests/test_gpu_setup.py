"""scripts/gpu_setup.sh carries, as wheels, everything a bare GPU image lacks: every project
dependency and everything those need in turn, but for the image's own packages. A missing one
stops the GPU scripts at setup on the lent machine (datasketch and transformers' ``kernels``
did, 2026-12-04), where device time is minutes and there is no network to fix it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
IMAGE = {"torch", "numpy", "pyarrow", "scipy", "peft", "accelerate", "pytest", "matplotlib"}
"""What the GPU image has (torch's own needs included through torch): not carried."""
GPU_PYTHON = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def wheels() -> set[str]:
    text = (ROOT / "scripts" / "gpu_setup.sh").read_text()
    listed = re.search(r"^WHEELS=\((.*?)^\)", text, re.DOTALL | re.MULTILINE)
    assert listed, "gpu_setup.sh has no WHEELS=( ... ) list"
    return {canonicalize_name(Requirement(word).name) for word in listed[1].split()}


def pinned() -> dict[str, str]:
    """The WHEELS given as ``name==version``."""
    text = (ROOT / "scripts" / "gpu_setup.sh").read_text()
    listed = re.search(r"^WHEELS=\((.*?)^\)", text, re.DOTALL | re.MULTILINE)
    assert listed
    return dict(w.split("==", 1) for w in listed[1].split() if "==" in w)


def needs(name: str) -> list[str]:
    """What ``name`` (installed here) requires on the GPU machine's Python."""
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(GPU_PYTHON):
            found.append(canonicalize_name(requirement.name))
    return found


def at_the_floors() -> bool:
    """Whether this environment is `make test-floors`' (openai at its floor, .ci/floors.txt):
    what old versions need is not what the newest wheels `--download` fetches need."""
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    return metadata.version("openai") == pins.get("openai")


def test_the_gpu_wheels_cover_the_project_and_what_it_needs():
    if at_the_floors():
        pytest.skip("the floors' old versions need other packages than the newest wheels")
    carried = wheels()
    image = {canonicalize_name(name) for name in IMAGE}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [canonicalize_name(Requirement(line).name) for line in project] + ["pytest-timeout"]
    seen: set[str] = set()
    missing = set()
    while todo:
        name = todo.pop()
        if name in seen or name in image:
            continue
        seen.add(name)
        if name not in carried:
            missing.add(name)
        todo.extend(needs(name))
    assert not missing, f"add to WHEELS in scripts/gpu_setup.sh: {sorted(missing)}"


def test_the_pinned_wheels_are_the_versions_the_gpu_experiments_recorded():
    """A later call must make runs with the versions a results file already holds (bench adds
    no others), so --download fetches those, not the newest."""
    import json

    for name in ("llm2llm-faithful", "e3-balancing-br1"):
        path = ROOT / "experiments" / "results" / f"{name}.jsonl"
        recorded = {
            (package, version)
            for line in path.read_text().splitlines()
            for package, version in json.loads(line)["code"]["versions"].items()
            if package in pinned()
        }
        assert recorded == set(pinned().items()), name
