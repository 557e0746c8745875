"""An experiment's results written out: ``results.md`` (the registered decision, the per-arm
table, per-skill table and exploratory comparisons), ``results.json`` and ``curves.png``, all
from an :class:`~dataloop.bench.results.ExperimentResult`.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from dataloop.atomic import write_text
from dataloop.bench.results import ExperimentResult, RunResult
from dataloop.bench.spec import METRIC_NAMES
from dataloop.bench.timing import seconds_by_source
from dataloop.stats import Estimate, PairedDifference, mean_ci


def _pct(e: Estimate) -> str:
    if e.n < 2:
        return f"{100 * e.mean:.1f}"
    return f"{100 * e.mean:.1f} [{100 * e.low:.1f}, {100 * e.high:.1f}]"


def _signed(e: Estimate) -> str:
    if e.n < 2:
        return f"{100 * e.mean:+.1f}"
    return f"{100 * e.mean:+.1f} [{100 * e.low:+.1f}, {100 * e.high:+.1f}]"


def _p(result: PairedDifference) -> str:
    return "—" if result.p_value is None else f"{result.p_value:.3f}"


def markdown(result: ExperimentResult) -> str:
    """The registered decision, the per-arm table and the exploratory comparisons."""
    lines = [f"# {result.name}", ""]
    if result.hypothesis:
        lines += [f"Hypothesis: {result.hypothesis}", ""]
    code = ", ".join(f"{label} ({n})" for label, n in result.commits.items()) or "—"
    for name, versions in result.versions.items():
        code += f"; {name} " + ", ".join(f"{v} ({n})" for v, n in versions.items())
    lines += [
        f"Seeds {', '.join(map(str, result.seeds))}; budget per run: {result.budget.queries} "
        f"teacher queries (oracle: {result.examples_budget} examples). Mean over seeds with "
        f"a 95 % t interval, in accuracy points. Code: {code}.",
        "",
    ]
    if result.primary is not None:
        p = result.primary
        shown = "—" if p.result is None else f"{_signed(p.result.difference)}, p {_p(p.result)}"
        pairs = 0 if p.result is None else p.result.difference.n
        lines += [
            f"**Primary comparison** (registered): {p.arm} − {p.baseline}, "
            f"{METRIC_NAMES[p.metric]}, smallest effect of interest "
            f"{100 * p.smallest_effect:.1f} points: {shown} over {pairs} of "
            f"{len(result.seeds)} seeds — **{p.verdict}**"
            + (
                " (no verdict before every registered seed is in)."
                if p.verdict == "incomplete"
                else "."
            ),
            "",
        ]
    on_target = any(a.on_target is not None for a in result.arms)
    extra = " on target |" if on_target else ""
    lines += [
        "| arm | runs | iterations | queries | examples | final val. acc. | test acc. | AUC |"
        + extra,
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if on_target else ""),
    ]
    for a in result.arms:
        share = (
            ""
            if not on_target
            else (" — |" if a.on_target is None else f" {100 * a.on_target:.0f} % |")
        )
        lines.append(
            f"| {a.arm} | {a.runs} | {a.iterations:.1f} | {a.queries:.0f} | {a.examples:.0f} | "
            f"{_pct(a.final)} | {_pct(a.test)} | {_pct(a.auc)} |" + share
        )
    if on_target and result.manipulation:
        lines += ["", f"On target (manipulation check): {result.manipulation}."]
    lines += _per_skill(result)
    if result.comparisons:
        kind = "Exploratory (unadjusted, no verdict)" if result.primary else "Comparisons"
        lines += [
            "",
            f"{kind}: arm minus baseline paired by seed, mean difference with a 95 % t interval "
            "and a two-sided paired t-test. AUC only between arms of one data source.",
            "",
            "| arm | baseline | metric | difference | p |",
            "|---|---|---|---:|---:|",
        ]
        for c in result.comparisons:
            lines.append(
                f"| {c.arm} | {c.baseline} | {METRIC_NAMES[c.metric]} | "
                f"{_signed(c.result.difference)} | {_p(c.result)} |"
            )
    lines += _timing(result.runs)
    if result.pending:
        total = len(result.pending) + len(result.runs)
        shown = ", ".join(result.pending) if len(result.pending) <= 12 else "see the runs column"
        lines += ["", f"Not finished yet: {len(result.pending)} of {total} runs ({shown})."]
    return "\n".join(lines) + "\n"


def _timing(runs: list[RunResult]) -> list[str]:
    """How long the runs took: in all, and the median run of each data source."""
    sources = seconds_by_source(runs)
    if not sources:
        return []
    medians = ", ".join(
        f"{name} {statistics.median(sources[source]) / 60:.1f}"
        for source, name in SOURCE_NAMES.items()
        if source in sources
    )
    timed = [s for times in sources.values() for s in times]
    total = sum(timed) / 3600
    return [
        "",
        f"Wall time: {total:.1f} h for {len(timed)} runs; median minutes a run: {medians} "
        "(`seconds` in each record: a run resumed after an interruption counts its last "
        "stretch only).",
    ]


SOURCE_NAMES = {"teacher": "teacher arms", "oracle": "oracle arms", "none": "seed-only"}
"""Each data source as the tables name it, in the order they list them."""


def _per_skill(result: ExperimentResult) -> list[str]:
    """Per arm and skill, means over seeds: validation accuracy after reset, test accuracy at
    the end, and accepted examples."""
    skills = list(dict.fromkeys(s for r in result.runs for s in r.points[0].accuracy))
    if not skills:
        return []
    lines = [
        "",
        "Per skill, mean over seeds: validation accuracy after reset → test accuracy at the end "
        "(accepted examples).",
        "",
        "| arm | " + " | ".join(skills) + " |",
        "|---|" + "---:|" * len(skills),
    ]
    for summary in result.arms:
        runs = [r for r in result.runs if r.arm == summary.arm]

        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        cells = []
        for skill in skills:
            reset = mean([r.points[0].accuracy.get(skill, 0.0) for r in runs])
            test = mean([r.test_accuracy.get(skill, 0.0) for r in runs])
            data = mean([float(r.accepted.get(skill, 0)) for r in runs])
            cells.append(f"{100 * reset:.0f} → {100 * test:.0f} ({data:.0f})")
        lines.append(f"| {summary.arm} | " + " | ".join(cells) + " |")
    return lines


def write_results(result: ExperimentResult, out: Path) -> None:
    """``results.json``, ``results.md`` and ``curves.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", result.model_dump_json(indent=2))
    write_text(out / "results.md", markdown(result))
    if result.runs:
        plot(result, out / "curves.png")


