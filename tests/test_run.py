"""``dataloop.run(config)``: the whole loop in one call, from a dict, a LoopConfig or a YAML
path, against a scripted OpenAI-compatible teacher on 127.0.0.1 and the tiny student."""

from __future__ import annotations

import json

import pytest
from fakeserver import FakeOpenAI, few_shot_variations

import dataloop

SMALL = {
    "iterations": 1,
    "env": {"options": {"train_per_skill": 4, "validation_per_skill": 4, "test_per_skill": 4}},
    "student": {"steps_per_iteration": 1},
    "policy": {"examples_per_iteration": 12},
}


def test_run_from_a_dict_returns_the_history_it_writes(tmp_path) -> None:
    with FakeOpenAI(reply=few_shot_variations) as server:
        teacher = {"backend": "openai", "model": "fake", "base_urls": [server.base_url]}
        history = dataloop.run(
            {**SMALL, "name": "r", "runs_dir": str(tmp_path), "teacher": teacher}
        )
    assert server.requests > 0  # the teacher was asked
    assert [h.iteration for h in history] == [0, 1]
    assert sum(history[1].accepted.values()) > 0  # its examples were trained on
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert [h["mean_accuracy"] for h in metrics["iterations"]] == [h.mean_accuracy for h in history]
    with pytest.raises(dataloop.DataloopError, match="already"):  # as `dataloop run` refuses
        dataloop.run({**SMALL, "name": "r", "runs_dir": str(tmp_path), "teacher": teacher})


def test_run_takes_a_loop_config_or_a_yaml_path(tmp_path) -> None:
    # No teacher, no training: the seed-only floor, evaluated once.
    quick = {"iterations": 0, "engine": {"source": "none"}, "student": {"train_on_seed": False}}
    config = dataloop.LoopConfig.model_validate({**quick, "name": "a", "runs_dir": str(tmp_path)})
    assert [h.iteration for h in dataloop.run(config)] == [0]
    path = tmp_path / "run.yaml"
    path.write_text(
        f"name: b\nruns_dir: {tmp_path}\niterations: 0\n"
        "engine: {source: none}\nstudent: {train_on_seed: false}\n"
    )
    assert [h.iteration for h in dataloop.run(str(path))] == [0]
    assert (tmp_path / "b" / "config.yaml").exists()
    with pytest.raises(dataloop.DataloopError, match=r"config field 'policy\.name': unknown"):
        dataloop.run({**quick, "runs_dir": str(tmp_path), "policy": {"name": "nosuch"}})
