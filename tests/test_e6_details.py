"""E6's details (benchmarks/e6_details.py): what the per-run records do not hold, collected from
run folders into a committed file that outlives them, and tabulated from that file alone."""

from __future__ import annotations

import json
from pathlib import Path

from benchscripts import load

details = load("e6_details")


def _candidate(verdict: str, score: int | None = None) -> str:
    provenance = {"judge_score": score, "judge_reason": "fine"} if score is not None else {}
    return json.dumps({"example": {"provenance": provenance}, "verdict": verdict}) + "\n"


def _run(root: Path, arm: str, seed: int, *, done: bool = True, judged: bool = False) -> Path:
    run = root / arm / f"seed-{seed}"
    (run / "iterations" / "0").mkdir(parents=True)  # the reset: no generation
    (run / "state.json").write_text(json.dumps({"done": done}))
    for k, level in ((1, 0), (2, 1)):
        folder = run / "iterations" / str(k)
        folder.mkdir()
        rows = [_candidate("accepted", 4 if judged else None), _candidate("duplicate")]
        if judged:
            rows += [_candidate("low-score", 2), _candidate("low-score")]  # one not judged
        elif k == 1:
            rows.append(_candidate("near-duplicate"))  # a verdict without a column: "other"
        (folder / "generated.jsonl").write_text("".join(rows))
        counts = [{"skill": "len", "judged_out": 2 if judged else 0}]
        (folder / "generation.json").write_text(json.dumps({"counts": counts, "queries": 5}))
        request = {"skill": "len", "level": level} if arm == "edge" else {"skill": "len"}
        (folder / "plan.json").write_text(json.dumps({"requests": [request]}))
        measured = {"len": {"level": level, "samples": 4, "solved": k}} if arm == "edge" else {}
        (folder / "observation.json").write_text(json.dumps({"difficulty": measured}))
    return run


def test_collect_keeps_finished_runs_and_those_whose_folders_are_gone(tmp_path) -> None:
    runs, path = tmp_path / "runs", tmp_path / "details.jsonl"
    _run(runs, "edge", 400)
    _run(runs, "uniform-judge", 400, judged=True)
    _run(runs, "uniform", 401, done=False)  # unfinished: not collected
    assert details.collect(runs, path) == 2
    judge = details.load(path)["uniform-judge/seed-400"]["iterations"][0]
    assert judge["verdicts"] == {"accepted": 1, "duplicate": 1, "low-score": 2}
    assert (judge["judge_scores"], judge["not_judged"], judge["judged_out"]) == (
        {"4": 1, "2": 1},
        1,
        2,
    )
    # The folders go (a new checkout); the committed records stay, and new runs join them.
    other = tmp_path / "other"
    _run(other, "uniform", 401)
    assert details.collect(other, path) == 3
    assert sorted(details.load(path)) == [
        "edge/seed-400",
        "uniform-judge/seed-400",
        "uniform/seed-401",
    ]


def test_tables_show_edge_s_levels_and_the_judge_s_work(tmp_path) -> None:
    runs = tmp_path / "runs"
    for seed in (400, 401):
        _run(runs, "edge", seed)
        _run(runs, "uniform-judge", seed, judged=True)
    details.collect(runs, tmp_path / "details.jsonl")
    records = list(details.load(tmp_path / "details.jsonl").values())
    edge = details.edge_table(records)
    assert "| len | L0: 2; solved 25 % of 8 | L1: 2; solved 50 % of 8 |" in edge
    assert "| first | —; solved none sampled | —; solved none sampled |" in edge
    verdicts = details.verdict_table(records)
    # 2 runs x 2 iterations: 4 accepted, 8 low-score of which 4 not judged; 8 scored.
    assert (
        "| uniform-judge | 2 | 2.0 | 20 | 4 | 4 | 0 | 0 | 0 | 8 | 0 | 4 | 8 | 2: 4, 4: 4; "
        in verdicts
    )
    assert "100 % with one reason: “fine”" in verdicts  # all 8 scored gave the same reason
    assert "| edge | 2 | 2.0 | 20 | 4 | 4 | 0 | 0 | 0 | 0 | 2 | 0 | 0 | — |" in verdicts


def _refused(question: str, level: int | None) -> str:
    example = {
        "id": question,
        "skill": "len",
        "question": question,
        "answer": "0",
        "provenance": {"source": "generated", "level": level},
    }
    return json.dumps({"example": example, "verdict": "unverified"}) + "\n"


def test_refused_candidates_are_told_apart_by_why(tmp_path) -> None:
    """E6's reading: `edge` at level 0 refused well-formed candidates the task places higher."""
    runs = tmp_path / "runs"
    run = _run(runs, "edge", 400)
    with (run / "iterations" / "1" / "generated.jsonl").open("a") as out:
        out.write(_refused("len(", 0))  # does not parse
        out.write(_refused("len(elephant)", 0))  # 8 letters: level 3, asked 0
        out.write(_refused("len(at)", 2))  # level 0, asked 2
        out.write(_refused("len(tree)", None))  # no level asked: refused for another reason
    details.collect(runs, tmp_path / "details.jsonl")
    records = list(details.load(tmp_path / "details.jsonl").values())
    assert records[0]["iterations"][0]["unverified"] == {
        "easier": 1,
        "harder": 1,
        "malformed": 1,
        "other": 1,
    }
    assert "| edge | 4 | 1 | 1 | 1 | 1 |" in details.unverified_table(records)
    # Records collected before the split was counted leave their arm out, not show zeros.
    del records[0]["iterations"][1]["unverified"]
    assert "| edge |" not in details.unverified_table(records)