def _band(runs: list[RunResult], grid: list[float]) -> tuple[list[float], list[float], list[float]]:
    """Mean and 95 % interval over runs of each run's curve, read at ``grid`` (linear between
    points, flat after the last)."""
    import numpy as np

    curves = []
    for r in runs:
        xs = [p.budget_spent for p in r.points]
        ys = [p.mean_accuracy for p in r.points]
        curves.append(np.interp(grid, xs, ys))
    means, lows, highs = [], [], []
    for column in np.array(curves).T:
        e = mean_ci([float(v) for v in column])
        means.append(e.mean)
        lows.append(e.low)
        highs.append(e.high)
    return means, lows, highs


def plot(result: ExperimentResult, path: Path) -> None:
    """Mean validation accuracy vs budget spent per arm, with a 95 % band over seeds."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    grid = [i / 50 for i in range(51)]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for summary in result.arms:
        runs = [r for r in result.runs if r.arm == summary.arm]
        means, lows, highs = _band(runs, grid)
        xs = [100 * g for g in grid]
        (line,) = ax.plot(xs, [100 * m for m in means], label=f"{summary.arm} (n={len(runs)})")
        ax.fill_between(
            xs,
            [100 * v for v in lows],
            [100 * v for v in highs],
            color=line.get_color(),
            alpha=0.15,
        )
    ax.set_xlabel(
        f"budget spent (% of {result.budget.queries} teacher queries; "
        f"oracle: of {result.examples_budget} examples)"
    )
    ax.set_ylabel("mean validation accuracy (%)")
    ax.set_title(f"{result.name}: mean over seeds, 95 % band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
