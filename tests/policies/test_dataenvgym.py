"""DataEnvGym's open-ended and skill-tree teachers with scripted teachers: what their plans ask
for, what their prompts show, the explore/exploit alternation and the allocation by the
student's accuracy on the data it was given."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_gym import Memorises
from test_planner import ScriptedClient

from dataloop.engine.strategies import NewQuestion
from dataloop.engine.strategy import RequestContext
from dataloop.environments import load_task
from dataloop.errors import BudgetExhausted, RegistryError
from dataloop.gym import Environment
from dataloop.llm.teacher import Teacher
from dataloop.llm.templates import Templates
from dataloop.policies import (
    DataEnvGymOpenEnded,
    DataEnvGymSkillTree,
    check_structure,
    make_policy,
)
from dataloop.schema import (
    Example,
    Explore,
    Failure,
    GenerationRequest,
    Observation,
    SkillInfo,
    SkillNode,
    SkillTree,
    Subskill,
)

SKILLS = ["add", "sort", "max"]


def _probe(skill: str, question: str, answer: str, said: str = "0") -> Failure:
    return Failure(example=Example.make(skill, question, answer), prediction=said)


def _open_obs(iteration: int = 1, probes: list[Failure] | None = None) -> Observation:
    """An open-ended observation: no per-skill accuracy; failed probes, and failed seeds."""
    return Observation(
        iteration=iteration,
        skills=[SkillInfo(name=s, description=f"the {s} skill") for s in SKILLS],
        accuracy={},
        mean_accuracy=0.4,
        structure="open-ended",
        seed_counts=dict.fromkeys(SKILLS, 24),
        probes=probes if probes is not None else [],
        failures=[_probe("max", "max(1,2)", "2", "1")],  # a failed seed: never shown
    )


def _add_probes(n: int) -> list[Failure]:
    return [_probe("add", f"{10 + i}+{20 + i}", str(30 + 2 * i)) for i in range(n)]


# dataenvgym-open-ended


def test_open_ended_asks_for_a_fixed_count_without_naming_a_skill() -> None:
    probes = [*_add_probes(6), _probe("sort", "sort(321)", "123", "321")]
    policy = make_policy("dataenvgym-open-ended")
    plan = policy.plan(_open_obs(probes=probes))
    assert plan.total == 120  # DataEnvGym's num_training_data_per_invocation
    assert all(not r.show_skill for r in plan.requests)
    shown = [f for r in plan.requests for f in r.failures]
    assert shown and all(f in probes for f in shown)  # failed probes, never the failed seed
    assert all(f.example.skill == r.skill for r in plan.requests for f in r.failures)
    assert "no skill named" in plan.rationale
    # Seeded by the run's seed and the iteration: the same observation gives the same plan,
    # the next iteration another draw, and so does another seed of an experiment.
    assert policy.plan(_open_obs(probes=probes)) == plan
    assert policy.plan(_open_obs(iteration=2, probes=probes)) != plan
    assert make_policy("dataenvgym-open-ended", run_seed=0).plan(_open_obs(probes=probes)) == plan
    other = make_policy("dataenvgym-open-ended", run_seed=1).plan(_open_obs(probes=probes))
    assert other != plan and other.total == plan.total
    check_structure("dataenvgym-open-ended", "open-ended")  # reads no per-skill accuracy


def test_open_ended_data_follows_the_random_draws_so_failures_pull_their_skill() -> None:
    # Half of every call's examples are failures, all of 'add': add gets about half plus a
    # third of the other half (equal seeds), the others a third of the other half each.
    plan = DataEnvGymOpenEnded(examples_per_iteration=600).plan(_open_obs(probes=_add_probes(9)))
    counts = {r.skill: r.count for r in plan.requests}
    assert plan.total == 600
    assert counts["add"] > 300 > counts["sort"] + counts["max"]
    assert counts["sort"] > 50 and counts["max"] > 50
    assert [r.skill for r in plan.requests if r.failures] == ["add"]
    # No failed probe: the task examples alone decide, in proportion to the seed counts.
    obs = _open_obs()
    obs.seed_counts = {"add": 0, "sort": 30, "max": 10}
    counts = {r.skill: r.count for r in DataEnvGymOpenEnded().plan(obs).requests}
    assert set(counts) == {"sort", "max"} and counts["sort"] > counts["max"]


def test_open_ended_calls_and_draws_follow_its_options() -> None:
    probes = _add_probes(9)
    plan = DataEnvGymOpenEnded(examples_per_iteration=7, per_call=7, shown=1).plan(
        _open_obs(probes=probes)
    )
    # One call: one task example and one failure drawn, the 7 split between their skills.
    assert plan.total == 7
    assert sum(len(r.failures) for r in plan.requests) == 1
    assert len(plan.requests) <= 2
    with pytest.raises(RegistryError, match="per_call"):
        make_policy("dataenvgym-open-ended", per_call=0)
    with pytest.raises(RegistryError, match="shown"):
        make_policy("dataenvgym-open-ended", shown=0)


@pytest.mark.parametrize("kind", ["base", "chat"])
def test_an_unlabelled_request_hides_the_skill_and_shows_the_failures(arithmetic, kind) -> None:
    skill = next(s for s in arithmetic.skills() if s.name == "add")
    seeds = [e for e in arithmetic.split("train") if e.skill == "add"]
    probes = _add_probes(2)
    request = GenerationRequest(skill="add", count=5, failures=probes, show_skill=False)
    ctx = RequestContext(
        task=arithmetic, request=request, skill=skill, seeds=seeds, iteration=1, shots=4
    )
    text = NewQuestion(Templates(), kind).prompt(ctx, 0, 5).text
    assert '"add"' not in text and skill.description not in text
    assert "of the skill" not in text and "of this skill" not in text
    for failure in probes:  # problem, the student's answer, the correct one
        assert failure.example.question in text and failure.example.answer in text
    labelled = request.model_copy(update={"show_skill": True})
    ctx.request = labelled
    assert '"add"' in NewQuestion(Templates(), kind).prompt(ctx, 0, 5).text


def test_open_ended_brings_feedback_probes_with_it() -> None:
    from dataloop.config import validate_config
    from dataloop.errors import ConfigError

    config = validate_config({"policy": {"name": "dataenvgym-open-ended"}})
    assert config.env.feedback_per_skill == 20
    assert config.env.structure == "skill-list"  # no default changed: the user sets it
    with pytest.raises(ConfigError, match=r"dataenvgym-open-ended .* env\.feedback_per_skill"):
        validate_config(
            {"policy": {"name": "dataenvgym-open-ended"}, "env": {"feedback_per_skill": 0}}
        )


# dataenvgym-skill-tree


def _node(name: str, *subskills: Subskill) -> SkillNode:
    return SkillNode(name=name, description=f"the {name} skill", subskills=list(subskills))


def _tree_obs(iteration: int, *nodes: SkillNode) -> Observation:
    return Observation(
        iteration=iteration,
        skills=[SkillInfo(name=n.name, description=n.description) for n in nodes],
        accuracy={n.name: 0.5 for n in nodes},
        mean_accuracy=0.5,
        structure="skill-tree",
        tree=SkillTree(skills=list(nodes)),
    )


def _proposal(*names: str) -> str:
    """A chat teacher's reply proposing subskills ``names``."""
    return json.dumps({"skills": [{"name": n, "description": f"problems with {n}"} for n in names]})


