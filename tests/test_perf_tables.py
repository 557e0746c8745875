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


def test_llama_settings_tabulates_each_variant_against_the_first(tmp_path) -> None:
    settings = _module("llama_settings")
    seconds = {"poll0": [50.0, 40.0, 44.0], "poll50": [30.0, 22.0, 20.0]}
    passes = [
        settings.Pass(
            session="2026-12-04T05:00:00+00:00", commit="abcdef0123", machine="x86_64, 2 CPUs",
            variant=name, slots=8, extra_args=["--poll", name[4:]], repeat=i + 1,
            seconds=own[i], tokens_per_s=1000 / own[i], queries=22, accepted=90, examples=100,
        )
        for i in range(3)
        for name, own in seconds.items()
    ]  # fmt: skip
    path = tmp_path / "settings.jsonl"
    path.write_text("".join(p.model_dump_json() + "\n" for p in passes))
    text = settings.table(settings.read_passes(path))
    assert "| poll0 | 8 | `--poll 0` | 44.0 | 40.0 | 50.0 | 22.7 | 1.00 |" in text
    assert "| poll50 | 8 | `--poll 50` | 22.0 | 20.0 | 30.0 | 45.5 | 0.50 |" in text
    assert "commit `abcdef0`" in text and "3 repeats" in text and "100 examples" in text
    assert settings.parse_variant("np16:16:--poll 0 -b 512") == (
        "np16",
        16,
        ["--poll", "0", "-b", "512"],
    )
    plan = settings.iteration_plan(100)
    assert sum(r.count for r in plan.requests) == 100 and len(plan.requests) == 6
    assert settings.table([]) == "No measurement recorded yet.\n"
