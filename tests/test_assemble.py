"""Checks before a run starts; a start that fails removes the run folder it made, but not what
is worth keeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataloop.assemble import check_run
from dataloop.config import validate_config
from dataloop.errors import DataloopError
from dataloop.runs import RunDir


def test_a_folder_with_only_what_the_start_wrote_is_removed(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    (run.cache).mkdir(parents=True)  # an empty cache folder is nothing to keep
    run.write_config("iterations: 1\n")
    run.log_file.write_text("{}\n")
    run.discard_failed_start()
    assert not run.path.exists()


def test_a_server_log_or_cached_answers_keep_the_folder(tmp_path) -> None:
    for keep in ("teacher.log", "cache/ab/cd.json"):
        run = RunDir(tmp_path / keep.replace("/", "-"))
        run.write_config("iterations: 1\n")
        (run.path / keep).parent.mkdir(parents=True, exist_ok=True)
        (run.path / keep).write_text("x")
        run.discard_failed_start()
        assert (run.path / keep).is_file()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"env": {"structure": "open-ended"}, "policy": {"name": "weakest-skills"}},
            "config field 'env.structure'",
        ),
        ({"policy": {"name": "weakest"}}, "config field 'policy.name'"),
        ({"policy": {"options": {"flor": 0.1}}}, "policy 'weakest-skills': bad option"),
        ({"policy": {"options": {"strategy": "nosuch"}}}, "'policy.options.strategy'"),
        ({"engine": {"strategy": "nosuch"}}, "config field 'engine.strategy'"),
        ({"env": {"options": {"validation_per_skill": 0}}}, "split('validation') is empty"),
    ],
)
def test_check_run_finds_what_would_fail_a_run_before_anything_is_made(
    tmp_path, overrides, field
) -> None:
    """What ``dataloop bench`` asks of every arm before its first run."""
    config = validate_config({"runs_dir": str(tmp_path), "engine": {"source": "none"}, **overrides})
    with pytest.raises(DataloopError) as caught:
        check_run(config)
    assert field in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    check_run(validate_config({"runs_dir": str(tmp_path), "engine": {"source": "none"}}))


def test_check_run_refuses_a_verify_that_raises_not_one_that_rejects_seeds(tmp_path) -> None:
    envs = Path(__file__).resolve().parent / "fixtures" / "plugins" / "bad_envs.py"
    base = {"runs_dir": str(tmp_path), "engine": {"source": "none"}}
    check_run(validate_config({**base, "env": {"name": f"{envs}:RejectsEverything"}}))
    with pytest.raises(DataloopError, match=r"AlwaysRaises.*RuntimeError: my verify is broken"):
        check_run(validate_config({**base, "env": {"name": f"{envs}:AlwaysRaises"}}))
