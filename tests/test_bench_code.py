"""An experiment's runs all come from one code: the commit its ``code`` field registers, or
the code of the runs already recorded; bench refuses before making a run from other code, not
after hours of runs that could never be paired."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataloop.bench import BenchError, CurvePoint, RunResult, load_experiment, run_bench
from dataloop.bench import execute as bench_execute
from dataloop.bench.results import record_result, run_config_data
from dataloop.identity import CodeIdentity

HERE = "abc1234" + "8" * 33


def _experiment(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        "name: exp\nseeds: [0]\nbudget: {queries: 5}\n"
        "base: {iterations: 1, env: {options: {skills: [add]}}}\n"
        "arms: [{name: seed-only}, {name: other, use: seed-only}]\n" + extra
    )
    return path


def _identity(monkeypatch, commit: str | None, dirty: bool = False) -> None:
    identity = CodeIdentity(commit=commit, dirty=dirty)
    monkeypatch.setattr(bench_execute, "code_identity", lambda: identity)


def _record(path: Path, arm: str, commit: str, config) -> None:
    point = CurvePoint(iteration=0, queries=0, examples=0, budget_spent=0.0, mean_accuracy=0.5)
    record_result(
        path,
        RunResult(
            arm=arm, seed=0, run=f"{arm}/seed-0", source="none",
            code=CodeIdentity(commit=commit), points=[point], final=0.5, test=0.5, auc=0.5,
            seconds=1.0, config=run_config_data(config),
        ),
    )  # fmt: skip


def test_code_must_look_like_a_commit(tmp_path) -> None:
    bad = {
        "main": "expected a commit, 7 to 40 hex digits",
        "1234567": "the number 1234567: quote the commit",
        "0123456": "the number 42798: quote the commit",  # YAML 1.1: octal
    }
    for value, says in bad.items():  # YAML reads an all-digit one as a number
        with pytest.raises(BenchError, match=f"experiment field 'code': .*{says}") as err:
            load_experiment(_experiment(tmp_path, f"code: {value}\n"))
        assert "\n" not in str(err.value)
    assert load_experiment(_experiment(tmp_path, "code: '1234567'\n"))[0].code == "1234567"
    spec, _ = load_experiment(_experiment(tmp_path, "code: abc1234\n"))
    assert spec.code == "abc1234"


@pytest.mark.parametrize(
    ("commit", "dirty"), [("abcdef0" + "0" * 33, False), (HERE, True), (None, False)]
)
def test_runs_are_refused_away_from_the_registered_commit(
    tmp_path, monkeypatch, commit, dirty
) -> None:
    spec, base = load_experiment(_experiment(tmp_path, "code: abc1234\n"))
    _identity(monkeypatch, commit, dirty)
    with pytest.raises(BenchError, match=r"made at abc1234 \(experiment field 'code'\)") as err:
        run_bench(spec, base, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert "git worktree add --detach ../exp-run abc1234" in str(err.value)
    assert not (tmp_path / "out" / "seed-only").exists()  # nothing ran
    # Tabulating what is recorded makes no run, so it needs no particular code.
    run_bench(spec, base, tmp_path / "out", run_missing=False)


def test_one_run_by_arm_and_seed_is_refused_too(tmp_path, monkeypatch) -> None:
    spec, base = load_experiment(_experiment(tmp_path, "code: abc1234\n"))
    _identity(monkeypatch, "abcdef0" + "0" * 33)
    (cell,) = bench_execute.select_runs(spec, base, tmp_path / "out", "seed-only", 0)
    with pytest.raises(BenchError, match="experiment field 'code'"):
        bench_execute.run_cell(spec, tmp_path / "out", cell)


def test_at_the_registered_commit_the_check_passes(monkeypatch, tmp_path) -> None:
    spec, _ = load_experiment(_experiment(tmp_path, "code: abc1234\n"))
    _identity(monkeypatch, HERE)
    bench_execute.check_code(spec, [CodeIdentity(commit="5" * 40)])  # the registered commit decides


def test_without_code_new_runs_must_match_the_recorded_ones(tmp_path, monkeypatch) -> None:
    spec, base = load_experiment(_experiment(tmp_path))
    assert spec.results is not None
    (cell,) = bench_execute.select_runs(spec, base, tmp_path / "out", "seed-only", 0)
    _record(spec.results, "seed-only", "abcdef0" + "0" * 33, cell[2])
    _identity(monkeypatch, HERE)
    with pytest.raises(BenchError, match=r"made by abcdef0000, and this is abc1234888") as err:
        run_bench(spec, base, tmp_path / "out")
    assert "--allow-mixed-commits" in str(err.value) and "\n" not in str(err.value)
    assert "git worktree add --detach ../exp-run abcdef0000" in str(err.value)
    assert not (tmp_path / "out" / "other").exists()  # nothing ran
    bench_execute.check_code(spec, [CodeIdentity(commit="abcdef0" + "0" * 33)], allow_mixed=True)
    bench_execute.check_code(spec, [CodeIdentity(commit=HERE)])  # the same code
    bench_execute.check_code(spec, [])  # nothing recorded yet


def test_a_refused_rerun_loses_nothing(tmp_path, monkeypatch) -> None:
    """--rerun drops an arm's records and folders; from the wrong code it refuses first."""
    spec, base = load_experiment(_experiment(tmp_path))
    assert spec.results is not None
    for arm in ("seed-only", "other"):
        (cell,) = bench_execute.select_runs(spec, base, tmp_path / "out", arm, 0)
        _record(spec.results, arm, "abcdef0" + "0" * 33, cell[2])
        (tmp_path / "out" / arm / "seed-0").mkdir(parents=True)
    before = spec.results.read_text()
    _identity(monkeypatch, HERE)
    with pytest.raises(BenchError, match="made by abcdef0000"):
        run_bench(spec, base, tmp_path / "out", rerun=["other"])
    assert spec.results.read_text() == before
    assert (tmp_path / "out" / "other" / "seed-0").is_dir()


