"""Every strategy against the real embedded teacher (llama-server + Gemma 3 270M), through the
engine and through ``dataloop run --strategy`` in a subprocess."""

from __future__ import annotations

import asyncio
import json

import pytest
from realcli import small_run

from dataloop.config import EngineConfig
from dataloop.engine import BUILTIN_STRATEGIES, Engine
from dataloop.llm import OpenAIClient, Sampling, Teacher
from dataloop.schema import Failure, GenerationRequest, Observation, Plan

pytestmark = pytest.mark.integration

# (skill, count, whether the training set holds the seeds). Gemma 270M handles "max" best
# (for llm2llm on "add" it mostly writes 3-digit sums). answer-augmentation runs with no
# training set yet: on the arithmetic gym the only right answer to a seed question is the
# seed's own, a duplicate of the seed (unit-tested).
CASES = {
    "new-question": ("add", 3, True),
    "answer-augmentation": ("max", 3, False),
    "question-rephrase": ("max", 3, True),
    "llm2llm": ("max", 3, True),
    "refine": ("max", 3, False),  # a right correction is the seed's own answer (as above)
}
# harder meets the real teacher in the high-loss CLI run (tests/integration/test_policies_cli.py),
# which sends its seeds there: one case fewer of CI time.


@pytest.mark.parametrize("strategy", list(CASES))
def test_each_strategy_yields_verified_examples_from_the_real_teacher(
    llama: str, arithmetic, strategy: str
) -> None:
    skill, count, with_seeds = CASES[strategy]
    seeds = [e for e in arithmetic.split("train") if e.skill == skill]
    failures = [Failure(example=e, prediction="0") for e in seeds[:4]]
    obs = Observation(
        iteration=0,
        skills=arithmetic.skills(),
        accuracy={},
        mean_accuracy=0.0,
        failures=failures,
    )

    async def go():
        client = OpenAIClient("gemma", [llama], concurrency=4)
        engine = Engine(
            Teacher(client),
            arithmetic,
            EngineConfig(max_rounds=4),
            sampling=Sampling(max_tokens=96, temperature=0.7),
        )
        plan = Plan(requests=[GenerationRequest(skill=skill, strategy=strategy, count=count)])
        train = arithmetic.split("train") if with_seeds else []
        result = await engine.generate(plan, obs, train)
        await client.aclose()
        return result

    result = asyncio.run(go())
    (counts,) = result.report.counts
    assert counts.strategy == strategy and counts.accepted >= 1, counts
    assert counts.parsed >= counts.verified >= counts.accepted and not result.errors
    seed_ids = {e.id for e in seeds}
    for example in result.accepted:
        assert example.skill == skill
        assert arithmetic.check_answer(example), example  # every accepted answer is right
        p = example.provenance
        assert (p.source, p.strategy, p.teacher, p.iteration) == ("generated", strategy, "gemma", 1)
        assert p.template and p.template.startswith(BUILTIN_STRATEGIES[strategy].template_dir)
        assert p.parent_ids and set(p.parent_ids) <= seed_ids  # parents are original seeds
        failed = {f.example.id for f in failures}
        if strategy in ("llm2llm", "refine"):
            assert set(p.parent_ids) <= failed
        if strategy in ("answer-augmentation", "question-rephrase", "refine"):
            parent = next(e for e in seeds if e.id == p.parent_ids[0])
            assert example.answer == parent.answer and not p.relabelled


# The loop's own CLI run per strategy costs CI minutes: refine and harder run in the one
# high-loss run of tests/integration/test_policies_cli.py instead.
@pytest.mark.parametrize(
    "strategy", ["new-question", "answer-augmentation", "question-rephrase", "llm2llm"]
)
def test_cli_loop_with_each_strategy(tmp_path, strategy: str) -> None:
    out = small_run(
        tmp_path, "s", "--iterations", "1", "--strategy", strategy,
        "--set", "env.options={train_per_skill: 8, validation_per_skill: 10, "
        "test_per_skill: 10, skills: [add, max]}",
        "--set", "policy.examples_per_iteration=12",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "s" / "iterations" / "1"
    report = json.loads((folder / "generation.json").read_text())
    assert {c["skill"] for c in report["counts"]} == {"add", "max"}
    for counts in report["counts"]:
        assert counts["strategy"] == strategy and counts["requested"] > 0
        assert counts["generated"] > 0
        assert counts["parsed"] >= counts["verified"] >= counts["accepted"]
    candidates = [json.loads(line) for line in (folder / "generated.jsonl").open()]
    assert candidates
    assert {c["example"]["provenance"]["strategy"] for c in candidates} == {strategy}
    accepted = sum(c["accepted"] for c in report["counts"])
    assert sum(c["verdict"] == "accepted" for c in candidates) == accepted