def _sub(name: str, iteration: int, data_accuracy: float | None) -> Subskill:
    return Subskill(
        name=name,
        description=f"problems with {name}",
        iteration=iteration,
        labelled_by="teacher",
        data_accuracy=data_accuracy,
    )


def test_skill_tree_first_explores_subskills_the_teacher_proposes() -> None:
    client = ScriptedClient(_proposal("carries", "big-numbers"), _proposal("ties", "negatives"))
    policy = DataEnvGymSkillTree(Teacher(client, "chat"), examples_per_iteration=60)
    plan = asyncio.run(policy.aplan(_tree_obs(0, _node("add"), _node("max"))))
    assert [(e.skill, e.name, e.description) for e in plan.explore] == [
        ("add", "carries", "problems with carries"),
        ("add", "big-numbers", "problems with big-numbers"),
        ("max", "ties", "problems with ties"),
        ("max", "negatives", "problems with negatives"),
    ]
    # Equal shares per skill, equal parts over the new subskills.
    assert [(r.skill, r.subskill, r.count) for r in plan.requests] == [
        ("add", "carries", 15),
        ("add", "big-numbers", 15),
        ("max", "ties", 15),
        ("max", "negatives", 15),
    ]
    first = client.prompts[0]
    assert '"add": the add skill' in first and "Propose 2 subskills" in first
    assert "explore (carries, big-numbers)" in plan.rationale
    with pytest.raises(RegistryError, match="skill tree"):
        check_structure("dataenvgym-skill-tree", "skill-list")


