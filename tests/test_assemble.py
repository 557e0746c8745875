"""A start that fails removes the run folder it made, but not what is worth keeping."""

from __future__ import annotations

from dataloop.assemble import _remove_failed_start
from dataloop.runs import RunDir


def test_a_folder_with_only_what_the_start_wrote_is_removed(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    (run.cache).mkdir(parents=True)  # an empty cache folder is nothing to keep
    run.write_config("iterations: 1\n")
    run.log_file.write_text("{}\n")
    _remove_failed_start(run)
    assert not run.path.exists()


def test_a_server_log_or_cached_answers_keep_the_folder(tmp_path) -> None:
    for keep in ("teacher.log", "cache/ab/cd.json"):
        run = RunDir(tmp_path / keep.replace("/", "-"))
        run.write_config("iterations: 1\n")
        (run.path / keep).parent.mkdir(parents=True, exist_ok=True)
        (run.path / keep).write_text("x")
        _remove_failed_start(run)
        assert (run.path / keep).is_file()
