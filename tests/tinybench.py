"""A tiny bench experiment against a fake teacher: the unit tests of ``dataloop bench`` and
benchmarks/bench_parallel.py run it (two skills, a tiny student, a few queries)."""

from __future__ import annotations

from collections.abc import Sequence


def tiny_experiment(
    url: str,
    *,
    iterations: int = 2,
    steps: int = 8,
    seeds: Sequence[int] = (0, 1),
    arms: Sequence[str] = ("seed-only", "uniform"),
    baseline: str | None = "seed-only",
) -> str:
    """The experiment file's text: each arm is a built-in arm name (``seed-only``, ``oracle``,
    ``uniform``, ...), the teacher is the OpenAI-compatible server at ``url``."""
    lines = [
        "base:",
        f"  iterations: {iterations}",
        f"  teacher: {{backend: openai, model: fake, base_urls: [{url}]}}",
        "  env: {options: {skills: [max, sort], validation_per_skill: 10, test_per_skill: 10}}",
        "  policy: {examples_per_iteration: 12}",
        f"  student: {{steps_per_iteration: {steps}, batch_size: 16}}",
        "  engine: {per_query: 4}",
        f"seeds: [{', '.join(str(s) for s in seeds)}]",
        "budget: {queries: 6}",
    ]
    if baseline:
        lines.append(f"baselines: [{baseline}]")
    lines += ["arms:", *(f"  - name: {arm}" for arm in arms)]
    return "\n".join(lines) + "\n"
