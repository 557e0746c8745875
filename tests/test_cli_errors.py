"""The real CLI in a subprocess: every mistake is one line on stderr, exit 2, no traceback, no
secret echoed, and nothing started or left behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dataloop.assemble import resume_config
from dataloop.config import dump_config, validate_config
from dataloop.llm.backends import check_teacher
from dataloop.runs import Metrics, RunDir, RunState
from dataloop.schema import Example, GenerationReport, HistoryEntry

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-proj-9Zx7TopSecretKey1234567890"


def dataloop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # This checkout first, then whatever the caller had on the path.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run(
        [sys.executable, "-m", "dataloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single error line, after checking exit code 2, no traceback and each needle."""
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def read_only_dir(tmp_path: Path) -> Path:
    """A folder nobody may write to (root ignores permissions, so it gets /sys)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_a_duplicate_key_names_the_key_the_file_and_the_line(tmp_path) -> None:
    config = tmp_path / "dup.yaml"
    config.write_text("student:\n  batch_size: 8\niterations: 1\nstudent:\n  max_length: 32\n")
    out = dataloop("run", str(config), "--runs-dir", str(tmp_path / "runs"))
    one_line_error(out, "key 'student' appears twice", str(config), "line 4")
    assert not (tmp_path / "runs").exists()


def test_a_yaml_error_gives_the_position_not_the_text(tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"teacher:\n  backend: openai\n  api_key: {SECRET}: oops\n")
    out = dataloop("run", str(config))
    line = one_line_error(out, str(config), "not valid YAML", "line 3, column")
    assert "9Zx7" not in line


@pytest.mark.parametrize("value", [SECRET, "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345", "X" * 80])
def test_a_key_given_as_api_key_env_is_refused_unechoed_and_unsaved(tmp_path, value) -> None:
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--name", "r",
        "--set", "teacher.backend=openai", "--set", "teacher.model=m",
        "--set", "teacher.base_urls=[http://127.0.0.1:1/v1]",
        "--set", f"teacher.api_key_env={value}",
    )  # fmt: skip
    line = one_line_error(out, "teacher.api_key_env", "looks like a key")
    assert value not in line and value[:12] not in line
    assert not (tmp_path / "runs").exists()


def test_bad_yaml_in_a_set_override_is_one_line() -> None:
    one_line_error(dataloop("run", "--set", "iterations=[1"), "--set iterations", "not valid YAML")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("htp:/127.0.0.1:8000/v1", "htp:/127.0.0.1:8000/v1"),
        ("http://127.0.0.1:80x0/v1", "http://127.0.0.1:80x0/v1"),
        ("http:///v1", "http:///v1"),
        ("http://admin:hunter2@:8000/v1", "http://***@:8000/v1"),
    ],
)
def test_a_malformed_teacher_url_fails_before_anything_starts(tmp_path, url, shown) -> None:
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"),
        "--set", "teacher.backend=openai", "--set", "teacher.model=m",
        "--set", f"teacher.base_urls=[{url}]",
    )  # fmt: skip
    line = one_line_error(out, "teacher.base_urls", shown)
    assert "hunter2" not in line
    assert not (tmp_path / "runs").exists()


def test_url_credentials_are_redacted_in_the_saved_config() -> None:
    config = validate_config(
        {"teacher": {"backend": "openai", "model": "m", "base_urls": ["https://u:pw@h.io/v1"]}}
    )
    saved = dump_config(config)
    assert "https://***@h.io/v1" in saved and "pw" not in saved
    assert config.teacher.base_urls == ["https://u:pw@h.io/v1"]  # the run itself still has them


def test_a_teacher_misconfiguration_leaves_no_run_folder(tmp_path) -> None:
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--name", "r",
        "--set", "teacher.backend=openai", "--set", "teacher.model=m",
        "--set", "teacher.base_urls=[http://127.0.0.1:1/v1]",
        "--set", "teacher.api_key_env=DATALOOP_TEST_UNSET_VARIABLE",
    )  # fmt: skip
    one_line_error(out, "DATALOOP_TEST_UNSET_VARIABLE is not set")
    assert not (tmp_path / "runs").exists()


def test_a_vllm_python_that_does_not_exist_fails_before_anything_starts(tmp_path) -> None:
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--set", "teacher.backend=vllm",
        "--set", "teacher.model=/models/m", "--set", f"teacher.vllm_python={tmp_path}/nope",
    )  # fmt: skip
    one_line_error(out, "config field 'teacher.vllm_python': vLLM python", "make vllm-venv")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("policy.options={flor: 0.1}", "policy 'weakest-skills': bad option"),
        ("policy.options={strategy: nosuch}", "'policy.options.strategy': unknown strategy"),
        ("engine.strategy=nosuch", "'engine.strategy': unknown strategy 'nosuch'"),
    ],
)
def test_a_policy_or_strategy_typo_fails_before_anything_starts(tmp_path, setting, message):
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--set", "engine.source=none",
        "--set", setting,
    )  # fmt: skip
    one_line_error(out, message)
    assert not (tmp_path / "runs").exists()


def test_a_missing_student_folder_fails_before_anything_starts(tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--set", "engine.source=none",
        "--set", f"student.model={missing}",
    )  # fmt: skip
    one_line_error(out, "student.model", str(missing))
    assert not (tmp_path / "runs").exists()


@pytest.mark.integration  # loads the student's libraries in a fresh process: ~20 s
def test_a_start_that_fails_after_the_folder_is_made_removes_it(tmp_path) -> None:
    empty = tmp_path / "empty-model"  # a folder, so only loading it can tell
    empty.mkdir()
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--name", "r", "--quiet",
        "--set", "engine.source=none", "--set", f"student.model={empty}",
    )  # fmt: skip
    one_line_error(out, "config field 'student.model': cannot load", str(empty))
    assert not (tmp_path / "runs" / "r").exists()


@pytest.mark.parametrize("where", ["read-only", "under-a-file"])
def test_runs_dir_that_cannot_be_written_is_one_line(tmp_path, where) -> None:
    if where == "read-only":
        runs = read_only_dir(tmp_path) / "runs"
    else:
        (tmp_path / "file").write_text("")
        runs = tmp_path / "file" / "runs"
    out = dataloop(
        "run", "--runs-dir", str(runs), "--name", "r", "--set", "engine.source=none"
    )  # fmt: skip
    one_line_error(out, "runs_dir", str(runs / "r"))


def _finished_run(tmp_path: Path, accepted_lines: list[str] | None = None) -> RunDir:
    """A run folder as ``dataloop run`` leaves it after reset and one iteration."""
    run = RunDir(tmp_path / "run")
    config = validate_config({"engine": {"source": "none"}, "iterations": 1})
    run.path.mkdir()
    run.write_config(dump_config(config))
    run.write_state(RunState(iteration=1, phase="trained", done=True))
    history = [HistoryEntry(iteration=k, accuracy={"add": 0.5}, mean_accuracy=0.5) for k in (0, 1)]
    run.write_metrics(Metrics(iterations=history))
    run.write_model("iterations/1/generation.json", GenerationReport())
    example = Example.make("1+1", "2", "add")
    lines = accepted_lines or [example.model_dump_json()]
    (run.iteration(1) / "accepted.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_resume_reports_a_damaged_state_file_with_its_position(tmp_path) -> None:
    run = _finished_run(tmp_path)
    state = (run.path / "state.json").read_text()
    (run.path / "state.json").write_text(state[:57])
    out = dataloop("resume", str(run.path))
    one_line_error(out, "state.json is damaged: not valid JSON", "(line ", "column ")
    (run.path / "state.json").write_text(json.dumps({"iteration": "two"}))
    out = dataloop("resume", str(run.path))
    one_line_error(out, "state.json is damaged: field 'iteration'")


def test_report_refuses_a_damaged_accepted_file_naming_the_line(tmp_path) -> None:
    good = Example.make("1+1", "2", "add").model_dump_json()
    run = _finished_run(tmp_path, [good, good[:40]])
    out = dataloop("report", str(run.path))
    one_line_error(out, "iterations/1/accepted.jsonl line 2 is damaged", "not valid JSON")
    assert not (run.path / "report").exists()


@pytest.mark.parametrize("where", ["existing-folder", "read-only"])
def test_export_out_that_cannot_be_written_is_one_line(tmp_path, where) -> None:
    run = _finished_run(tmp_path)
    if where == "existing-folder":
        out_path = tmp_path / "exists"
        out_path.mkdir()
        needle = "is an existing folder"
    else:
        out_path = read_only_dir(tmp_path) / "train.jsonl"
        needle = "cannot write there"
    out = dataloop("export", str(run.path), "--format", "jsonl", "--out", str(out_path))
    one_line_error(out, f"--out {out_path}", needle)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "0,x"], "--devices '0,x': expected GPU numbers"),
        (["--replicas", "2", "--devices", "0,1,2"], "do not split evenly over 2 replicas"),
        (
            ["--backend", "vllm", "--model", "m", "--replicas", "2", "--devices", "0,1,2,3"],
            "tensor_parallel_size is 1: make them agree",
        ),
    ],
)
def test_serve_replicas_that_do_not_fit_the_devices_start_nothing(args, message) -> None:
    one_line_error(dataloop("serve", *args), message)


PLUGINS = REPO / "tests" / "fixtures" / "plugins"


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ("weakest", "unknown policy 'weakest'"),
        ("no/such/file.py:P", "no such file"),
        ("SYNTAX", "importing"),
        (f"{PLUGINS / 'bad_policies.py'}:Nope", "has no attribute 'Nope'"),
    ],
)
def test_a_bad_policy_names_the_policy_field(tmp_path, policy, needle) -> None:
    """At 4df1ece these were reported as ``config field 'env.structure'``."""
    if policy == "SYNTAX":
        (tmp_path / "broken.py").write_text("class P(:\n")
        policy = f"{tmp_path / 'broken.py'}:P"
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--set", "engine.source=none",
        "--policy", policy,
    )  # fmt: skip
    one_line_error(out, "config field 'policy.name'", needle)
    assert not (tmp_path / "runs").exists()


def test_an_environment_that_fails_its_checks_is_refused_before_anything(tmp_path) -> None:
    """An empty validation split was an IndexError in the tokenizer, after the reset trained;
    ``run`` now makes the checks of ``envs --check`` first."""
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--set", "engine.source=none",
        "--env", f"{PLUGINS / 'bad_envs.py'}:NoValidation",
    )  # fmt: skip
    one_line_error(out, "bad_envs.py:NoValidation", "split('validation') is empty", "envs --check")
    assert not (tmp_path / "runs").exists()


def test_serve_checks_its_port_and_model_first(tmp_path) -> None:
    """At 4df1ece ``--port 99999`` hung silently and a missing GGUF printed 16 lines of log."""
    one_line_error(dataloop("serve", "--port", "99999"), "--port 99999", "from 1 to 65535")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        one_line_error(dataloop("serve", "--port", port), f"--port {port}", "choose another")
    missing = tmp_path / "missing.gguf"
    one_line_error(dataloop("serve", "--model", str(missing)), "--model", str(missing))
    out = dataloop("serve", "--backend", "vllm", "--model", "m")
    if shutil.which("vllm") is None:  # the message's own brackets are kept: 'dataloop[vllm]'
        one_line_error(out, "--backend", "pip install 'dataloop[vllm]'")


@pytest.mark.integration
def test_a_server_that_fails_to_start_is_one_line_with_its_log(tmp_path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_text("not a model\n")
    log = tmp_path / "serve.log"
    out = dataloop("serve", "--model", str(bad), "--log", str(log))
    one_line_error(out, "server exited with code", f"the whole log: {log}")
    assert log.is_file()


def _run_with_credentials(tmp_path: Path) -> RunDir:
    """A finished run whose teacher URL had credentials: saved redacted, as run saves it."""
    run = _finished_run(tmp_path)
    config = validate_config(
        {
            "iterations": 1,
            "teacher": {"backend": "openai", "model": "m", "base_urls": [URL_WITH_PASSWORD]},
        }
    )
    run.write_config(dump_config(config))
    assert "hunter2" not in (run.path / "config.yaml").read_text()
    return run


URL_WITH_PASSWORD = "http://admin:hunter2@127.0.0.1:1/v1"


def test_export_reads_a_run_whose_teacher_url_was_redacted(tmp_path) -> None:
    """At 4df1ece export refused it, though export never contacts the teacher."""
    run = _run_with_credentials(tmp_path)
    out = dataloop("export", str(run.path), "--format", "jsonl", "--out", str(tmp_path / "t.jsonl"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "t.jsonl").read_text().count("\n") > 1


def test_resume_asks_for_a_redacted_url_and_takes_it_with_set(tmp_path) -> None:
    run = _run_with_credentials(tmp_path)
    line = one_line_error(dataloop("resume", str(run.path)), "teacher.base_urls", "--set")
    assert "http://***@127.0.0.1:1/v1" in line
    out = dataloop("resume", str(run.path), "--set", "iterations=5")
    one_line_error(out, "--set iterations", "only how the teacher is reached")
    config = resume_config(run.path, {"teacher.base_urls": [URL_WITH_PASSWORD]})
    assert config.teacher.base_urls == [URL_WITH_PASSWORD]
    check_teacher(config.teacher)  # what resume checks first now passes


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        (f"student.model={SECRET}", "student.model"),
        (f"student.model=/x/{SECRET}", "student.model"),
        (f"teacher.model={SECRET}", "teacher.model"),
        (f"teacher.base_urls=[{SECRET}]", "teacher.base_urls"),
    ],
)
def test_a_key_typed_where_a_name_or_url_belongs_is_not_echoed(tmp_path, setting, field) -> None:
    """At 4df1ece a key given as student.model or a base_urls entry was echoed back (and a
    hub id that is a key was sent to the hub)."""
    out = dataloop(
        "run", "--runs-dir", str(tmp_path / "runs"), "--set", "teacher.backend=openai",
        "--set", "teacher.model=m", "--set", "teacher.base_urls=[http://127.0.0.1:1/v1]",
        "--set", setting,
    )  # fmt: skip
    line = one_line_error(out, f"config field '{field}'")
    assert SECRET not in out.stderr and SECRET[8:20] not in line
    assert not (tmp_path / "runs").exists()