def test_skill_tree_exploits_after_an_explore_by_the_students_accuracy_on_the_data() -> None:
    client = ScriptedClient()  # an exploit asks the teacher nothing
    policy = DataEnvGymSkillTree(Teacher(client, "chat"), examples_per_iteration=40)
    add = _node("add", _sub("carries", 1, 0.25), _sub("big-numbers", 1, 0.75))
    plan = asyncio.run(policy.aplan(_tree_obs(1, add)))
    assert plan.explore == []
    assert [(r.subskill, r.count) for r in plan.requests] == [("carries", 30), ("big-numbers", 10)]
    assert "exploit by data accuracy (carries 25%, big-numbers 75%)" in plan.rationale
    assert client.prompts == []


def test_skill_tree_explores_again_after_an_exploit_and_asks_once_more_for_missing() -> None:
    client = ScriptedClient(_proposal("carries", "three-digits"), _proposal("zeros"))
    policy = DataEnvGymSkillTree(Teacher(client, "base"), examples_per_iteration=30)
    # Added in iteration 1, exploited in the plan made from it: observed at 2, explore now.
    add = _node("add", _sub("carries", 1, 0.5), _sub("big-numbers", 1, 0.5))
    plan = asyncio.run(policy.aplan(_tree_obs(2, add)))
    # 'carries' is in the tree already: one new name, then a second query for the missing one.
    assert [e.name for e in plan.explore] == ["three-digits", "zeros"]
    assert [(r.subskill, r.count) for r in plan.requests] == [("three-digits", 15), ("zeros", 15)]
    assert len(client.prompts) == 2
    assert "carries (problems with carries)" in client.prompts[0]
    assert "2 new subskills:" in client.prompts[0] and "1 new subskill:" in client.prompts[1]
    assert "three-digits (problems with three-digits)" in client.prompts[1]


def test_skill_tree_without_a_proposal_gives_the_share_to_the_whole_skill() -> None:
    client = ScriptedClient(BudgetExhausted("query budget of 5 spent"))
    policy = DataEnvGymSkillTree(Teacher(client, "chat"), examples_per_iteration=12)
    plan = asyncio.run(policy.aplan(_tree_obs(0, _node("add"))))
    assert plan.explore == []
    assert [(r.skill, r.subskill, r.count) for r in plan.requests] == [("add", None, 12)]
    assert "none proposed, whole skill" in plan.rationale
    with pytest.raises(ValueError, match="skill tree"):
        asyncio.run(policy.aplan(_open_obs()))
    with pytest.raises(RegistryError, match="new_subskills"):
        make_policy("dataenvgym-skill-tree", teacher=Teacher(client), new_subskills=0)


class MissesNines(Memorises):
    """Memorises, but answers nothing whose question holds a 9."""

    def predict(self, prompts: list[str]) -> list[str]:
        return [
            "" if "9" in p else a for p, a in zip(prompts, super().predict(prompts), strict=True)
        ]


