"""E6's registered details that its per-run records do not hold: the levels `edge` reached per
skill and iteration, and the judge's scores and what it removed (`uniform-judge`), with every
arm's candidates by verdict (experiments/plans/E6-beyond.md, "Manipulation check" and
"Deviations").

    python benchmarks/e6_details.py --collect .cache/experiments/6e00e287ff/runs/beyond
    python benchmarks/e6_details.py             # the tables, from the committed details alone

``--collect`` reads the finished run folders under RUNS (``<arm>/seed-<n>/``: each iteration's
``observation.json``, ``generation.json`` and ``generated.jsonl``) and merges one record per run
into ``experiments/results/beyond-details.jsonl``, keeping records of runs whose folders are
gone (a checkout's run folders do not outlive it; the committed file does). The tables are
computed from that file alone, so docs/benchmarks.md's copy regenerates from committed data
(``benchmarks/docs_tables.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DETAILS = ROOT / "experiments" / "results" / "beyond-details.jsonl"
SKILLS = ("first", "last", "len", "max", "sort", "reverse")


@functools.cache
def _arithmetic() -> Any:
    from dataloop.envs.arithmetic import ArithmeticTask

    return ArithmeticTask()


def why_unverified(example: dict[str, Any]) -> str:
    """Why the task refused a candidate: ``malformed`` (its ``verify`` rejects it), ``harder``
    or ``easier`` (well formed, but at a higher or lower level than its request asked for: the
    level check of a request at a level), or ``other``. E6's gym is arithmetic."""
    from dataloop.schema import Example

    task = _arithmetic()
    candidate = Example.model_validate(example)
    verified = task.verify(candidate)
    if verified is None:
        return "malformed"
    asked, wrote = candidate.provenance.level, task.level_of(verified)
    if asked is None or wrote is None or asked == wrote:
        return "other"
    return "harder" if wrote > asked else "easier"


def iteration_details(folder: Path) -> dict[str, Any]:
    """One iteration of one run: the levels its plan asked for, the queries, every candidate's
    verdict and the judge's scores."""
    verdicts: Counter[str] = Counter()
    scores: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    not_judged = 0
    for line in (folder / "generated.jsonl").read_text().splitlines():
        row = json.loads(line)
        verdicts[row["verdict"]] += 1
        provenance = row["example"]["provenance"]
        if row["verdict"] == "unverified":
            refused[why_unverified(row["example"])] += 1
        if provenance.get("judge_score") is not None:
            scores[str(provenance["judge_score"])] += 1
            reasons[provenance.get("judge_reason") or ""] += 1
        elif row["verdict"] == "low-score":
            not_judged += 1  # the judge did not score it: budget spent, unreadable reply, error
    generation = json.loads((folder / "generation.json").read_text())
    plan = json.loads((folder / "plan.json").read_text())
    return {
        "queries": generation["queries"],
        "verdicts": dict(sorted(verdicts.items())),
        "judge_scores": dict(sorted(scores.items())),
        "judge_reasons": dict(reasons.most_common()),
        "judged_out": sum(c.get("judged_out", 0) for c in generation["counts"]),
        "not_judged": not_judged,
        "unverified": dict(sorted(refused.items())),
        # The level each request asked for (edge's plan); absent for other policies.
        "levels": {r["skill"]: r["level"] for r in plan["requests"] if r.get("level") is not None},
    }


def run_details(run: Path) -> dict[str, Any] | None:
    """A finished run's record, or None while it is unfinished."""
    state = run / "state.json"
    if not state.exists() or not json.loads(state.read_text()).get("done"):
        return None
    iterations = []
    for folder in sorted(
        (p for p in (run / "iterations").iterdir() if (p / "generated.jsonl").exists()),
        key=lambda p: int(p.name),
    ):
        details = iteration_details(folder)
        observation = json.loads((folder / "observation.json").read_text())
        details["iteration"] = int(folder.name)
        # The student's sampled answers to the accepted candidates, before it trained on them.
        details["difficulty"] = observation.get("difficulty") or {}
        iterations.append(details)
    return {
        "arm": run.parent.name,
        "seed": int(run.name.removeprefix("seed-")),
        "run": f"{run.parent.name}/{run.name}",
        "iterations": iterations,
    }


def load(path: Path = DETAILS) -> dict[str, dict[str, Any]]:
    """The committed details, by run."""
    if not path.exists():
        return {}
    return {r["run"]: r for r in (json.loads(x) for x in path.read_text().splitlines() if x)}


def collect(runs: Path, path: Path = DETAILS) -> int:
    """Merge the finished runs under ``runs`` into ``path``; return how many it now holds."""
    records = load(path)
    for run in sorted(runs.glob("*/seed-*")):
        if run.is_dir() and (record := run_details(run)) is not None:
            records[record["run"]] = record
    ordered = sorted(records.values(), key=lambda r: (r["seed"], r["arm"]))
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered))
    return len(ordered)


