"""Per arm of a finished `dataloop bench` experiment: examples per skill and final accuracy.

    python benchmarks/allocation_table.py runs/policies

Prints, as a markdown table, the accepted examples each arm put into each skill (summed over
iterations, mean over finished seeds), its teacher queries, and the final validation accuracy
per skill (mean over seeds): the tables behind docs/benchmarks.md's reading of E1 and E1b.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def finished_runs(arm: Path) -> list[dict]:
    """metrics.json of every finished run of one arm."""
    runs = []
    for run in sorted(arm.glob("seed-*")):
        state = run / "state.json"
        if state.exists() and json.loads(state.read_text()).get("done"):
            runs.append(json.loads((run / "metrics.json").read_text()))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="the experiment's output folder")
    args = parser.parse_args()
    rows = []
    skills: list[str] = []
    for arm in sorted(p for p in args.experiment.iterdir() if p.is_dir()):
        runs = finished_runs(arm)
        if not runs:
            continue
        skills = list(runs[0]["iterations"][-1]["accuracy"])
        examples = {
            s: statistics.mean(
                sum(it["accepted"].get(s, 0) for it in m["iterations"]) for m in runs
            )
            for s in skills
        }
        queries = statistics.mean(sum(it["queries"] for it in m["iterations"]) for m in runs)
        final = {
            s: statistics.mean(m["iterations"][-1]["accuracy"][s] for m in runs) for s in skills
        }
        rows.append((arm.name, len(runs), examples, queries, final))
    print(
        "| arm | seeds | "
        + " | ".join(f"{s} examples" for s in skills)
        + " | total | queries | "
        + " | ".join(f"{s} final" for s in skills)
        + " |"
    )
    print("|---|---:|" + "---:|" * (2 * len(skills) + 2))
    for name, n, examples, queries, final in rows:
        print(
            f"| {name} | {n} | "
            + " | ".join(f"{examples[s]:.0f}" for s in skills)
            + f" | {sum(examples.values()):.0f} | {queries:.0f} | "
            + " | ".join(f"{final[s]:.0%}" for s in skills)
            + " |"
        )


if __name__ == "__main__":
    main()