def test_one_run_by_arm_and_seed_matches_the_recorded_code(tmp_path, monkeypatch) -> None:
    """What each line of --plan (a Slurm task) runs is checked as the whole bench is."""
    spec, base = load_experiment(_experiment(tmp_path))
    assert spec.results is not None
    (done,) = bench_execute.select_runs(spec, base, tmp_path / "out", "seed-only", 0)
    _record(spec.results, "seed-only", "abcdef0" + "0" * 33, done[2])
    _identity(monkeypatch, HERE)
    (cell,) = bench_execute.select_runs(spec, base, tmp_path / "out", "other", 0)
    with pytest.raises(BenchError, match="made by abcdef0000"):
        bench_execute.run_cell(spec, tmp_path / "out", cell)
    assert not (tmp_path / "out" / "other" / "seed-0" / "state.json").exists()


def test_a_run_started_by_other_code_is_not_resumed_by_this(tmp_path, monkeypatch) -> None:
    spec, base = load_experiment(_experiment(tmp_path))
    (cell,) = bench_execute.select_runs(spec, base, tmp_path / "out", "seed-only", 0)
    from dataloop.runs import RunDir

    folder = tmp_path / "out" / "seed-only" / "seed-0"
    folder.mkdir(parents=True)
    RunDir(folder).record_environment(CodeIdentity(commit="abcdef0" + "0" * 33))
    _identity(monkeypatch, HERE)
    with pytest.raises(BenchError, match="made by abcdef0000, and this is abc1234888"):
        bench_execute.run_cell(spec, tmp_path / "out", cell)
    with pytest.raises(BenchError, match="made by abcdef0000"):
        run_bench(spec, base, tmp_path / "out")


def test_workers_are_told_to_allow_mixed_code_when_bench_was() -> None:
    from dataloop.bench.workers import cell_args, choose_executor

    assert "--allow-mixed-commits" in cell_args(Path("e.yaml"), Path("o"), "a", 0, 1, True)
    assert "--allow-mixed-commits" not in cell_args(Path("e.yaml"), Path("o"), "a", 0, 1)
    jobs = choose_executor(Path("e.yaml"), Path("o"), jobs=2, allow_mixed=True)
    assert jobs is not None and jobs.allow_mixed  # type: ignore[attr-defined]


def test_runs_are_refused_with_other_package_versions_than_the_recorded_ones(
    tmp_path, monkeypatch
) -> None:
    """E5's runs were made with transformers 5.24.0 and then, after a fresh install, 5.25.0:
    runs of one experiment must come from one environment, and these versions are the part of
    it that a run records."""
    spec, base = load_experiment(_experiment(tmp_path))
    assert spec.results is not None
    (cell,) = bench_execute.select_runs(spec, base, tmp_path / "out", "seed-only", 0)
    point = CurvePoint(iteration=0, queries=0, examples=0, budget_spent=0.0, mean_accuracy=0.5)
    recorded = CodeIdentity(commit=HERE, versions={"torch": "2.13.0", "transformers": "5.24.0"})
    record_result(
        spec.results,
        RunResult(
            arm="seed-only", seed=0, run="seed-only/seed-0", source="none", code=recorded,
            points=[point], final=0.5, test=0.5, auc=0.5, seconds=1.0,
            config=run_config_data(cell[2]),
        ),
    )  # fmt: skip
    here = CodeIdentity(commit=HERE, versions={"torch": "2.13.0", "transformers": "5.25.0"})
    monkeypatch.setattr(bench_execute, "code_identity", lambda: here)
    with pytest.raises(BenchError, match=r"transformers 5\.24\.0 recorded, 5\.25\.0 here") as err:
        run_bench(spec, base, tmp_path / "out")
    assert "\n" not in str(err.value) and "--allow-mixed-commits" in str(err.value)
    assert not (tmp_path / "out" / "other").exists()  # nothing ran
    run_bench(spec, base, tmp_path / "out", run_missing=False)  # tabulating makes no run


def test_version_differences_name_each_package_whose_version_here_was_never_recorded() -> None:
    from dataloop.identity import version_differences

    def made(**versions: str) -> CodeIdentity:
        return CodeIdentity(commit=HERE, versions={"dataloop": "0.1.0", **versions})

    recorded = [made(transformers="5.24.0", trl="1.16.0"), made(transformers="5.25.0")]
    assert version_differences(recorded, made(transformers="5.25.0", trl="1.16.0")) == []
    assert version_differences(recorded, made(transformers="5.26.0", trl="1.17.0")) == [
        "transformers 5.24.0, 5.25.0 recorded, 5.26.0 here",
        "trl 1.16.0 recorded, 1.17.0 here",
    ]
    assert version_differences(recorded, made()) == [
        "transformers 5.24.0, 5.25.0 recorded, none here",
        "trl 1.16.0 recorded, none here",
    ]
    # dataloop's own version is not compared (its commit is), nor a package never recorded
    assert version_differences([made()], CodeIdentity(versions={"dataloop": "9", "x": "1"})) == []