def edge_table(records: list[dict[str, Any]]) -> str:
    """Per skill and iteration: the runs at each level `edge` asked for, and the share of the
    student's sampled answers to the accepted candidates that were right (measured before it
    trained on them: what moves the level)."""
    runs = [r for r in records if r["arm"] == "edge"]
    depth = max((len(r["iterations"]) for r in runs), default=0)
    head = "| skill | " + " | ".join(f"iteration {i + 1}" for i in range(depth)) + " |"
    lines = [head, "|---|" + "---:|" * depth]
    for skill in SKILLS:
        cells = []
        for i in range(depth):
            levels: Counter[int] = Counter()
            solved = samples = 0
            for run in runs:
                if i >= len(run["iterations"]):
                    continue
                it = run["iterations"][i]
                if skill in it["levels"]:
                    levels[it["levels"][skill]] += 1
                measured = it["difficulty"].get(skill, {})
                solved += measured.get("solved", 0)
                samples += measured.get("samples", 0)
            spread = ", ".join(f"L{level}: {n}" for level, n in sorted(levels.items()))
            rate = f"{100 * solved / samples:.0f} % of {samples}" if samples else "none sampled"
            cells.append(f"{spread or '—'}; solved {rate}")
        lines.append(f"| {skill} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_table(records: list[dict[str, Any]]) -> str:
    """Per arm, all runs and iterations: candidates by verdict, queries, and the judge's work."""
    arms = list(dict.fromkeys(r["arm"] for r in records))
    names = ["accepted", "duplicate", "unverified", "contaminated", "surplus", "low-score"]
    head = (
        "| arm | runs | iterations | queries | " + " | ".join(names) + " | other | not judged "
        "| judged | scores |"
    )
    lines = [head, "|---|" + "---:|" * (len(names) + 6) + "---|"]
    for arm in arms:
        runs = [r for r in records if r["arm"] == arm]
        its = [it for r in runs for it in r["iterations"]]
        verdicts: Counter[str] = Counter()
        scores: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for it in its:
            verdicts.update(it["verdicts"])
            scores.update(it["judge_scores"])
            reasons.update(it.get("judge_reasons", {}))
        other = sum(n for v, n in verdicts.items() if v not in names)
        judged = sum(scores.values())
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(scores.items())) or "—"
        if reasons:
            text, n = reasons.most_common(1)[0]
            shown += f"; {100 * n / judged:.0f} % with one reason: “{text}”"
        cells = [str(verdicts.get(v, 0)) for v in names] + [str(other)]
        cells += [str(sum(it["not_judged"] for it in its)), str(judged)]
        lines.append(
            f"| {arm} | {len(runs)} | {len(its) / max(len(runs), 1):.1f} | "
            f"{sum(it['queries'] for it in its)} | " + " | ".join(cells) + f" | {shown} |"
        )
    return "\n".join(lines)


def unverified_table(records: list[dict[str, Any]]) -> str:
    """Per arm, all runs and iterations: the candidates the task refused, by why."""
    names = ["malformed", "harder", "easier", "other"]
    lines = [
        "| arm | unverified | malformed | harder than asked | easier than asked | other |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for arm in dict.fromkeys(r["arm"] for r in records):
        its = [it for r in records if r["arm"] == arm for it in r["iterations"]]
        if any("unverified" not in it for it in its):  # collected before this was counted
            continue
        why: Counter[str] = Counter()
        for it in its:
            why.update(it["unverified"])
        cells = [str(sum(why.values()))] + [str(why.get(n, 0)) for n in names]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def docs_table() -> str:
    """The tables docs/benchmarks.md shows, from the committed details alone."""
    records = sorted(load().values(), key=lambda r: (r["seed"], r["arm"]))
    seeds = sorted({r["seed"] for r in records})
    return (
        f"From {len(records)} finished runs (seeds {seeds[0]}-{seeds[-1]}), "
        "`experiments/results/beyond-details.jsonl`.\n\n"
        "`edge`: runs at each level it asked for (L0 is the seeds' level), per skill and "
        "iteration, and the share of the student's sampled answers to the accepted candidates "
        "that were right, measured before it trained on them (what moves the level).\n\n"
        f"{edge_table(records)}\n\n"
        "Every arm, all runs and iterations summed: candidates by verdict (`low-score`: the "
        "judge scored it below its threshold, 4, or did not score it; `other`: any other "
        "filter's verdict; `not judged`: low-score candidates the judge did not score, because "
        "the budget was spent, its reply could not be read or the request failed; `judged`: "
        "candidates it scored, a teacher query each (an unreadable reply costs one too); "
        "`scores`: how many got each score, and the share that gave the most repeated "
        "reason).\n\n"
        f"{verdict_table(records)}\n\n"
        "Candidates the task refused (`unverified` above), by why: `malformed`, its check "
        "rejects the question; `harder than asked` or `easier than asked`, well formed but at "
        "another difficulty level than the request asked for (only requests at a level, "
        "`edge`'s, check it); `other`, any other reason.\n\n"
        f"{unverified_table(records)}\n"
        if records
        else "No runs collected yet.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collect", type=Path, metavar="RUNS", help="merge finished runs")
    args = parser.parse_args()
    if args.collect:
        print(f"{collect(args.collect)} runs in {DETAILS.relative_to(ROOT)}")
    print(docs_table())


if __name__ == "__main__":
    main()
