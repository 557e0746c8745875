"""The package's shape: the import-linter layers hold, and no module imports itself back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="pip install 'dataloop[dev]' (import-linter)")

ROOT = Path(__file__).resolve().parent.parent


def test_the_layers_in_pyproject_hold() -> None:
    # Every contract of [tool.importlinter]: cli on top, the schema at the bottom. In a
    # subprocess: import-linter reconfigures logging, which would silence dataloop's loggers.
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_import_cycle_between_modules() -> None:
    # Imports inside functions count too: a lazy import that closes a cycle is still a cycle.
    graph = grimp.build_graph("dataloop", cache_dir=None)
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if module != imported
        and not imported.startswith(module + ".")
        and graph.chain_exists(importer=imported, imported=module)
    ]
    assert cycles == []
