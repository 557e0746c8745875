"""`dataloop report` on a skill-tree run: the sunburst PNG, the node tables, the data accuracy;
a run without a tree reports as before; a damaged tree.json is named."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from dataloop.report import build_report
from dataloop.runs import Metrics, RunDir, RunError, RunState
from dataloop.schema import (
    Example,
    GenerationReport,
    HistoryEntry,
    Observation,
    SkillInfo,
    SkillNode,
    SkillTree,
    Subskill,
)
from dataloop.sunburst import MIDDLE, OUTER, sunburst

LONG = "carrying-across-several-columns-with-leading-zeros-in-the-operands"


def _tree(k: int) -> SkillTree:
    """After iteration ``k``: ``add`` grows ``carry`` in 1 and the long-named subskill in 2;
    ``words`` never has a subskill."""
    carry = Subskill(
        name="carry",
        description="with a carry",
        iteration=1,
        items=12,
        accuracy=[None, 3 / 12, 5 / 12][k],
        data=[0, 20, 30][k],
    )
    long = Subskill(
        name=LONG, description="long", iteration=2, labelled_by="teacher", items=0, data=4
    )
    subskills = [carry, long][:k]
    return SkillTree(
        skills=[
            SkillNode(name="add", description="a+b", accuracy=0.5, data=40, subskills=subskills),
            SkillNode(name="words", description="w", accuracy=0.25, data=24),
        ]
    )


def _run(tmp_path: Path, *, tree: bool = True, data_accuracy: bool = True) -> RunDir:
    """A finished run folder as a skill-tree run leaves it after reset and two iterations."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_state(RunState(iteration=2, phase="trained", done=True))
    history = [
        HistoryEntry(iteration=k, accuracy={"add": 0.5, "words": 0.25}, mean_accuracy=0.375)
        for k in (0, 1, 2)
    ]
    run.write_metrics(Metrics(iterations=history))
    skills = [SkillInfo(name="add", description="a+b"), SkillInfo(name="words", description="w")]
    for k in (0, 1, 2):
        obs = Observation(
            iteration=k,
            skills=skills,
            accuracy={"add": 0.5, "words": 0.25},
            mean_accuracy=0.375,
            structure="skill-tree" if tree else "skill-list",
            tree=_tree(k) if tree else None,
            data_accuracy={"add": 0.9, "words": 0.125 * k} if data_accuracy and k else {},
        )
        run.write_model(f"iterations/{k}/observation.json", obs)
        if tree:
            run.write_model(f"iterations/{k}/tree.json", _tree(k))
        if k:
            run.write_model(f"iterations/{k}/generation.json", GenerationReport())
            run.write_jsonl(f"iterations/{k}/accepted.jsonl", [Example.make("add", "1+1", "2")])
    return run


def _report(run: RunDir) -> tuple[str, str]:
    """The page and the terminal output."""
    out = io.StringIO()
    page = build_report(run, Console(file=out, width=200))
    return page.read_text(), out.getvalue()


def test_a_skill_tree_run_gets_a_sunburst_and_node_tables(tmp_path) -> None:
    run = _run(tmp_path)
    html, terminal = _report(run)
    png = run.path / "report" / "tree.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert '<h2>Skill tree (iteration 2)</h2><img id="tree"' in html
    assert html.count("data:image/png;base64,") == 2
    # the node table: skill, subskill, added in, labelled by, items, accuracy, data
    assert "<td>add</td><td>carry</td><td>iter 1</td><td>task</td><td>12</td><td>41.7%</td>" in html
    assert f"<td>{LONG}</td><td>iter 2</td><td>teacher</td><td>0</td><td>—</td><td>4</td>" in html
    assert "<td>words</td><td>(whole skill)</td><td></td><td></td><td></td><td>25.0%</td>" in html
    # how each subskill moved: blank before it was added, — while it has no items
    assert "<td>add</td><td>carry</td><td></td><td>25.0%</td><td>41.7%</td>" in html
    assert f"<td>{LONG}</td><td></td><td></td><td>—</td>" in html
    assert "skill tree (iteration 2)" in terminal and "subskill accuracy by iteration" in terminal
    assert "carry" in terminal and LONG in terminal


def test_accuracy_on_the_data_just_trained_on_is_shown_next_to_validation(tmp_path) -> None:
    html, terminal = _report(_run(tmp_path, tree=False))
    validation = html.index("<h2>Validation accuracy</h2>")
    data = html.index("<h2>Accuracy on the data just trained on</h2>")
    assert validation < data < html.index("<h2>Provenance")
    table = html[data : html.index("</table>", data)]
    assert "<th>iter 1</th><th>iter 2</th>" in table and "reset" not in table
    assert "<td>words</td><td>12.5%</td><td>25.0%</td>" in table
    assert "accuracy on the data just trained on" in terminal


def test_a_run_without_tree_or_data_accuracy_reports_as_before(tmp_path) -> None:
    run = _run(tmp_path, tree=False, data_accuracy=False)
    html, terminal = _report(run)
    assert (run.path / "report" / "curves.png").is_file()
    assert not (run.path / "report" / "tree.png").exists()
    assert "Skill tree" not in html and "just trained on" not in html
    assert html.count("<h2>") == 3 and html.count("data:image/png;base64,") == 1
    assert "skill tree" not in terminal and "just trained on" not in terminal
    # a folder with no observation.json at all (written by hand, or by an old dataloop)
    for k in (0, 1, 2):
        (run.iteration(k) / "observation.json").unlink()
    assert _report(run)[0] == html


