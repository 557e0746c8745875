"""The GPU experiments' pretraining (benchmarks/gpu_experiments.py) at toy size on the CPU: the
full-size experiments pretrain a fixed number of steps, so that every call of one experiment
pretrains the same student (by time, a call's base depended on the machine's speed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import gpu_experiments as gx


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_pretraining_by_steps_makes_the_same_base_each_time(tmp_path):
    runs = [
        gx.pretrain(gx.llm2llm_corpus, tmp_path / name, **gx.TOY, steps=4, max_length=32)
        for name in ("one", "two")
    ]
    assert [r["steps"] for r in runs] == [4, 4]
    assert json.loads((tmp_path / "one" / "pretraining.json").read_text())["steps"] == 4
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert one.keys() == two.keys()
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_pretraining_takes_steps_or_seconds_not_both(tmp_path):
    with pytest.raises(ValueError, match="steps or seconds"):
        gx.pretrain(gx.llm2llm_corpus, tmp_path, **gx.TOY, steps=1, seconds=1.0, max_length=32)
    with pytest.raises(ValueError, match="steps or seconds"):
        gx.pretrain(gx.llm2llm_corpus, tmp_path, **gx.TOY, max_length=32)


def test_a_call_brings_back_only_what_fits_the_device_tool(tmp_path):
    """The device tool returns at most 8 files from $OUT (E3's first full call wrote 10 and lost
    BR 64's records): collect copies the per-run records alone, whatever bench left beside."""
    out = tmp_path / "OUT" / "e3"
    for ratio, experiment in gx.E3_FILES.items():
        runs = tmp_path / "runs" / f"br{ratio}"
        runs.mkdir(parents=True)
        for name in ("results.md", "curves.png"):
            (runs / name).write_text("x")
        (runs / "results.json").write_text(json.dumps({"name": experiment.stem}))
        assert gx.collect(experiment, runs, out) == {"name": experiment.stem}
    for name in ("table.md", "bench.log", "pretraining.json"):
        (out / name).write_text("x")
    back = gx.returned(tmp_path / "OUT")
    assert len(back) <= gx.RETURNED_FILES
    assert not [p for p in back if p.name in ("results.md", "results.json", "curves.png")]
    # BR 1's records are committed, so they travel back with the call's others.
    assert out / "e3-balancing-br1" / "e3-balancing-br1.jsonl" in back
