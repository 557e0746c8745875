"""The dataset card ``dataloop export`` writes beside the data: a ``README.md`` with Hugging Face
Hub YAML metadata and the data's story (task, teacher, budget, policy, strategies, filters with
their counts, benchmark overlap, the learning curve)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dataloop.atomic import write_text
from dataloop.errors import DataloopError
from dataloop.report import COUNT_FIELDS, RunSummary
from dataloop.schema import Example, FilterCounts

MARK = "<!-- dataset card written by dataloop export; it rewrites this file -->"
"""The card's first line after its metadata: a README.md without it is the user's, not ours."""


@dataclass
class CardFacts:
    """What the card says beyond the run's own files (the config's choices, the export's)."""

    env: str
    """The task environment's name."""
    description: str
    """The task in a sentence."""
    license: str | None
    """The seed data's Hub licence id; None when unknown (the card says ``other``)."""
    teacher: str
    """The teacher model, as the run's requests named it."""
    policy: str
    filters: dict[str, str]
    """The engine's optional filters and their settings, in words (shown as they are)."""
    data_file: str | None
    """The data's file name beside the card (``configs`` in the metadata); None for a
    ``save_to_disk`` folder, which the Hub's viewer cannot read."""
    benchmark_sizes: dict[str, int] = field(default_factory=dict)
    benchmark_hits: dict[str, int] = field(default_factory=dict)
    """Examples left out at export per benchmark."""


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M" if n < 1_000_000 else "n>1M"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metadata(facts: CardFacts, rows: int, name: str) -> dict[str, object]:
    """The card's YAML header, as the Hub reads it."""
    meta: dict[str, object] = {
        "license": facts.license or "other",
        "pretty_name": name,
        "task_categories": ["question-answering", "text-generation"],
        "language": ["en"],
        "tags": ["synthetic", "dataloop", facts.env],
        "size_categories": [_size_category(rows)],
    }
    if facts.data_file is not None:
        split = {"split": "train", "path": facts.data_file}
        meta["configs"] = [{"config_name": "default", "data_files": [split]}]
    return meta