def test_a_damaged_tree_file_is_named_and_no_report_is_written(tmp_path) -> None:
    run = _run(tmp_path)
    (run.iteration(2) / "tree.json").write_text('{"skills": [{"name": "add"}]}')
    with pytest.raises(RunError, match=r"iterations/2/tree\.json is damaged: field 'skills\.0"):
        build_report(run)
    assert not (run.path / "report").exists()


def test_a_skill_wedge_is_split_among_its_subskills_by_items() -> None:
    tree = _tree(2)
    tree.skills[0].subskills[1].items = 4  # carry 12, the long one 4
    tree.skills[0].subskills.append(Subskill(name="empty", description="none", items=0))
    add, carry, long, empty, words = sunburst(tree)
    assert (add.start, add.end, words.start, words.end) == (90, 270, 270, 450)
    assert (add.outer, words.outer) == (MIDDLE, OUTER)  # no subskills: one wedge out to the rim
    spans = [w.end - w.start for w in (carry, long, empty)]
    assert carry.start == add.start and empty.end == pytest.approx(add.end)
    assert sum(spans) == pytest.approx(180)
    # By items (the skill's own count unknown: their sum), at least 5 % each, scaled to fit.
    assert spans == pytest.approx([180 * x / 1.05 for x in (12 / 16, 4 / 16, 0.05)])
    tree.skills[0].items = 32  # the subskills hold half the skill's items: half its wedge
    spans = [w.end - w.start for w in sunburst(tree)[1:4]]
    assert spans == pytest.approx([180 * x for x in (12 / 32, 4 / 32, 0.05)])
    assert empty.accuracy is None and long.accuracy is None  # grey: no items to score
    assert carry.accuracy == pytest.approx(5 / 12)


def test_subskills_without_items_share_their_skill_equally() -> None:
    tree = SkillTree(
        skills=[
            SkillNode(
                name="add",
                description="a+b",
                subskills=[Subskill(name=n, description=n) for n in "abcd"],
            )
        ]
    )
    add, *subs = sunburst(tree)
    assert (add.start, add.end) == (90, 450)
    assert [w.end - w.start for w in subs] == pytest.approx([90] * 4)


def test_a_subskill_covers_only_its_share_of_its_skill() -> None:
    from dataloop.sunburst import subskill_shares

    assert subskill_shares([50], 100) == pytest.approx(
        [0.5]
    )  # half the skill's items: half the wedge
    assert subskill_shares([30, 20], 100) == pytest.approx([0.3, 0.2])
    assert sum(subskill_shares([80, 60], 100)) == pytest.approx(1.0)  # overlapping: the whole wedge
    assert subskill_shares([0, 50], 100) == pytest.approx([0.05, 0.5])  # a floor still shows


def test_removal_stages_show_as_columns_only_where_they_removed_something(tmp_path) -> None:
    from dataloop.display import Display
    from dataloop.schema import FilterCounts

    run = _run(tmp_path, tree=False)
    counts = [
        FilterCounts(skill="add", strategy="new-question", requested=4, near_duplicates=3,
                     benchmarks={"gsm8k": 2, "mbpp": 1}),
        FilterCounts(skill="words", strategy="new-question", requested=4),
    ]  # fmt: skip
    run.write_model("iterations/2/generation.json", GenerationReport(counts=counts))
    html, terminal = _report(run)
    assert "<th>near-duplicates</th><th>benchmarks</th>" in html
    assert "<td>new-question</td><td>add</td><td>4</td>" in html and "<td>3</td><td>3</td>" in html
    assert "<h2>Benchmark overlap: candidates removed per benchmark</h2>" in html
    assert "<tr><td>gsm8k</td><td>0</td><td>2</td></tr>" in html  # none in iteration 1
    assert "benchmark overlap" in terminal
    out = io.StringIO()
    Display(Console(file=out, width=200)).generation_table(counts)
    table = out.getvalue()
    assert "near-duplicates" in table and "benchmarks" in table
    out = io.StringIO()
    Display(Console(file=out, width=200)).generation_table(counts[1:])
    assert "near-duplicates" not in out.getvalue() and "accepted" in out.getvalue()
    # and a run where no optional stage removed anything has neither column nor table
    (tmp_path / "plain").mkdir()
    html, _ = _report(_run(tmp_path / "plain", tree=False))
    assert "near-duplicates" not in html and "Benchmark overlap" not in html


def test_the_judges_scores_are_shown_per_skill_and_iteration(tmp_path) -> None:
    run = _run(tmp_path, tree=False)

    def judged(skill: str, score: int | None, verdict: str = "accepted") -> str:
        example = Example.make(skill, f"q{score}", "a", judge_score=score, judge_reason="why")
        return json.dumps({"example": example.model_dump(), "verdict": verdict}) + "\n"

    unjudged = {"example": Example.make("words", "x", "y").model_dump(), "verdict": "duplicate"}
    lines = [judged("add", 5), judged("add", 2, "low-score"), judged("add", 5)]
    (run.iteration(1) / "generated.jsonl").write_text("".join(lines))
    lines = [judged("words", None, "low-score"), judged("words", 4), json.dumps(unjudged)]
    (run.iteration(2) / "generated.jsonl").write_text("".join(lines))
    html, terminal = _report(run)
    assert "<h2>Judge scores: candidates per score, by skill and iteration</h2>" in html
    # skill, iteration, then how many got 1 .. 5, unscored, the mean
    row = "<td>add</td><td>iter 1</td>" + "<td>0</td><td>1</td><td>0</td><td>0</td><td>2</td>"
    assert row + "<td>0</td><td>4.00</td>" in html
    row = "<td>words</td><td>iter 2</td>" + "<td>0</td><td>0</td><td>0</td><td>1</td><td>0</td>"
    assert row + "<td>1</td><td>4.00</td>" in html
    assert "judge scores" in terminal
