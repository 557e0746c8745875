"""What a run did: learning curves (PNG), provenance and budget tables, one HTML page; for a
``skill-tree`` run also the tree as a sunburst (PNG) and per-node tables."""

from __future__ import annotations

import base64
import html
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from dataloop.atomic import write_text
from dataloop.runs import Metrics, RunDir, RunState
from dataloop.schema import Example, FilterCounts, GenerationReport, SkillDifficulty, SkillTree
from dataloop.sunburst import plot_tree

COUNT_FIELDS = (*FilterCounts.STAGES, *FilterCounts.REMOVED)


class _Candidate(BaseModel):
    """A line of ``generated.jsonl`` as the report reads it: the candidate's example."""

    model_config = ConfigDict(extra="ignore")

    example: Example


@dataclass
class RunSummary:
    """The numbers a report shows, read from a run directory."""

    name: str
    state: RunState
    metrics: Metrics
    provenance: dict[tuple[str, str], dict[str, int]]
    """(strategy, skill) -> summed filter counts over all iterations."""
    trees: dict[int, SkillTree]
    """Iteration -> skill tree, for the iterations that have one (``skill-tree`` runs)."""
    data_accuracy: dict[int, dict[str, float]]
    """Iteration -> per-skill accuracy on the data just trained on, where it was recorded."""
    benchmark_hits: dict[int, dict[str, int]]
    """Iteration -> candidates removed per benchmark (``engine.benchmarks``)."""
    judge_scores: dict[tuple[str, int], Counter[int | None]]
    """(skill, iteration) -> the LLM judge's scores of its candidates (None: not scored), for
    the iterations it judged (``engine.judge``)."""
    difficulty: dict[int, dict[str, SkillDifficulty]]
    """Iteration -> per skill, the difficulty level its data was asked at and the student's
    sampled solve rate on it (``edge``), for the iterations that measured it."""

    @classmethod
    def load(cls, run: RunDir) -> RunSummary:
        """Read state, metrics, every iteration's generation counts, observation and tree; a
        damaged accepted set is refused too, as the report would describe data the run cannot
        give back."""
        state = run.read_state()
        metrics = run.read_metrics()
        # Folders written before trees and data accuracy existed have neither: nothing to show.
        completed = [h.iteration for h in metrics.iterations]
        trees = {k: tree for k in completed if (tree := run.tree(k)) is not None}
        observations = {k: obs for k in completed if (obs := run.observation(k)) is not None}
        data_accuracy = {k: o.data_accuracy for k, o in observations.items() if o.data_accuracy}
        difficulty = {k: o.difficulty for k, o in observations.items() if o.difficulty}
        provenance: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(COUNT_FIELDS, 0)
        )
        benchmark_hits: dict[int, dict[str, int]] = {}
        judge_scores: dict[tuple[str, int], Counter[int | None]] = {}
        for k in run.iterations_done():
            run.accepted(k)
            report = run.read_model(f"iterations/{k}/generation.json", GenerationReport)
            hits: Counter[str] = Counter()
            for c in report.counts:
                row = provenance[(c.strategy, c.skill)]
                for field in COUNT_FIELDS:
                    row[field] += c.count(field)
                hits.update(c.benchmarks)
            benchmark_hits[k] = dict(hits)
            if run.exists(f"iterations/{k}/generated.jsonl"):
                for candidate in run.read_jsonl(f"iterations/{k}/generated.jsonl", _Candidate):
                    p = candidate.example.provenance
                    if p.judge_reason is not None:  # judged, if not always scored
                        key = (candidate.example.skill, k)
                        judge_scores.setdefault(key, Counter())[p.judge_score] += 1
        return cls(
            run.path.name,
            state,
            metrics,
            dict(sorted(provenance.items())),
            trees,
            data_accuracy,
            benchmark_hits,
            dict(sorted(judge_scores.items(), key=lambda item: (item[0][0], item[0][1]))),
            difficulty,
        )

    @property
    def skills(self) -> list[str]:
        """Skills in the order the metrics list them."""
        return list(self.metrics.iterations[0].accuracy) if self.metrics.iterations else []

    @property
    def last_tree(self) -> tuple[int, SkillTree] | None:
        """The latest iteration that has a skill tree, with the tree; None without trees."""
        return (k := max(self.trees), self.trees[k]) if self.trees else None