def render_card(summary: RunSummary, examples: list[Example], facts: CardFacts) -> str:
    """The card's text for ``examples`` (what was written) of the run ``summary`` describes."""
    generated = [e for e in examples if e.provenance.source == "generated"]
    state, budget = summary.state, summary.state.budget
    strategies = Counter(e.provenance.strategy or "" for e in generated)
    skills = Counter(e.skill for e in examples)
    limit = "unlimited" if budget.max_queries is None else f"of {budget.max_queries}"
    spent = f"{budget.queries} queries ({limit}), {budget.prompt_tokens} prompt and " + (
        f"{budget.completion_tokens} completion tokens"
    )
    if budget.cost is not None:
        spent += f", {budget.cost:.2f} in money"
    status = "finished" if state.done else f"stopped after iteration {state.iteration}"
    how = [
        ["task", f"`{facts.env}`: {facts.description}"],
        ["teacher model", f"`{facts.teacher}`"],
        ["policy", f"`{facts.policy}`"],
        ["strategies", ", ".join(f"`{s}` ({n})" for s, n in sorted(strategies.items())) or "—"],
        ["budget spent", spent],
        ["iterations", f"{len(summary.metrics.iterations) - 1} ({status})"],
    ]
    out = [
        "---",
        yaml.safe_dump(metadata(facts, len(examples), summary.name), sort_keys=False).strip(),
        "---",
        MARK,
        "",
        f"# {summary.name}",
        "",
        f"Training data for the `{facts.env}` task, written by a teacher LLM in a closed loop "
        "with [dataloop](https://pypi.org/project/dataloop/): a student model was trained and "
        "evaluated, and the teacher wrote data where the student was weak, iteration by "
        "iteration.",
        "",
        f"{len(examples)} examples: {len(examples) - len(generated)} seed examples and "
        f"{len(generated)} generated. Columns: `id`, `skill`, `question`, `answer`, and the "
        "provenance of each example (`source`, `strategy`, `parent_ids`, `teacher`, "
        "`template`, `iteration`, `relabelled`, and the LLM judge's `judge_score` and "
        "`judge_reason`, -1 and empty where it did not judge).",
        "",
        _table(["skill", "examples"], [[s, str(n)] for s, n in sorted(skills.items())]),
        "",
        "## How it was made",
        "",
        _table(["", ""], how),
        "",
        "## Filters",
        "",
        "Every candidate the teacher wrote was checked by the task's `verify`, deduplicated "
        "against the training set and its batch, and decontaminated against the task's "
        "validation and test splits (a shared word 8-gram)"
        + (
            "; also: " + "; ".join(f"{k}: {v}" for k, v in facts.filters.items())
            if facts.filters
            else ""
        )
        + ". Candidates through each stage, summed over iterations:",
        "",
        _provenance(summary),
    ]
    if facts.benchmark_sizes:
        generation = Counter[str]()
        for hits in summary.benchmark_hits.values():
            generation.update(hits)
        rows = [
            [name, str(size), str(generation.get(name, 0)), str(facts.benchmark_hits.get(name, 0))]
            for name, size in facts.benchmark_sizes.items()
        ]
        out += [
            "",
            "## Benchmark decontamination",
            "",
            "Examples that share a word n-gram with a benchmark's text (or equal a short one) "
            "were removed at generation and left out at export:",
            "",
            _table(["benchmark", "texts", "removed at generation", "left out at export"], rows),
        ]
    out += ["", "## Learning curve", "", _curve(summary)]
    licence = facts.license or "not known to dataloop (set it with `dataloop export --license`)"
    out += [
        "",
        "## Licence",
        "",
        f"The seed data's licence: {licence}. The generated examples were written by "
        f"`{facts.teacher}`; check its terms of use before you publish or train on them.",
        "",
    ]
    return "\n".join(out)


def _provenance(summary: RunSummary) -> str:
    totals = dict.fromkeys(COUNT_FIELDS, 0)
    for counts in summary.provenance.values():
        for stage in COUNT_FIELDS:
            totals[stage] += counts[stage]
    shown = [s for s in COUNT_FIELDS if s in FilterCounts.STAGES or totals[s]]
    rows = [
        [strategy, skill, *(str(counts[s]) for s in shown)]
        for (strategy, skill), counts in summary.provenance.items()
    ]
    headers = ["strategy", "skill", *(s.replace("_", "-") for s in shown)]
    return _table(headers, rows) if rows else "No data was generated."


def _curve(summary: RunSummary) -> str:
    history = summary.metrics.iterations
    headers = ["skill", *("reset" if h.iteration == 0 else f"iter {h.iteration}" for h in history)]
    rows = [
        [skill, *(f"{h.accuracy.get(skill, 0.0):.1%}" for h in history)] for skill in summary.skills
    ]
    rows.append(["mean", *(f"{h.mean_accuracy:.1%}" for h in history)])
    text = "The student's validation accuracy after training on the data so far:\n\n"
    text += _table(headers, rows)
    if summary.metrics.test is not None:
        test = summary.metrics.test
        mean = sum(test.values()) / max(1, len(test))
        text += f"\n\nFinal test accuracy: {mean:.1%} (mean over skills)."
    return text


def check_replaceable(path: Path) -> None:
    """Raise DataloopError when ``path`` is a README.md that dataloop did not write."""
    if path.exists() and MARK not in path.read_text(errors="replace"):
        raise DataloopError(
            f"{path} exists and is not a dataloop dataset card; export to another folder "
            "(the card is written beside the data as README.md)"
        )


def write_card(path: Path, text: str) -> Path:
    """Write the card, refusing to replace a README.md that dataloop did not write."""
    check_replaceable(path)
    write_text(path, text)
    return path
