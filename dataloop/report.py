"""What a run did: learning curves (PNG), provenance and budget tables, one HTML page."""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dataloop.atomic import write_text
from dataloop.runs import Metrics, RunDir, RunState
from dataloop.schema import GenerationReport

COUNT_FIELDS = ("requested", "generated", "parsed", "verified", "deduplicated", "accepted")


@dataclass
class RunSummary:
    """The numbers a report shows, read from a run directory."""

    name: str
    state: RunState
    metrics: Metrics
    provenance: dict[tuple[str, str], dict[str, int]]
    """(strategy, skill) -> summed filter counts over all iterations."""

    @classmethod
    def load(cls, run: RunDir) -> RunSummary:
        """Read state, metrics and every iteration's generation counts; a damaged accepted set
        is refused too, as the report would describe data the run cannot give back."""
        state = run.read_state()
        metrics = run.read_metrics()
        provenance: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(COUNT_FIELDS, 0)
        )
        for k in run.iterations_done():
            run.accepted(k)
            report = run.read_model(f"iterations/{k}/generation.json", GenerationReport)
            for c in report.counts:
                row = provenance[(c.strategy, c.skill)]
                for field in COUNT_FIELDS:
                    row[field] += getattr(c, field)
        return cls(run.path.name, state, metrics, dict(sorted(provenance.items())))

    @property
    def skills(self) -> list[str]:
        """Skills in the order the metrics list them."""
        return list(self.metrics.iterations[0].accuracy) if self.metrics.iterations else []


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


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _accuracy_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    history = summary.metrics.iterations
    headers = ["skill", *("reset" if h.iteration == 0 else f"iter {h.iteration}" for h in history)]
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
    return headers, rows


def _provenance_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    headers = ["strategy", "skill", *COUNT_FIELDS]
    rows = [
        [strategy, skill, *(str(counts[f]) for f in COUNT_FIELDS)]
        for (strategy, skill), counts in summary.provenance.items()
    ]
    return headers, rows


def _budget_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    b = summary.state.budget
    limit = "unlimited" if b.max_queries is None else str(b.max_queries)
    rows = [
        ["teacher queries", str(b.queries), limit],
        ["prompt tokens", str(b.prompt_tokens), ""],
        ["completion tokens", str(b.completion_tokens), ""],
    ]
    if b.max_tokens is not None:
        rows[1][2] = f"{b.max_tokens} (prompt + completion)"
    return ["spent", "amount", "limit"], rows


def write_html(summary: RunSummary, png: Path, path: Path) -> Path:
    """One self-contained page: the curve image is embedded, no external files."""
    image = base64.b64encode(png.read_bytes()).decode()
    status = "finished" if summary.state.done else f"stopped at iteration {summary.state.iteration}"
    sections = [
        ("Validation accuracy", _html_table(*_accuracy_rows(summary))),
        ("Provenance: teacher output by strategy, skill", _html_table(*_provenance_rows(summary))),
        ("Budget", _html_table(*_budget_rows(summary))),
    ]
    body = "".join(f"<h2>{html.escape(t)}</h2>{table}" for t, table in sections)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dataloop run {html.escape(summary.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body><h1>dataloop run {html.escape(summary.name)}</h1><p>Status: {status}.</p>
<img id="curves" alt="learning curves" src="data:image/png;base64,{image}">
{body}</body></html>
"""
    write_text(path, page)
    return path


def print_report(summary: RunSummary, console: Console) -> None:
    """The same tables in the terminal."""
    for title, (headers, rows) in (
        ("validation accuracy", _accuracy_rows(summary)),
        ("provenance", _provenance_rows(summary)),
        ("budget", _budget_rows(summary)),
    ):
        table = Table(*headers, title=title, title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def build_report(run: RunDir, console: Console | None = None) -> Path:
    """Write ``report/curves.png`` and ``report/index.html`` into the run; return the page."""
    summary = RunSummary.load(run)
    png = plot_curves(summary, run.path / "report" / "curves.png")
    page = write_html(summary, png, run.path / "report" / "index.html")
    if console is not None:
        print_report(summary, console)
    return page