def test_each_subskill_observes_the_students_accuracy_on_its_own_data(tmp_path: Path) -> None:
    task = load_task("arithmetic", options={"train_per_skill": 4, "validation_per_skill": 6})
    env = Environment(task, MissesNines(), checkpoints_dir=tmp_path, structure="skill-tree")
    env.reset()
    env.explore(
        [
            Explore(skill="sort", name="repeated-digits"),
            Explore(skill="sort", name="distinct-digits"),
        ]
    )
    given = [
        Example.make("sort", "sort(1191)", "1119", source="generated", subskill="repeated-digits"),
        Example.make("sort", "sort(2231)", "1223", source="generated", subskill="repeated-digits"),
        Example.make("max", "max(91,19)", "91", source="generated"),
    ]
    obs, *_ = env.step(given)
    sort = obs.tree.node("sort")
    assert sort.subskill("repeated-digits").data_accuracy == 0.5
    assert sort.subskill("distinct-digits").data_accuracy is None  # given no data
    assert obs.data_accuracy == {"sort": 0.5, "max": 0.0}
    obs, *_ = env.step([])
    assert obs.tree.node("sort").subskill("repeated-digits").data_accuracy is None


def _action(**fields: object) -> str:
    return json.dumps(
        {"reasoning": "why", "num_new_skills": None, "data_allocation": None, **fields}
    )


def test_skill_tree_teacher_actions_choose_exploit_or_explore() -> None:
    add = _node("add", _sub("carries", 1, 0.25), _sub("big-numbers", 1, 0.75))
    client = ScriptedClient(
        _action(action_type="exploit", data_allocation={"carries": 1, "big-numbers": 3})
    )
    policy = DataEnvGymSkillTree(
        Teacher(client, "chat"), examples_per_iteration=40, actions="teacher"
    )
    plan = asyncio.run(policy.aplan(_tree_obs(1, add)))
    # The teacher's split, not the alternation's (which would give carries the most).
    assert [(r.subskill, r.count) for r in plan.requests] == [("carries", 10), ("big-numbers", 30)]
    prompt = client.prompts[0]  # the subskills with their accuracy on the data they were given
    assert (
        "carries (problems with carries)" in prompt
        and "Performance on Training Data: 0.25" in prompt
    )
    assert "(teacher: why)" in plan.rationale
    # Explore: as many as asked (at most new_subskills), proposed by the teacher.
    client = ScriptedClient(
        _action(action_type="explore", num_new_skills=5), _proposal("zeros", "ones")
    )
    policy = DataEnvGymSkillTree(
        Teacher(client, "chat"), examples_per_iteration=40, actions="teacher"
    )
    plan = asyncio.run(policy.aplan(_tree_obs(1, add)))
    assert [e.name for e in plan.explore] == ["zeros", "ones"]
    assert "Propose 2 new subskills" in client.prompts[1]
    # A base teacher completes the action after a worked demo.
    client = ScriptedClient(" " + _action(action_type="explore", num_new_skills=1), "zeros: 0s")
    policy = DataEnvGymSkillTree(
        Teacher(client, "base"), examples_per_iteration=4, actions="teacher"
    )
    plan = asyncio.run(policy.aplan(_tree_obs(1, add)))
    assert client.prompts[0].endswith(
        "performance on training data 0.25\n- big-numbers: 0 "
        "training examples, performance on training data 0.75\nAction:"
    )
    assert [e.name for e in plan.explore] == ["zeros"]


def test_skill_tree_teacher_actions_fall_back_to_the_alternation(caplog) -> None:
    add = _node("add", _sub("carries", 1, 0.25), _sub("big-numbers", 1, 0.75))
    client = ScriptedClient(
        "I would exploit.",
        _action(action_type="exploit", data_allocation={"nope": 3}),
    )
    policy = DataEnvGymSkillTree(
        Teacher(client, "chat"), examples_per_iteration=40, actions="teacher"
    )
    plan = asyncio.run(policy.aplan(_tree_obs(1, add)))
    assert len(client.prompts) == 2
    assert [(r.subskill, r.count) for r in plan.requests] == [("carries", 30), ("big-numbers", 10)]
    assert "alternation: the teacher's action failed: exploit names unknown subskills ['nope']" in (
        plan.rationale
    )
    assert "fell back to the alternation" in caplog.text
    with pytest.raises(RegistryError, match="actions"):
        make_policy("dataenvgym-skill-tree", teacher=Teacher(client), actions="llm")