def plot_curves(summary: RunSummary, path: Path) -> Path:
    """Per-skill validation accuracy against iteration, the mean in bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = summary.metrics.iterations
    xs = [h.iteration for h in history]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for skill in summary.skills:
        ax.plot(xs, [h.accuracy.get(skill, 0.0) for h in history], marker="o", label=skill)
    ax.plot(xs, [h.mean_accuracy for h in history], color="black", linewidth=3, label="mean")
    ax.set(xlabel="iteration (0 = reset)", ylabel="validation accuracy", ylim=(0, 1.02))
    ax.set_title(f"{summary.name}: validation accuracy per skill")
    ax.set_xticks(xs)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _when(k: int) -> str:
    return "reset" if k == 0 else f"iter {k}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


Rows = tuple[list[str], list[list[str]]]


def _accuracy_rows(summary: RunSummary) -> Rows:
    history = summary.metrics.iterations
    headers = ["skill", *(_when(h.iteration) for h in history)]
    rows = [
        [skill, *(f"{h.accuracy.get(skill, 0.0):.1%}" for h in history)] for skill in summary.skills
    ]
    rows.append(["mean", *(f"{h.mean_accuracy:.1%}" for h in history)])
    if summary.metrics.test is not None:
        headers.append("test (final)")
        for row, skill in zip(rows, summary.skills, strict=False):
            row.append(f"{summary.metrics.test.get(skill, 0.0):.1%}")
        test = summary.metrics.test
        rows[-1].append(f"{sum(test.values()) / max(1, len(test)):.1%}")
    if any(h.stale for h in history):  # an overlapped run: the observation each plan read
        planned = ["" if h.planned_from is None else _when(h.planned_from) for h in history]
        rows.append(["planned from", *planned, *([""] if summary.metrics.test is not None else [])])
    return headers, rows


def _data_accuracy_rows(summary: RunSummary) -> Rows:
    """Per skill and iteration, accuracy on the examples just trained on; — where a skill got
    none that iteration."""
    data = summary.data_accuracy
    skills = dict.fromkeys([*summary.skills, *(skill for acc in data.values() for skill in acc)])
    headers = ["skill", *(_when(k) for k in data)]
    return headers, [[s, *(_percent(acc.get(s)) for acc in data.values())] for s in skills]


def _difficulty_rows(summary: RunSummary) -> Rows:
    """Per skill and iteration: the level of its data, the share of the student's sampled
    answers on those candidates that were right, and how many it sampled; blank where the
    skill was not asked at a level."""
    data = summary.difficulty
    skills = dict.fromkeys(skill for measured in data.values() for skill in measured)
    rows = []
    for skill in skills:
        cells = []
        for measured in data.values():
            d = measured.get(skill)
            cells.append(
                "" if d is None else f"{d.level_name} · {_percent(d.solve_rate)} of {d.samples}"
            )
        rows.append([skill, *cells])
    return ["skill", *(_when(k) for k in data)], rows


def _tree_rows(tree: SkillTree) -> Rows:
    headers = ["skill", "subskill", "added in", "labelled by", "items", "accuracy", "data"]
    rows = []
    for node in tree.skills:
        rows.append(
            [node.name, "(whole skill)", "", "", "", _percent(node.accuracy), str(node.data)]
        )
        for sub in node.subskills:
            rows.append(
                [
                    node.name,
                    sub.name,
                    _when(sub.iteration),
                    sub.labelled_by,
                    str(sub.items),
                    _percent(sub.accuracy),
                    str(sub.data),
                ]
            )
    return headers, rows


def _subskill_rows(summary: RunSummary) -> Rows:
    """Each subskill's validation accuracy in every iteration's tree; blank before it was
    added, — while it has no validation items."""
    trees = summary.trees
    names = dict.fromkeys(
        (node.name, sub.name) for t in trees.values() for node in t.skills for sub in node.subskills
    )
    rows = []
    for skill, name in names:
        cells = []
        for tree in trees.values():
            sub = tree.subskill(skill, name)
            cells.append("" if sub is None else _percent(sub.accuracy))
        rows.append([skill, name, *cells])
    return ["skill", "subskill", *(_when(k) for k in trees)], rows


def _provenance_rows(summary: RunSummary) -> Rows:
    """Survivors of each stage; what an optional stage removed where it removed any."""
    counted = summary.provenance.values()
    removed = [f for f in FilterCounts.REMOVED if any(counts[f] for counts in counted)]
    fields = [*FilterCounts.STAGES, *removed]
    headers = ["strategy", "skill", *(f.replace("_", "-") for f in fields)]
    rows = [
        [strategy, skill, *(str(counts[f]) for f in fields)]
        for (strategy, skill), counts in summary.provenance.items()
    ]
    return headers, rows


def _benchmark_rows(summary: RunSummary) -> Rows:
    """Candidates removed at generation for overlapping each benchmark, per iteration."""
    hits = summary.benchmark_hits
    names = sorted({name for counts in hits.values() for name in counts})
    rows = [[name, *(str(hits[k].get(name, 0)) for k in hits)] for name in names]
    return ["benchmark", *(_when(k) for k in hits)], rows


def _judge_rows(summary: RunSummary) -> Rows:
    """How many candidates got each score, per skill and iteration, and their mean."""
    headers = ["skill", "iteration", "1", "2", "3", "4", "5", "unscored", "mean"]
    rows = []
    for (skill, k), scores in summary.judge_scores.items():
        scored = [s for s in scores.elements() if s is not None]
        mean = f"{sum(scored) / len(scored):.2f}" if scored else "—"
        counts = [str(scores.get(s, 0)) for s in (1, 2, 3, 4, 5, None)]
        rows.append([skill, _when(k), *counts, mean])
    return headers, rows


def _budget_rows(summary: RunSummary) -> Rows:
    b = summary.state.budget
    limit = "unlimited" if b.max_queries is None else str(b.max_queries)
    rows = [
        ["teacher queries", str(b.queries), limit],
        ["prompt tokens", str(b.prompt_tokens), ""],
        ["completion tokens", str(b.completion_tokens), ""],
    ]
    if b.max_tokens is not None:
        rows[1][2] = f"{b.max_tokens} (prompt + completion)"
    if summary.difficulty:  # student inference, not the teacher's budget, shown beside it
        samples = sum(
            d.samples for measured in summary.difficulty.values() for d in measured.values()
        )
        rows.append(["student samples (solve rate)", str(samples), ""])
    return ["spent", "amount", "limit"], rows


@dataclass
class _Table:
    heading: str
    """The page's heading; the terminal's title is the part before a colon, in lower case."""
    rows: Rows
    picture: Path | None = None
    """A PNG the page shows under the heading."""


def _tables(summary: RunSummary, tree_png: Path | None = None) -> list[_Table]:
    """The report's tables in page order; the tree's and the data accuracy only where the run
    has them, so an older or tree-less run reports as before."""
    tables = [_Table("Validation accuracy", _accuracy_rows(summary))]
    if summary.data_accuracy:
        tables.append(_Table("Accuracy on the data just trained on", _data_accuracy_rows(summary)))
    if summary.difficulty:
        tables.append(
            _Table(
                "Difficulty: level, student solve rate of sampled answers, samples",
                _difficulty_rows(summary),
            )
        )
    if summary.last_tree is not None:
        k, tree = summary.last_tree
        tables.append(_Table(f"Skill tree (iteration {k})", _tree_rows(tree), tree_png))
        movement = _subskill_rows(summary)
        if movement[1]:
            tables.append(_Table("Subskill accuracy by iteration", movement))
    tables.append(
        _Table("Provenance: teacher output by strategy, skill", _provenance_rows(summary))
    )
    if summary.judge_scores:
        tables.append(
            _Table(
                "Judge scores: candidates per score, by skill and iteration", _judge_rows(summary)
            )
        )
    if any(summary.benchmark_hits.values()):
        tables.append(
            _Table("Benchmark overlap: candidates removed per benchmark", _benchmark_rows(summary))
        )
    tables.append(_Table("Budget", _budget_rows(summary)))
    return tables


def _img(png: Path, alt: str) -> str:
    image = base64.b64encode(png.read_bytes()).decode()
    return f'<img id="{png.stem}" alt="{alt}" src="data:image/png;base64,{image}">'


def write_html(summary: RunSummary, png: Path, path: Path, tree_png: Path | None = None) -> Path:
    """One self-contained page: the images are embedded, no external files."""
    status = "finished" if summary.state.done else f"stopped at iteration {summary.state.iteration}"
    body = "".join(
        f"<h2>{html.escape(t.heading)}</h2>"
        + (_img(t.picture, t.heading) if t.picture else "")
        + _html_table(*t.rows)
        for t in _tables(summary, tree_png)
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dataloop run {html.escape(summary.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body><h1>dataloop run {html.escape(summary.name)}</h1><p>Status: {status}.</p>
{_img(png, "learning curves")}
{body}</body></html>
"""
    write_text(path, page)
    return path


def print_report(summary: RunSummary, console: Console) -> None:
    """The same tables in the terminal."""
    for t in _tables(summary):
        title = t.heading.split(":")[0].lower()
        # At least as wide as the title, which rich would otherwise wrap over several lines.
        table = Table(*t.rows[0], title=title, title_justify="left", min_width=len(title))
        for row in t.rows[1]:
            table.add_row(*row)
        console.print(table)


def build_report(run: RunDir, console: Console | None = None) -> Path:
    """Write ``report/curves.png`` (and ``report/tree.png`` for a run with a skill tree) and
    ``report/index.html`` into the run; return the page."""
    summary = RunSummary.load(run)
    folder = run.path / "report"
    png = plot_curves(summary, folder / "curves.png")
    tree_png = None
    if summary.last_tree is not None:
        k, tree = summary.last_tree
        title = f"{summary.name}: skill tree after iteration {k}"
        tree_png = plot_tree(tree, title, folder / "tree.png")
    page = write_html(summary, png, folder / "index.html", tree_png)
    if console is not None:
        print_report(summary, console)
    return page
