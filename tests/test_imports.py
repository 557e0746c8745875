"""The CLI answers at once: torch, transformers and peft load only where a student is built,
openai only where a teacher is reached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "peft", "openai")

CASES = {
    "import dataloop": "import dataloop",
    "import dataloop.cli": "import dataloop.cli",
    "a config error": (
        "import sys\n"
        "from dataloop.cli import main\n"
        "sys.argv = ['dataloop', 'run', '--set', 'iterations=[1']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 2, exc.code\n"
        "else:\n"
        "    raise AssertionError('no SystemExit')\n"
    ),
    "dataloop envs": (
        "import sys\n"
        "from dataloop.cli import main\n"
        "sys.argv = ['dataloop', 'envs']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_no_heavy_import(case: str) -> None:
    check = f"\nimport sys\nprint('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n"
    out = subprocess.run(
        [sys.executable, "-c", CASES[case] + check],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout
