"""For a finished `dataloop bench` experiment with a skill-tree arm: how the tree grew, and how
much of the data asked for a subskill is in it, against an arm that asked for none.

    python benchmarks/subskill_table.py runs/policies            # arms skill-tree and uniform
    python benchmarks/subskill_table.py runs/policies --tree skill-tree --against uniform

Prints two markdown tables: per seed, the subskills in the final tree (name and the iteration
that added it); and per (skill, subskill) the examples the tree arm made for it, the share of
them the arithmetic task's rule places in the subskill, and the same share among the other
arm's examples of that skill. The tables behind docs/benchmarks.md's reading of E1c.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.schema import Example, SkillTree


def accepted(run: Path) -> list[Example]:
    """Every example a run accepted, all iterations."""
    return [
        Example.model_validate_json(line)
        for path in sorted(run.glob("iterations/*/accepted.jsonl"))
        for line in path.read_text().splitlines()
    ]


def final_tree(run: Path) -> SkillTree:
    """The tree after the run's last completed iteration."""
    last = max(h["iteration"] for h in json.loads((run / "metrics.json").read_text())["iterations"])
    return SkillTree.model_validate_json((run / f"iterations/{last}/tree.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="the experiment's output folder")
    parser.add_argument("--tree", default="skill-tree", help="the skill-tree arm")
    parser.add_argument("--against", default="uniform", help="an arm without subskills")
    args = parser.parse_args()
    task = ArithmeticTask()
    tree_runs = sorted((args.experiment / args.tree).glob("seed-*"))
    print("| seed | subskills in the final tree (added in iteration) |\n|---|---|")
    for run in tree_runs:
        tree = final_tree(run)
        grown = [f"{n.name}/{s.name} ({s.iteration})" for n in tree.skills for s in n.subskills]
        print(f"| {run.name} | {', '.join(grown) or 'none'} |")
    made: Counter[tuple[str, str]] = Counter()
    inside: Counter[tuple[str, str]] = Counter()
    for run in tree_runs:
        for e in accepted(run):
            if e.provenance.subskill:
                key = (e.skill, e.provenance.subskill)
                made[key] += 1
                inside[key] += bool(task.in_subskill(e, key[1]))
    other: Counter[tuple[str, str]] = Counter()
    other_inside: Counter[tuple[str, str]] = Counter()
    for run in sorted((args.experiment / args.against).glob("seed-*")):
        for e in accepted(run):
            for skill, sub in made:
                if e.skill == skill:
                    other[skill, sub] += 1
                    other_inside[skill, sub] += bool(task.in_subskill(e, sub))
    print(
        f"\n| skill | subskill | examples made for it | in it | in it, {args.against} |\n"
        "|---|---|---:|---:|---:|"
    )
    for key in sorted(made):
        theirs = f"{other_inside[key] / other[key]:.0%}" if other[key] else "—"
        print(f"| {key[0]} | {key[1]} | {made[key]} | {inside[key] / made[key]:.0%} | {theirs} |")


if __name__ == "__main__":
    main()
