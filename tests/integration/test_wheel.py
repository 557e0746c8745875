"""An installed wheel carries prompts/, the built-in environments' data and their entry points,
and finds them outside a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.integration


def test_wheel_lists_environments_and_renders_prompts(tmp_path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next((tmp_path / "dist").glob("dataloop-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True
    )
    # The dependencies come from the test environment (a .pth line), dataloop from the wheel.
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip())  # fmt: skip
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = (
        "import dataloop, dataloop.resources as r;"
        "from dataloop.environments import available, load_task;"
        "from dataloop.llm import Templates;"
        "print(dataloop.__file__); print(r.prompts_dir()); print(sorted(available()));"
        "print(len(load_task('arithmetic').skills()));"
        "print(Templates().render('new_question/base.j2',"
        " skill=load_task('arithmetic').skills()[0],"
        " examples=[], failures=[], guidance='', count=1).splitlines()[0]);"
        "print(len(load_task('math').split('test')))"
    )
    out = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout.splitlines()
    assert out[0].startswith(str(venv)), out
    assert out[1] == str(Path(out[0]).parent / "_data" / "prompts")
    assert "arithmetic" in out[2] and out[3] == "6"
    assert out[4].startswith("Practice problems")
    assert out[5] == "30"  # the math sample, package data
    cli = subprocess.run(
        [venv / "bin" / "dataloop", "envs"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert cli.returncode == 0 and "dataloop.envs.arithmetic:ArithmeticTask" in cli.stdout
