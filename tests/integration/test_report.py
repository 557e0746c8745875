"""Report and export of a real finished run: PNG, an HTML page Chromium renders, datasets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI
from test_resume import _cli, _options, _reply

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    with FakeOpenAI(reply=_reply) as server:
        out = subprocess.run(
            _cli("run", *_options(server.base_url, runs, "done")),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return runs / "done"


def test_report_writes_png_and_html_that_a_browser_renders(finished_run: Path, tmp_path) -> None:
    out = subprocess.run(_cli("report", str(finished_run)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "validation accuracy" in out.stdout and "provenance" in out.stdout
    png = finished_run / "report" / "curves.png"
    page = finished_run / "report" / "index.html"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    html = page.read_text()
    assert "data:image/png;base64," in html and "new-question" in html
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    # Chromium's DOM dump shows what it parsed; the screenshot shows the curve was drawn.
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert 'id="curves"' in dom.stdout and "Provenance" in dom.stdout
    shot = tmp_path / "page.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1000,900", page.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.stat().st_size > png.stat().st_size // 2


@pytest.mark.parametrize("fmt", ["hf", "jsonl", "parquet"])
def test_export_has_seed_and_generated_rows_with_provenance(finished_run, tmp_path, fmt) -> None:
    from datasets import Dataset, load_from_disk

    target = tmp_path / f"train.{fmt}"
    out = subprocess.run(
        _cli("export", str(finished_run), "--format", fmt, "--out", str(target)),
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    if fmt == "hf":
        data = load_from_disk(str(target))
    elif fmt == "jsonl":
        data = Dataset.from_json(str(target))
    else:
        data = Dataset.from_parquet(str(target))
    accepted = sum(
        len((finished_run / f"iterations/{k}/accepted.jsonl").read_text().splitlines())
        for k in (1, 2)
    )
    sources = list(data["source"])
    assert sources.count("generated") == accepted > 0
    assert sources.count("seed") == 24 * 6
    assert {"strategy", "parent_ids", "teacher", "iteration"} <= set(data.column_names)


def test_damaged_run_files_are_named_not_tracebacks(finished_run: Path, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(finished_run, broken, ignore=shutil.ignore_patterns("checkpoints", "cache"))
    (broken / "metrics.json").write_text("{not json")
    out = subprocess.run(_cli("report", str(broken)), capture_output=True, text=True)
    assert out.returncode == 2 and "metrics.json is damaged" in out.stderr
    assert "Traceback" not in out.stderr
    (broken / "metrics.json").unlink()
    out = subprocess.run(_cli("report", str(broken)), capture_output=True, text=True)
    assert "metrics.json is missing" in out.stderr
    (broken / "iterations/1/accepted.jsonl").write_text('{"id": 1}\n')
    out = subprocess.run(
        _cli("export", str(broken), "--out", str(tmp_path / "x.jsonl"), "--format", "jsonl"),
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "accepted.jsonl line 1 is damaged" in out.stderr
    state = json.loads((broken / "state.json").read_text())
    assert state["done"]
