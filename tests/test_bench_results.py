"""What ``dataloop bench`` concludes from per-run records: the registered decision rule, the
power calculation, AUC only within a data source, runs by different code never paired
silently, the manipulation check, and the results file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataloop.bench import (
    BenchError,
    CurvePoint,
    Experiment,
    RunResult,
    decide,
    markdown,
    power_rows,
    read_results,
    run_config_data,
    same_config,
    summarize,
)
from dataloop.bench.results import write_results_file
from dataloop.bench.timing import say_duration, time_left
from dataloop.cli import app
from dataloop.config import validate_config
from dataloop.identity import CodeIdentity
from dataloop.stats import paired, paired_power, seeds_needed


def _run(arm: str, seed: int, test: float, *, source: str = "teacher", commit: str = "a" * 40,
         accepted: dict[str, int] | None = None) -> RunResult:  # fmt: skip
    points = [
        CurvePoint(iteration=0, queries=0, examples=0, budget_spent=0.0, mean_accuracy=0.1),
        CurvePoint(iteration=1, queries=5, examples=9, budget_spent=1.0, mean_accuracy=test),
    ]
    return RunResult(
        arm=arm, seed=seed, run=f"{arm}/seed-{seed}", source=source,  # type: ignore[arg-type]
        code=CodeIdentity(commit=commit), points=points, final=test, test=test, auc=test,
        accepted=accepted or {}, seconds=1.0,
    )  # fmt: skip


def _experiment(**extra: object) -> Experiment:
    return Experiment.model_validate(
        {
            "name": "e",
            "seeds": [0, 1, 2, 3],
            "budget": {"queries": 5},
            "arms": [{"name": "uniform"}, {"name": "mine"}, {"name": "oracle"}],
            "baselines": ["uniform"],
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("arm", "base", "verdict"),
    [
        ([0.60, 0.61, 0.62, 0.60], [0.50, 0.50, 0.51, 0.50], "supported"),  # +10, tight
        ([0.51, 0.52, 0.51, 0.52], [0.50, 0.50, 0.50, 0.50], "refuted"),  # real but < 3 points
        ([0.50, 0.49, 0.50, 0.51], [0.50, 0.50, 0.50, 0.50], "refuted"),  # none, tight
        ([0.60, 0.40, 0.55, 0.45], [0.50, 0.50, 0.50, 0.50], "inconclusive"),  # wide
    ],
)
def test_the_registered_decision_rule(arm, base, verdict) -> None:
    assert decide(paired(arm, base), smallest_effect=0.03) == verdict
    assert decide(None, 0.03) == "no data"
    assert decide(paired([0.6], [0.5]), 0.03) == "no data"  # one seed decides nothing


def test_seeds_needed_matches_published_power_tables() -> None:
    # Two-sided paired t-test, alpha 0.05, power 0.8 (G*Power): dz 0.5 -> 34, dz 1.0 -> 10.
    assert seeds_needed(sd=1.0, effect=0.5) == 34
    assert seeds_needed(sd=0.04, effect=0.04) == 10
    assert paired_power(10, 1.0, 1.0) >= 0.8 > paired_power(9, 1.0, 1.0)
    with pytest.raises(ValueError):
        seeds_needed(sd=0.0, effect=0.03)


def test_power_from_a_pilots_results_file(tmp_path) -> None:
    pilot = tmp_path / "pilot.jsonl"
    runs = [_run("uniform", s, 0.5) for s in range(4)]
    runs += [_run("mine", s, 0.5 + d) for s, d in enumerate([0.01, 0.05, 0.02, 0.06])]
    write_results_file(pilot, runs)
    (row,) = power_rows(0.03, pilot=pilot, baseline="uniform")
    assert row.comparison == "mine − uniform" and row.pairs == 4
    assert row.sd == pytest.approx(0.0238, abs=1e-4)
    assert row.seeds == seeds_needed(row.sd, 0.03)
    with pytest.raises(BenchError, match="no run of arm 'nobody'"):
        power_rows(0.03, pilot=pilot, baseline="nobody")
    with pytest.raises(BenchError, match="--sd"):
        power_rows(0.03)
    out = CliRunner().invoke(app, ["power", "--effect", "0.03", "--sd", "0.041"])
    assert out.exit_code == 0 and "seeds needed" in out.output
    assert str(seeds_needed(0.041, 0.03)) in out.output


def test_primary_gets_the_only_verdict_and_auc_stays_within_a_source() -> None:
    spec = _experiment(primary={"arm": "mine", "baseline": "uniform", "smallest_effect": 0.03})
    runs = [_run("uniform", s, 0.50 + s / 100) for s in range(4)]
    runs += [_run("mine", s, 0.60 + s / 100 + (s % 2) / 200) for s in range(4)]
    runs += [_run("oracle", s, 0.7, source="oracle") for s in range(4)]
    result = summarize(spec, runs, examples=9, pending=[])
    assert result.primary is not None and result.primary.verdict == "supported"
    rows = {(c.arm, c.metric) for c in result.comparisons}
    assert ("mine", "auc") in rows  # both teacher arms: one x-axis
    assert ("oracle", "auc") not in rows and ("oracle", "test") in rows
    text = markdown(result)
    assert "**supported**" in text and "Exploratory (unadjusted, no verdict)" in text
    assert "better" not in text  # no verdict words for exploratory rows


def test_runs_made_by_different_code_are_not_paired_unless_asked() -> None:
    spec = _experiment()
    runs = [_run("uniform", s, 0.5) for s in range(4)]
    runs += [_run("mine", s, 0.6, commit="b" * 40) for s in range(4)]
    with pytest.raises(BenchError, match=r"different code: .*--rerun") as err:
        summarize(spec, runs, examples=9, pending=[])
    assert "\n" not in str(err.value)
    result = summarize(spec, runs, examples=9, pending=[], allow_mixed=True)
    assert result.commits == {"a" * 10: 4, "b" * 10: 4}
    dirty = _run("mine", 0, 0.6)
    dirty.code.dirty = True
    assert dirty.code.label == "a" * 10 + "+dirty"


def test_runs_made_with_several_versions_of_a_package_say_so_in_the_table() -> None:
    spec = _experiment()
    runs = [_run(arm, s, 0.5) for arm in ("uniform", "mine") for s in range(4)]
    for run in runs:
        old = run.seed < 2
        run.code.versions = {"dataloop": "0.1.0", "torch": "2.13.0",
                             "transformers": "5.24.0" if old else "5.25.0"}  # fmt: skip
    result = summarize(spec, runs, examples=9, pending=[])
    assert result.versions == {"transformers": {"5.24.0": 4, "5.25.0": 4}}
    assert "Code: aaaaaaaaaa (8); transformers 5.24.0 (4), 5.25.0 (4)." in markdown(result)
    for run in runs:
        run.code.versions["transformers"] = "5.25.0"
    assert summarize(spec, runs, examples=9, pending=[]).versions == {}
    # All packages and the processor, where recorded: an older record has neither.
    for run in runs[:6]:
        run.code.packages, run.code.cpu = ("p1" if run.seed else "p2"), "AMD EPYC (flags f1)"
    assert summarize(spec, runs, examples=9, pending=[]).versions == {
        "packages": {"p1": 4, "p2": 2}
    }


def test_manipulation_check_is_the_share_of_data_on_target() -> None:
    spec = _experiment(manipulation={"description": "data in max", "skills": ["max"],
                                     "subskills": {"len": ["long-words"]}})  # fmt: skip
    run = _run("mine", 0, 0.6, accepted={"max": 30, "len": 50, "first": 20})
    run.subskills = {"len/long-words": 10, "len/short-words": 40}
    (arm,) = summarize(spec, [run], examples=9, pending=[]).arms
    assert arm.on_target == pytest.approx((30 + 10) / 100)


def test_results_file_round_trips_and_names_a_damaged_line(tmp_path) -> None:
    path = tmp_path / "results" / "e.jsonl"
    runs = [_run("mine", 1, 0.6), _run("uniform", 0, 0.5)]
    write_results_file(path, runs)
    assert [r.arm for r in read_results(path)] == ["mine", "uniform"]  # sorted by arm, seed
    assert read_results(tmp_path / "none.jsonl") == []
    path.write_text(path.read_text() + '{"arm": "x"}\n')
    with pytest.raises(BenchError, match=r"e\.jsonl line 3 is damaged"):
        read_results(path)


def test_a_record_matches_its_config_wherever_stored_and_after_new_fields(tmp_path) -> None:
    one = validate_config({"seed": 3, "runs_dir": str(tmp_path / "here")})
    record = _run("mine", 3, 0.5)
    record.config = run_config_data(one)
    assert same_config(record, validate_config({"seed": 3, "runs_dir": str(tmp_path / "else")}))
    assert not same_config(record, validate_config({"seed": 4}))
    # The teacher server's thread count is how a worker ran it, not what was run.
    assert same_config(record, validate_config({"seed": 3, "teacher": {"threads": 1}}))
    assert not same_config(record, validate_config({"seed": 3, "teacher": {"parallel": 2}}))
    # A record written before dataloop added a field (here: teacher.timeout) still matches.
    del record.config["teacher"]["timeout"]
    assert same_config(record, one)
    record.config["bogus"] = 1  # no longer a config at all
    assert not same_config(record, one)


def test_identity_names_this_checkout() -> None:
    from dataloop.identity import code_identity

    me = code_identity()
    assert me.versions["dataloop"] and me.versions["torch"]
    assert len(me.packages) == 12 and int(me.packages, 16) >= 0  # a digest of every package
    if Path("/proc/cpuinfo").is_file():
        assert me.cpu and "(flags " in me.cpu
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        assert me.commit is not None and len(me.commit) == 40


def test_published_tables_regenerate_from_the_committed_results() -> None:
    """Every table block in docs/benchmarks.md is what its committed results file gives."""
    from benchscripts import load

    root = Path(__file__).resolve().parent.parent
    module = load("docs_tables")
    docs = (root / "docs/benchmarks.md").read_text()
    blocks = [m[2] for m in module.BLOCK.finditer(docs)]
    assert "calibration" in blocks
    for name in blocks:
        assert (root / "experiments/results" / f"{name}.jsonl").is_file(), name
    assert module.regenerate(docs) == docs, "run: python benchmarks/docs_tables.py"


def test_no_verdict_before_every_registered_seed_is_in() -> None:
    spec = _experiment(primary={"arm": "mine", "baseline": "uniform", "smallest_effect": 0.03})
    runs = [_run("uniform", s, 0.50) for s in range(3)]
    runs += [_run("mine", s, 0.60 + s / 100) for s in range(3)]
    result = summarize(spec, runs, examples=9, pending=["mine/seed-3", "uniform/seed-3"])
    assert result.primary is not None and result.primary.verdict == "incomplete"
    assert "over 3 of 4 seeds — **incomplete** (no verdict" in markdown(result)
    one = summarize(spec, runs[:1] + runs[3:4], examples=9, pending=["mine/seed-1"])
    assert one.primary is not None and one.primary.verdict == "incomplete"  # not "no data"
    other = summarize(spec, runs, examples=9, pending=["oracle/seed-3"])  # not a primary arm
    assert other.primary is not None and other.primary.verdict == "supported"


def test_the_time_left_is_each_run_at_its_sources_median_shared_among_the_jobs() -> None:
    records = [
        _run("uniform", s, 0.5).model_copy(update={"seconds": 60.0 * (s + 1)}) for s in range(3)
    ]  # teacher arms: 60, 120, 180 s, median 120
    records.append(_run("seed-only", 0, 0.2, source="none").model_copy(update={"seconds": 30.0}))
    records.append(_run("uniform", 9, 0.5).model_copy(update={"seconds": 0.0}))  # no time: out
    arm = _experiment().arms[0]
    cells = [
        (arm, 1, validate_config({})),  # teacher: 120
        (arm, 2, validate_config({})),  # teacher: 120
        (arm, 3, validate_config({"engine": {"source": "none"}})),  # seed-only: 30
        # No oracle run recorded yet: the median of every timed run (60, 120, 180, 30): 90.
        (arm, 4, validate_config({"engine": {"source": "oracle"}})),
    ]
    assert time_left(records, cells) == 360
    assert time_left(records, cells, jobs=2) == 180
    assert time_left(records[-1:], cells) is None  # nothing timed yet: no guess
    assert [say_duration(s) for s in (20, 25 * 60, 3 * 3600 + 5 * 60 + 10)] == [
        "under a minute",
        "25 min",
        "3 h 5 min",
    ]


def test_the_tables_say_how_long_the_runs_took_per_data_source() -> None:
    runs = [
        _run("uniform", s, 0.5).model_copy(update={"seconds": 60.0 * (s + 3)}) for s in range(4)
    ]
    runs += [
        _run("oracle", s, 0.7, source="oracle").model_copy(update={"seconds": 120.0})
        for s in range(2)
    ]
    runs.append(_run("oracle", 3, 0.7, source="oracle").model_copy(update={"seconds": 0.0}))
    text = markdown(summarize(_experiment(), runs, examples=9, pending=[]))
    # 3+4+5+6 minutes and 2 x 2: 0.4 h over the 6 timed runs; a run with no time is left out.
    assert (
        "Wall time: 0.4 h for 6 runs; median minutes a run: teacher arms 4.5, oracle arms 2.0 "
        in text
    )
