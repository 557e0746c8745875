"""The three levels on math with discovered skills, through the real CLI with a scripted chat
teacher (a loopback OpenAI-compatible server whose replies depend only on the prompt): skill
discovery, the LLM planner's open-ended guidance and skill-tree exploration with subskills only
the teacher can label, real training of the tiny student, resume of a finished run."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

pytestmark = pytest.mark.integration


def _n(prompt: str, mod: int) -> int:
    return int(hashlib.sha1(prompt.encode()).hexdigest()[:6], 16) % mod


def scripted(prompt: str) -> str:
    """A chat teacher: proposes two skills, labels by '$', plans by structure, writes problems."""
    if "Propose between 2 and" in prompt:
        return json.dumps(
            {
                "skills": [
                    {"name": "money", "description": "prices, savings and costs"},
                    {"name": "counting", "description": "how many things there are"},
                ]
            }
        )
    if "Which one of these skills" in prompt:
        question = prompt.rsplit("Question:", 1)[1]
        if "- none:" in prompt:  # a subskill of the tree, or none
            return "big-numbers" if re.search(r"\d{2,}", question) else "none"
        return "money" if "$" in question else "counting"
    if "You are the teacher of a student model" in prompt:
        skills = re.findall(r"^- ([a-z-]+): ", prompt, flags=re.M)
        skill = skills[0] if skills else "money"
        if "skill tree" in prompt:
            new = {"skill": skill, "name": "big-numbers", "description": "two-digit amounts"}
            explore = [] if "subskill big-numbers" in prompt else [new]
            request = {"skill": skill, "strategy": "new-question", "count": 3, "guidance": ""}
            plan = {
                "explore": explore,
                "requests": [{**request, "subskill": "big-numbers"}, {**request, "subskill": None}],
                "rationale": "grow big numbers",
            }
        else:
            request = {"skill": skill, "strategy": "new-question", "count": 6}
            if "write guidance" in prompt:
                request["guidance"] = "more two-step problems with totals"
            plan = {"requests": [request], "rationale": "scripted"}
        return json.dumps(plan)
    if "You write training data" in prompt:
        lines = []
        for i in range(4):
            a, b = 10 + _n(prompt + str(i), 80), 2 + _n(str(i) + prompt, 8)
            lines.append(
                json.dumps(
                    {
                        "question": f"A box holds {a} pens and {b} more arrive. How many pens?",
                        "answer": f"{a} + {b} = <<{a}+{b}={a + b}>>{a + b}.\n#### {a + b}",
                    }
                )
            )
        return "\n".join(lines)
    return "none"


@pytest.mark.parametrize("structure", ["open-ended", "skill-list", "skill-tree"])
def test_each_level_on_math_with_discovered_skills(tmp_path: Path, structure: str) -> None:
    iterations = 2 if structure == "skill-tree" else 1  # the tree's second plan must not regrow
    done = range(1, iterations + 1)
    with FakeOpenAI(reply=scripted) as server:
        command = [
            sys.executable, "-m", "dataloop.cli", "run", "--name", "m", "--runs-dir",
            str(tmp_path), "--iterations", str(iterations), "--quiet", "--policy", "llm-planner",
            "--set", "env.name=math",
            "--set", "env.options={train_size: 16, validation_size: 8, test_size: 8}",
            "--set", "env.discover_skills=true",
            "--set", f"env.structure={structure}",
            "--set", "env.feedback_per_skill=2",
            "--set", "teacher.backend=openai", "--set", "teacher.model=scripted",
            "--set", "teacher.kind=chat", "--set", f"teacher.base_urls=[{server.base_url}]",
            "--set", "policy.examples_per_iteration=6",
            "--set", "student.steps_per_iteration=5", "--set", "student.batch_size=8",
            "--set", "student.max_length=320",
        ]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        run = tmp_path / "m"
        plans = [json.loads((run / f"iterations/{k}/plan.json").read_text()) for k in done]
        assert all(not p["rationale"].startswith("fallback") for p in plans), plans
        observations = [
            json.loads((run / f"iterations/{k}/observation.json").read_text()) for k in (0, *done)
        ]
        skills = {s["name"] for s in observations[0]["skills"]}
        assert skills <= {"money", "counting", "other"} and "money" in skills
        # Probes are held out of the math seed set (math cannot sample): never trained on.
        probe_ids = {p["example"]["id"] for o in observations for p in o["probes"]}
        accepted = [
            json.loads(line)
            for k in done
            for line in (run / f"iterations/{k}/accepted.jsonl").read_text().splitlines()
        ]
        assert accepted and not probe_ids & {e["id"] for e in accepted}
        if structure == "open-ended":
            assert observations[0]["accuracy"] == {} and observations[0]["probes"]
            assert plans[0]["requests"][0]["guidance"] == "more two-step problems with totals"
        if structure == "skill-tree":
            tree = json.loads((run / "iterations/2/tree.json").read_text())
            grown = [(n["name"], s) for n in tree["skills"] for s in n["subskills"]]
            assert [(skill, s["name"], s["labelled_by"]) for skill, s in grown] == [
                (plans[0]["explore"][0]["skill"], "big-numbers", "teacher")
            ]
            sub = grown[0][1]
            assert sub["members"] and sub["data"] >= 3  # placed by the teacher, data made for it
            made = [e for e in accepted if e["provenance"]["subskill"] == "big-numbers"]
            assert len(made) == 6  # 3 in each iteration
            assert plans[1]["explore"] == []  # it exists: the second plan does not add it again
        resumed = subprocess.run(
            [sys.executable, "-m", "dataloop.cli", "resume", str(run), "--quiet"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr  # a finished run resumes to nothing
