"""Policy comparison on the arithmetic gym: accuracy against teacher queries, per policy.

    python benchmarks/policies.py --size small   # what docs/benchmarks.md reports (2-core CPU)
    python benchmarks/policies.py --size full    # all six skills, default student: the real test

Both run ``dataloop compare`` (``dataloop.compare.run_comparison``) with the same seed and the
same teacher query budget for every policy and write ``comparison.json`` / ``comparison.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dataloop.compare import run_comparison, table
from rich.console import Console

from dataloop.config import validate_config
from dataloop.display import Display

SIZES: dict[str, dict[str, Any]] = {
    # Sized for 2 CPU cores shared with other jobs: a smoke test of the comparison, no more.
    "small": {
        "iterations": 2,
        "env": {
            "options": {"skills": ["max", "sort"], "validation_per_skill": 30,
                        "test_per_skill": 10},
        },
        "policy": {"examples_per_iteration": 24},
        "student": {"steps_per_iteration": 40, "batch_size": 32},
        "teacher": {"max_queries": 16, "parallel": 4},
    },
    # Two skills the tiny student can learn to 90% on a CPU (max and sort reach 90-92% when
    # trained on 300 true examples each for 1500 steps); about 20 minutes a policy on 2 cores.
    "medium": {
        "iterations": 8,
        "env": {
            "options": {"skills": ["max", "sort"], "validation_per_skill": 50,
                        "test_per_skill": 20},
        },
        "policy": {"examples_per_iteration": 160},
        "student": {"steps_per_iteration": 600},
        "teacher": {"max_queries": 300, "parallel": 4},
    },
    # The defaults of `dataloop run` (six skills, 400 steps, 240 examples an iteration).
    "full": {"iterations": 8, "teacher": {"max_queries": 400}},
}  # fmt: skip


def main() -> None:
    """Parse the size and policies, run the comparison, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--policies", default="uniform,weakest-skills")
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="run seed (data, teacher, student)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config = validate_config(
        {**SIZES[args.size], "seed": args.seed},
        origin=f"benchmarks/policies.py --size {args.size}",
    )
    out = args.out or Path(f"runs/benchmark-policies-{args.size}-seed{args.seed}")
    comparison = run_comparison(
        config, args.policies.split(","), args.target, out, Display(quiet=False)
    )
    Console(width=120).print(table(comparison))
    print(f"results: {out / 'comparison.json'}, plot: {out / 'comparison.png'}")


if __name__ == "__main__":
    main()
