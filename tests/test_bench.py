"""``dataloop bench``: statistics checked by hand, experiment files, and a real experiment
(tiny student, scripted teacher) that is killed with -9 and resumed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fakeserver import FakeOpenAI, few_shot_variations
from tinybench import tiny_experiment

from dataloop.bench import (
    Arm,
    BenchError,
    CurvePoint,
    Experiment,
    area,
    curve,
    load_experiment,
    read_results,
    run_config,
)
from dataloop.config import dump_config, load_config, validate_config
from dataloop.schema import HistoryEntry
from dataloop.stats import mean_ci, paired

# Student's t quantiles for a 95 % two-sided interval, from a printed table.
T_975 = {2: 4.303, 3: 3.182}


def test_mean_ci_matches_a_hand_computed_interval() -> None:
    # mean 0.6, sample sd 0.1, n 3: half width = t(0.975, 2) * 0.1 / sqrt(3)
    e = mean_ci([0.5, 0.6, 0.7])
    half = T_975[2] * 0.1 / math.sqrt(3)
    assert e.mean == pytest.approx(0.6)
    assert e.low == pytest.approx(0.6 - half, abs=1e-3)
    assert e.high == pytest.approx(0.6 + half, abs=1e-3)
    one = mean_ci([0.4])
    assert (one.low, one.mean, one.high, one.n) == (0.4, 0.4, 0.4, 1)


def test_paired_difference_matches_a_hand_computed_t_test() -> None:
    arm = [0.60, 0.70, 0.80, 0.65]
    base = [0.50, 0.62, 0.70, 0.60]
    # differences 0.10, 0.08, 0.10, 0.05: mean 0.0825, sample sd 0.023629
    result = paired(arm, base)
    sd = math.sqrt(sum((d - 0.0825) ** 2 for d in (0.10, 0.08, 0.10, 0.05)) / 3)
    half = T_975[3] * sd / 2
    assert result.difference.mean == pytest.approx(0.0825)
    assert result.difference.low == pytest.approx(0.0825 - half, abs=1e-3)
    assert result.difference.high == pytest.approx(0.0825 + half, abs=1e-3)
    # t = 0.0825 / (sd / 2) = 6.98 on 3 degrees of freedom: p = 0.006 (two-sided, from a table)
    assert result.p_value == pytest.approx(0.006, abs=1e-3)
    assert result.verdict == "better"
    noisy = paired([0.6, 0.5, 0.7], [0.5, 0.6, 0.6])  # differences +0.1, -0.1, +0.1
    assert noisy.verdict == "no difference shown"
    assert paired([0.4, 0.5], [0.6, 0.7]).verdict == "worse"  # no spread: p is 0
    assert paired([0.4], [0.6]).verdict == "no difference shown"  # one seed shows nothing


def test_area_is_the_trapezoid_under_accuracy_vs_budget_flat_after_the_end() -> None:
    def point(spent: float, acc: float) -> CurvePoint:
        return CurvePoint(iteration=0, queries=0, examples=0, budget_spent=spent, mean_accuracy=acc)

    # 0 -> 0.5: (0.2 + 0.4) / 2 * 0.5 = 0.15; then flat at 0.4 over the other half: 0.2
    assert area([point(0.0, 0.2), point(0.5, 0.4)]) == pytest.approx(0.35)
    assert area([point(0.0, 0.3)]) == pytest.approx(0.3)


def test_curve_measures_budget_by_the_arms_own_currency() -> None:
    history = [
        HistoryEntry(iteration=0, accuracy={}, mean_accuracy=0.1),
        HistoryEntry(iteration=1, accuracy={}, mean_accuracy=0.3, accepted={"a": 30}, queries=6),
        HistoryEntry(iteration=2, accuracy={}, mean_accuracy=0.5, accepted={"a": 30}, queries=6),
    ]
    # Each currency gives other shares: 6 of 24 queries a step, 30 of 240 examples, 1 of 5
    # iterations.
    cfg = validate_config(
        {"iterations": 5, "teacher": {"max_queries": 24}, "engine": {"max_examples": 240}}
    )
    assert [p.budget_spent for p in curve(cfg, history)] == [0.0, 0.25, 0.5]
    cfg.engine.source = "oracle"
    assert [p.budget_spent for p in curve(cfg, history)] == [0.0, 0.125, 0.25]
    cfg.engine.source = "none"
    assert [p.budget_spent for p in curve(cfg, history)] == [0.0, 0.2, 0.4]
    assert [p.queries for p in curve(cfg, history)] == [0, 6, 12]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds: [0]\nbudget: {queries: 5}\narms: [{name: a}, {name: a}]", "distinct"),
        ("seeds: [0]\nbudget: {queries: 5}\narms: [{name: a}]\nbaselines: [b]", "not arms"),
        ("seeds: []\nbudget: {queries: 5}\narms: [{name: a}]", "experiment field 'seeds'"),
        ("seeds: [0]\narms: [{name: a}]", "experiment field 'budget'"),
        ("seeds: [0]\nbudget: {queries: 5}\narms: [{name: a}]\nbogus: 1", "'bogus': unknown"),
        ("seeds: [0\n", r"not valid YAML: .*\(line 2, column 1\)"),
        ("seeds: [0]\nseeds: [1]\nbudget: {queries: 5}\narms: [{name: a}]", "seeds"),
        ("seeds: [0]\nbudget: {queries: 5}\narms: [{name: x, use: best}]", "unknown built-in"),
        (
            "seeds: [0]\nbudget: {queries: 5}\narms: [{name: x, set: {iterations: -1}}]",
            "iterations",
        ),
    ],
)
def test_bad_experiments_are_one_line_naming_the_field(tmp_path, text, message) -> None:
    path = _write(tmp_path / "exp.yaml", text)
    with pytest.raises(BenchError, match=message) as err:
        spec, base = load_experiment(path)
        for arm in spec.arms:
            run_config(spec, base, arm, 0, tmp_path)
    assert "\n" not in str(err.value)


def test_every_arm_gets_the_experiments_budget_and_seed(tmp_path) -> None:
    _write(tmp_path / "base.yaml", "iterations: 3\npolicy: {examples_per_iteration: 40}")
    path = _write(
        tmp_path / "exp.yaml",
        "config: base.yaml\nbase: {teacher: {max_queries: 999}}\nseeds: [3]\n"
        "budget: {queries: 30}\narms: [{name: seed-only}, {name: oracle, set: {policy.name: "
        "uniform}}, {name: mine, use: weakest-skills, set: {engine.shots: 4}}]",
    )
    spec, base = load_experiment(path)
    arms = {a.name: run_config(spec, base, a, 3, tmp_path / "out") for a in spec.arms}
    assert arms["seed-only"].engine.source == "none"
    assert (arms["oracle"].engine.source, arms["oracle"].policy.name) == ("oracle", "uniform")
    assert (arms["mine"].policy.name, arms["mine"].engine.shots) == ("weakest-skills", 4)
    for cfg in arms.values():
        assert cfg.seed == 3 and cfg.iterations == 3
        assert cfg.teacher.max_queries == 30  # the experiment's budget beats the base config
        assert cfg.engine.max_examples == 120  # default: iterations x examples per iteration
    assert arms["mine"].runs_dir / arms["mine"].name == tmp_path / "out/mine/seed-3"
    assert Arm(name="uniform").overrides() == {"policy.name": "uniform"}
    assert isinstance(spec, Experiment)


def test_an_arms_policy_brings_its_presets_unless_the_experiment_sets_them(tmp_path) -> None:
    text = "seeds: [0]\nbudget: {queries: 5}\narms: [{name: llm2llm}, {name: uniform}]"
    spec, base = load_experiment(_write(tmp_path / "exp.yaml", text))
    arms = {a.name: run_config(spec, base, a, 0, tmp_path) for a in spec.arms}
    # LLM2LLM retrains from the base model each iteration (the paper); others continue.
    assert arms["llm2llm"].student.train_from == "base"
    assert arms["uniform"].student.train_from == "previous"
    text += "\nbase: {student: {train_from: previous}}"
    spec, base = load_experiment(_write(tmp_path / "exp.yaml", text))
    assert run_config(spec, base, spec.arms[0], 0, tmp_path).student.train_from == "previous"


def test_an_arm_that_sets_a_structure_gets_its_policy_and_old_runs_stay_valid(tmp_path) -> None:
    text = (
        "seeds: [0]\nbudget: {queries: 5}\nbase: {policy: {examples_per_iteration: 9}}\n"
        "arms: [{name: list}, {name: open, set: {env.structure: open-ended}},"
        " {name: tree, set: {env.structure: skill-tree}},"
        " {name: mine, set: {env.structure: skill-tree, policy.name: uniform}}]"
    )
    spec, base = load_experiment(_write(tmp_path / "exp.yaml", text))
    arms = {a.name: run_config(spec, base, a, 0, tmp_path) for a in spec.arms}
    assert {name: c.policy.name for name, c in arms.items()} == {
        "list": "weakest-skills",
        "open": "error-guided",
        "tree": "skill-tree",
        "mine": "uniform",
    }
    assert arms["open"].env.feedback_per_skill == 20
    # A run folder saved before env.structure existed reads back with the default: still valid.
    folder = tmp_path / "list" / "seed-0"
    folder.mkdir(parents=True)
    saved = yaml.safe_load(dump_config(arms["list"]))
    for field in ("structure", "feedback_per_skill", "probes_shown"):
        del saved["env"][field]
    (folder / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_config(folder / "config.yaml") == arms["list"]


def _started(out: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(out)) for p in out.glob("*/seed-*/state.json"))


@pytest.mark.integration
def test_bench_killed_with_sigkill_resumes_without_rerunning_finished_runs(tmp_path) -> None:
    """The real CLI, the tiny student trained for real, a scripted loopback teacher."""
    with FakeOpenAI(latency=0.05, reply=few_shot_variations) as server:
        experiment = _write(
            tmp_path / "exp.yaml",
            tiny_experiment(server.base_url, arms=("seed-only", "oracle", "uniform")),
        )
        out = tmp_path / "bench"
        command = [sys.executable, "-m", "dataloop.cli", "bench", str(experiment), "--quiet",
                   "--out", str(out)]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once the first run has finished and the second has started.
        deadline = time.monotonic() + 300
        first = out / "seed-only/seed-0/state.json"
        while proc.poll() is None and not (
            first.is_file() and json.loads(first.read_text())["done"] and len(_started(out)) >= 2
        ):
            assert time.monotonic() < deadline, "the first run never finished"
            time.sleep(0.05)
        assert proc.poll() is None, "the experiment ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        finished_before = first.stat().st_mtime_ns

        again = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        assert "seed-only, seed 0 (done before)" in again.stderr
        assert first.stat().st_mtime_ns == finished_before  # the finished run was not touched
        results = json.loads((out / "results.json").read_text())
        assert len(results["runs"]) == 6 and not results["pending"]
        by_arm = {a["arm"]: a for a in results["arms"]}
        assert by_arm["uniform"]["queries"] <= 6
        assert by_arm["oracle"]["examples"] == 24  # two iterations of 12, all of them drawn
        assert by_arm["seed-only"]["examples"] == 0
        rows = {(c["arm"], c["metric"]) for c in results["comparisons"]}
        # AUC's x-axis is each source's own budget: compared only within a source.
        assert ("oracle", "final") in rows and ("uniform", "final") in rows
        assert ("oracle", "auc") not in rows
        assert "| oracle | 2 |" in (out / "results.md").read_text()
        # Every finished run is recorded beside the experiment file, with its code.
        recorded = read_results(tmp_path / "results" / "exp.jsonl")
        assert sorted((r.arm, r.seed) for r in recorded) == sorted(
            (a, s) for a in ("seed-only", "oracle", "uniform") for s in (0, 1)
        )
        assert all(r.code.versions.get("torch") for r in recorded)

        # On another machine (no run folders), the recorded runs are not run again.
        elsewhere = tmp_path / "elsewhere"
        third = subprocess.run([*command[:-1], str(elsewhere)], capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert third.returncode == 0, third.stderr
        assert not elsewhere.joinpath("uniform").exists()
        assert third.stderr.count("(done before)") == 6
        assert (elsewhere / "results.md").read_text() == (out / "results.md").read_text()


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (Path(__file__).resolve().parent.parent / "experiments").glob("*.yaml")),
)
def test_the_shipped_experiments_load_and_give_every_arm_one_budget(name: str) -> None:
    root = Path(__file__).resolve().parent.parent
    spec, base = load_experiment(root / "experiments" / name)
    configs = [run_config(spec, base, a, 0, Path("out")) for a in spec.arms]
    assert {c.teacher.max_queries for c in configs} == {spec.budget.queries}
    # A registered comparison has its powered seeds, an older comparison at least five; a
    # calibration compares nothing.
    assert len(spec.seeds) >= (12 if spec.primary else 5 if spec.baselines else 1)


def test_every_arm_is_checked_as_run_would_before_the_first_run(tmp_path) -> None:
    """A typo in the last arm fails at once, not after every earlier arm has run."""
    from dataloop.bench import run_bench

    text = (
        "seeds: [0]\nbudget: {queries: 5}\narms: [{name: seed-only}, "
        "{name: late, set: {policy.name: uniform, engine.strategy: no-such-strategy}}]"
    )
    spec, base = load_experiment(_write(tmp_path / "exp.yaml", text))
    with pytest.raises(BenchError, match="arm 'late'") as err:
        run_bench(spec, base, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out" / "seed-only").exists()  # nothing ran
