"""scripts/continue_experiment.sh makes an experiment's remaining runs only with the package
versions its recorded runs were made with: E5 was continued after a fresh install had moved
transformers from 5.24.0 to 5.25.0, unnoticed. Nothing is run here: the script stops before
bench, or bench finds every run recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tinybench import tiny_experiment

from dataloop.bench import CurvePoint, RunResult, load_experiment
from dataloop.bench import execute as bench_execute
from dataloop.bench.results import record_result, run_config_data
from dataloop.identity import code_identity

REPO = Path(__file__).resolve().parent.parent


def _repo(tmp_path: Path, seeds: tuple[int, ...]) -> Path:
    """A git repository with the script and a seed-only experiment; seed 0 recorded as made
    with transformers 0.0.1."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "continue_experiment.sh", repo / "scripts")
    experiment = repo / "experiments" / "tiny.yaml"
    experiment.parent.mkdir()
    text = tiny_experiment("http://127.0.0.1:9/v1", seeds=seeds, arms=["seed-only"], baseline=None)
    experiment.write_text("name: tiny\n" + text)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for args in (["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    spec, base = load_experiment(experiment)
    assert spec.results is not None
    point = CurvePoint(iteration=0, queries=0, examples=0, budget_spent=0.0, mean_accuracy=0.5)
    for seed in seeds[:1]:
        (cell,) = bench_execute.select_runs(spec, base, repo / "runs", "seed-only", seed)
        made = code_identity().model_copy(deep=True)
        made.versions["transformers"] = "0.0.1"
        record_result(
            spec.results,
            RunResult(
                arm="seed-only", seed=seed, run=f"seed-only/seed-{seed}", source="none",
                code=made, points=[point], final=0.5, test=0.5, auc=0.5, seconds=1.0,
                config=run_config_data(cell[2]),
            ),
        )  # fmt: skip
    return repo


def _script(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/continue_experiment.sh", "experiments/tiny.yaml"], cwd=repo,
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), **env},
    )  # fmt: skip


def test_runs_left_are_refused_with_other_package_versions(tmp_path) -> None:
    repo = _repo(tmp_path, seeds=(0, 1))
    done = _script(repo)
    assert done.returncode == 1
    here = code_identity().versions["transformers"]
    line = f"transformers 0.0.1 recorded, {here} here"
    assert line in done.stderr and "ALLOW_OTHER_VERSIONS=1" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (repo / "runs").exists()  # nothing ran


def test_a_complete_experiment_is_tabulated_whatever_the_versions(tmp_path) -> None:
    repo = _repo(tmp_path, seeds=(0,))
    done = _script(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run 1/1: seed-only, seed 0 (done before)" in done.stderr
    assert "| seed-only | 1 |" in done.stdout
