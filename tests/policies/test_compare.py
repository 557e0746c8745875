"""The comparison's bookkeeping: curves, queries to target, the table and the PNG."""

from __future__ import annotations

from dataloop.compare import (
    Comparison,
    CurvePoint,
    PolicyResult,
    curve,
    plot,
    queries_to_reach,
    table,
)
from dataloop.schema import HistoryEntry


def _history(*points: tuple[int, float]) -> list[HistoryEntry]:
    return [
        HistoryEntry(iteration=i, accuracy={"a": acc}, mean_accuracy=acc, queries=q)
        for i, (q, acc) in enumerate(points)
    ]


def test_curve_accumulates_queries_and_finds_the_target() -> None:
    points = curve(_history((0, 0.1), (20, 0.5), (15, 0.92), (30, 0.95)))
    assert [p.queries for p in points] == [0, 20, 35, 65]
    assert queries_to_reach(points, 0.9) == 35
    assert queries_to_reach(points, 0.5) == 20
    assert queries_to_reach(points, 0.99) is None


def _comparison() -> Comparison:
    def result(name: str, accs: list[float], to_target: int | None) -> PolicyResult:
        points = [
            CurvePoint(iteration=i, queries=10 * i, mean_accuracy=a) for i, a in enumerate(accs)
        ]
        return PolicyResult(
            policy=name, points=points, queries_to_target=to_target, seconds=1.0, run="r"
        )

    return Comparison(
        env="arithmetic",
        seed=0,
        target_accuracy=0.9,
        max_queries=40,
        iterations=3,
        examples_per_iteration=60,
        policies=[
            result("uniform", [0.1, 0.3, 0.5], None),
            result("weakest-skills", [0.1, 0.6, 0.9], 20),
        ],
    )


def test_table_and_plot(tmp_path) -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table(_comparison()))
    text = console.export_text()
    assert "not reached" in text and "weakest-skills" in text and "90.0%" in text
    png = tmp_path / "c.png"
    plot(_comparison(), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    roundtrip = Comparison.model_validate_json(_comparison().model_dump_json())
    assert roundtrip.policies[1].final.mean_accuracy == 0.9
