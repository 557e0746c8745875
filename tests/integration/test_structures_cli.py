"""The three levels of structure for real: the CLI in a subprocess, the embedded teacher
(llama-server + Gemma 3 270M), real training, then ``dataloop report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realcli import dataloop, small_run

pytestmark = pytest.mark.integration

LEVELS = {
    "open-ended": "error-guided",
    "skill-list": "weakest-skills",
    "skill-tree": "skill-tree",
}


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("structure", list(LEVELS))
def test_each_level_runs_from_the_cli_with_the_real_teacher(tmp_path, structure: str) -> None:
    out = small_run(
        tmp_path, "r", "--iterations", "2", "--policy", LEVELS[structure],
        "--set", f"env.structure={structure}",
        "--set", "env.options={train_per_skill: 8, validation_per_skill: 20, "
        "test_per_skill: 10, skills: [max, sort, reverse]}",
        "--set", "policy.examples_per_iteration=18",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    run = tmp_path / "r"
    observations = [_read(run / f"iterations/{k}/observation.json") for k in (0, 1, 2)]
    assert {o["structure"] for o in observations} == {structure}
    metrics = _read(run / "metrics.json")
    # The record keeps per-skill accuracy whatever the teacher was shown.
    assert all(set(h["accuracy"]) == {"max", "sort", "reverse"} for h in metrics["iterations"])
    accepted = [e for k in (1, 2) for e in _lines(run / f"iterations/{k}/accepted.jsonl")]
    assert accepted, "the teacher's data was all rejected"
    assert any(o["data_accuracy"] for o in observations[1:])  # accuracy on the data given
    plans = [_read(run / f"iterations/{k}/plan.json") for k in (1, 2)]
    if structure == "open-ended":
        assert all(o["accuracy"] == {} for o in observations)
        assert all(h["accuracy"] == {} for h in observations[-1]["history"])
        assert observations[0]["probes"], "an untrained student failed no probe"
        assert all(r["guidance"] for p in plans for r in p["requests"])
        probes = {p["example"]["id"] for o in observations for p in o["probes"]}
        assert not {e["id"] for e in accepted} & probes  # never trained on a probe
    elif structure == "skill-list":
        assert all(o["tree"] is None and o["probes"] == [] for o in observations)
        assert all(set(o["accuracy"]) == {"max", "sort", "reverse"} for o in observations)
    else:
        trees = [_read(run / f"iterations/{k}/tree.json") for k in (0, 1, 2)]
        assert all(not node["subskills"] for node in trees[0]["skills"])
        assert plans[0]["explore"], "the first plan grew no subskill"
        grown = [(n["name"], s["name"]) for n in trees[2]["skills"] for s in n["subskills"]]
        assert {(e["skill"], e["name"]) for e in plans[0]["explore"]} <= set(grown)
        assert any(s["items"] > 0 for n in trees[2]["skills"] for s in n["subskills"])
        targeted = [e for e in accepted if e["provenance"]["subskill"]]
        assert targeted
        assert all((e["skill"], e["provenance"]["subskill"]) in grown for e in targeted)
        assert observations[2]["tree"] == trees[2]
        report = dataloop("report", str(run), timeout=300)
        assert report.returncode == 0, report.stderr
        assert (run / "report/tree.png").read_bytes()[:4] == b"\x89PNG"
        assert "Skill tree (iteration 2)" in (run / "report/index.html").read_text()
