"""Performance benchmarks publish tables computed from the data they recorded (committed)."""

from __future__ import annotations

from pathlib import Path

from benchscripts import load as _module

ROOT = Path(__file__).resolve().parent.parent


def test_teacher_speed_tabulates_each_measurement_with_its_ratio_of_medians(tmp_path) -> None:
    speed = _module("teacher_speed")
    rows = {"llama-server": [10.0, 12.0, 30.0], "vllm": [20.0, 36.0, 24.0]}
    passes = [
        speed.Pass(
            session="2026-12-03T17:00:00+00:00", commit="abcdef0123", machine="x86_64, 2 CPUs",
            teacher=teacher, repeat=i + 1, tokens_per_s=rate, startup_s=5.0 if teacher
            == "llama-server" else 240.0, requests=6, per_skill=8, concurrency=8,
        )
        for i in range(3)
        for teacher, rates in rows.items()
        for rate in [rates[i]]
    ]  # fmt: skip
    path = tmp_path / "speed.jsonl"
    path.write_text("".join(p.model_dump_json() + "\n" for p in passes))
    text = speed.table(speed.read_passes(path))
    assert "| llama-server | 5 | 12.0 | 10.0 | 30.0 |" in text
    assert "| vllm | 240 | 24.0 | 20.0 | 36.0 |" in text
    assert "**2.00x**" in text  # 24 / 12: medians, not means
    assert "commit `abcdef0`" in text and "3 repeats" in text
    # A measurement of one teacher only (interrupted) shows no ratio.
    assert "x**" not in speed.table([p for p in passes if p.teacher == "vllm"])
    assert speed.table([]) == "No measurement recorded yet.\n"


def test_published_perf_tables_regenerate_from_the_committed_data() -> None:
    tables = _module("docs_tables")
    docs = (ROOT / "docs/benchmarks.md").read_text()
    names = [m[2] for m in tables.PERF.finditer(docs)]
    assert "teacher_speed" in names
    for name in names:
        assert (ROOT / "benchmarks" / f"{name}.py").is_file(), name
        assert tables.perf_table(name) in docs, f"run: python benchmarks/docs_tables.py ({name})"
