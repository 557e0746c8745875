"""Kill a real run (kill -9 of the CLI) at several points, resume it, compare with a clean run.

The teacher is a loopback OpenAI-compatible server whose replies are a pure function of the
prompt, so the uninterrupted run and each interrupted one see the same teacher; everything else
(the CLI, training, the run directory) is the real thing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI
from fakeserver import few_shot_variations as _reply

pytestmark = pytest.mark.integration


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataloop.cli", *args]


def _options(url: str, runs: Path, name: str) -> list[str]:
    return [
        "--name", name, "--runs-dir", str(runs), "--iterations", "2", "--quiet",
        "--set", "teacher.backend=openai",
        "--set", "teacher.model=fake",
        "--set", f"teacher.base_urls=[{url}]",
        "--set", "env.options={validation_per_skill: 15, test_per_skill: 15}",
        "--set", "policy.examples_per_iteration=30",
        "--set", "student.steps_per_iteration=15",
        "--set", "engine.per_query=4",
    ]  # fmt: skip


def _state(run: Path) -> dict:
    try:
        return json.loads((run / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _accepted(run: Path) -> list[list[str]]:
    """Accepted examples per iteration, as written: the engine judges replies in plan order,
    so an interrupted run's files equal a clean run's line for line, however requests raced."""
    return [(run / f"iterations/{k}/accepted.jsonl").read_text().splitlines() for k in (1, 2)]


_ORDER = {"planned": 0, "generated": 1, "trained": 2}


def _at_or_after(iteration: int, phase: str):
    """A kill point: the first state seen at or after (iteration, phase), the run not yet done.

    "At or after", because a phase can be over before a poll sees it; any point is a valid
    point to kill a run at, and later states still leave iteration 2 to do.
    """

    def reached(state: dict) -> bool:
        if not state or state.get("phase") == "reset":
            return False
        seen = (state["iteration"], _ORDER[state["phase"]])
        return seen >= (iteration, _ORDER[phase])

    return reached


KILL_POINTS = {
    # the plan of iteration 1 is written: generation is under way.
    "during-generation": _at_or_after(1, "planned"),
    # accepted data of iteration 1 is committed: the student is training.
    "during-training": _at_or_after(1, "generated"),
    # iteration 1 is complete: the loop is between iterations (or planning iteration 2).
    "between-iterations": _at_or_after(1, "trained"),
}


def test_kill_and_resume_gives_the_same_data_as_an_uninterrupted_run(tmp_path) -> None:
    with FakeOpenAI(latency=0.2, reply=_reply) as server:
        reference = subprocess.run(
            _cli("run", *_options(server.base_url, tmp_path, "reference")),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert reference.returncode == 0, reference.stderr
        expected = _accepted(tmp_path / "reference")
        assert all(expected), "the reference run accepted nothing"

        for point, reached in KILL_POINTS.items():
            run = tmp_path / point
            proc = subprocess.Popen(
                _cli("run", *_options(server.base_url, tmp_path, point)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 300
            while not reached(_state(run)) and proc.poll() is None:
                assert time.monotonic() < deadline, f"{point}: never reached"
                time.sleep(0.02)
            assert proc.poll() is None, f"{point}: the run ended before the kill point"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert not _state(run).get("done"), f"{point}: the run finished before the kill"

            resumed = subprocess.run(
                _cli("resume", str(run), "--quiet"), capture_output=True, text=True, timeout=600
            )
            assert resumed.returncode == 0, f"{point}: {resumed.stderr}"
            got = _accepted(run)
            assert got == expected, f"{point}: accepted data differs from the uninterrupted run"
            for lines in got:
                ids = [json.loads(line)["id"] for line in lines]
                assert len(ids) == len(set(ids)), f"{point}: duplicated examples"
            assert _state(run)["done"]


def test_resume_of_a_missing_run_is_one_line_naming_the_file(tmp_path) -> None:
    missing = subprocess.run(_cli("resume", str(tmp_path / "nope")), capture_output=True, text=True)
    assert missing.returncode == 2 and "config.yaml is missing" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_killed_skill_tree_run_resumes_with_its_tree_intact(tmp_path) -> None:
    """kill -9 while iteration 2 generates, after its plan grew the tree: the resumed run ends
    with the same tree (every subskill once, added in the same iteration) and the same data."""
    # stuck_data 0: an unlearned subskill counts as stuck at once, so every plan grows the tree.
    tree = ["--set", "env.structure=skill-tree", "--set", "policy.options={stuck_data: 0}"]

    def trees(run: Path) -> list[list[tuple[str, str, int, str]]]:
        """Each iteration's tree as its shape: (skill, subskill, iteration added, labeller);
        the accuracies are left out, as the other kill tests leave them."""
        shapes = []
        for k in (0, 1, 2):
            tree = json.loads((run / f"iterations/{k}/tree.json").read_text())
            shapes.append(
                [
                    (n["name"], s["name"], s["iteration"], s["labelled_by"])
                    for n in tree["skills"]
                    for s in n["subskills"]
                ]
            )
        return shapes

    with FakeOpenAI(latency=0.2, reply=_reply) as server:
        reference = subprocess.run(
            _cli("run", *_options(server.base_url, tmp_path, "reference"), *tree),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert reference.returncode == 0, reference.stderr
        plan = json.loads((tmp_path / "reference/iterations/2/plan.json").read_text())
        assert plan["explore"], "iteration 2 grew nothing: the kill would not test the tree"

        run = tmp_path / "killed"
        proc = subprocess.Popen(
            _cli("run", *_options(server.base_url, tmp_path, "killed"), *tree),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        reached = _at_or_after(2, "planned")
        deadline = time.monotonic() + 300
        while not reached(_state(run)) and proc.poll() is None:
            assert time.monotonic() < deadline, "never reached"
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before the kill point"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not _state(run).get("done")

        resumed = subprocess.run(
            _cli("resume", str(run), "--quiet"), capture_output=True, text=True, timeout=600
        )
        assert resumed.returncode == 0, resumed.stderr
    assert _accepted(run) == _accepted(tmp_path / "reference")
    assert trees(run) == trees(tmp_path / "reference")
    final = trees(run)[-1]
    assert any(added == 2 for _, _, added, _ in final)  # grown by the plan the kill cut short
    names = [(skill, sub) for skill, sub, _, _ in final]
    assert len(names) == len(set(names)) and _state(run)["done"]
