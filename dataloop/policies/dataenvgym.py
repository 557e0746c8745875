"""DataEnvGym's teachers as its code builds them.

DataEnvGym (Khan et al., 2024, arXiv:2410.06215) ships a baseline teacher per level of
structure. This module follows its code, file by file (the skill tree's is
:mod:`dataloop.policies.dataenvgym_tree`); where dataloop differs, the class docstring says so.
"""

from __future__ import annotations

import random
from collections import Counter

from dataloop.policies.base import Policy, allocate
from dataloop.schema import Failure, GenerationRequest, Observation, Plan


class DataEnvGymSkillList(Policy):
    """DataEnvGym's skill-list teacher: the same amount of data for every skill the student
    got wrong, each prompt showing that skill's failures.

    Follows ``src/dataenvgym/gym/data_generation_agents/math/baselines/skill_list.py``
    (codezakh/DataEnvGym): the student's errors are grouped by skill, every skill with errors
    gets the same number of examples, and the teacher's prompt for a skill lists its failed
    problems with the student's answer and the correct answer. The targeting is in the content
    of the prompt, not in the quantity. The failures come from the feedback probes
    (``env.feedback_per_skill``, 20 by default with this policy), never from the validation
    split.

    Where dataloop differs: DataEnvGym asks for a fixed number of examples per skill with errors
    (5 hypotheses x 5 data specifications), so its total grows with the number of weak skills;
    here ``examples_per_iteration`` is split equally over them, so every policy spends the same
    budget. DataEnvGym shows all of a skill's errors in one chat prompt; here every prompt of the
    request lists at most ``max_shown`` of them (default: all), and ``new-question`` takes its
    worked examples from them (correct answers) before any seed. When no skill has a failed
    probe, every skill gets an equal share.

    Options:
        all_skills: give every skill data, not only those with errors (default False; in
            DataEnvGym, ``generate_data_only_for_errors=False``).
        max_shown: most failures a request shows (default None: all of the skill's).
    """

    name = "dataenvgym-skill-list"
    structures = frozenset({"skill-list", "skill-tree"})  # failures are shown per skill

    def __init__(
        self,
        examples_per_iteration: int = 240,
        strategy: str = "new-question",
        all_skills: bool = False,
        max_shown: int | None = None,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if max_shown is not None and max_shown < 1:
            raise ValueError("max_shown must be >= 1 (or null for all)")
        self.all_skills = all_skills
        self.max_shown = max_shown

    def failures(self, obs: Observation) -> dict[str, list[Failure]]:
        """The failed feedback probes of each skill, in the observation's order."""
        grouped: dict[str, list[Failure]] = {s.name: [] for s in obs.skills}
        for failure in obs.probes:
            grouped.setdefault(failure.example.skill, []).append(failure)
        return grouped

    def plan(self, obs: Observation) -> Plan:
        failures = self.failures(obs)
        weak = [s.name for s in obs.skills if failures.get(s.name)]
        targets = [s.name for s in obs.skills] if self.all_skills or not weak else weak
        allocation = allocate(self.examples_per_iteration, dict.fromkeys(targets, 1.0))
        requests = [
            GenerationRequest(
                skill=skill,
                strategy=self.strategy,
                count=count,
                failures=failures.get(skill, [])[: self.max_shown],
            )
            for skill, count in allocation.items()
            if count > 0
        ]
        if not weak:
            rationale = "no failed probe: an equal share for every skill"
        else:
            shown = ", ".join(f"{s} {len(failures[s])}" for s in weak)
            rationale = f"equal shares for the skills with errors, failures shown: {shown}"
        return Plan(requests=requests, rationale=rationale)


class DataEnvGymOpenEnded(Policy):
    """DataEnvGym's open-ended teacher: a fixed number of examples each iteration, written from
    random examples of the task and random failures, with no skill named.

    Follows ``src/dataenvgym/gym/data_generation_agents/math/baselines/open_ended.py``
    (codezakh/DataEnvGym): each iteration asks for ``examples_per_iteration`` examples (there
    ``num_training_data_per_invocation``, 120) in calls of ``per_call`` (10); each call's prompt
    shows ``shown`` (3) random task examples and ``shown`` random errors of the student, mixed,
    and no skill label. The errors here are failed feedback probes (``obs.probes``: problem,
    the student's answer, the correct answer), never the validation split; the policy reads no
    per-skill accuracy, so it plans from an ``open-ended`` observation.

    Where dataloop differs: the engine writes and the task verifies examples one skill at a
    time, so a prompt cannot mix skills. The policy makes DataEnvGym's draws (seeded by the
    run's seed and the iteration) and splits each call's ``per_call`` examples over the skills
    of what it drew, by how many of its ``2 * shown`` examples each has: a random task example
    is a seed, its skill drawn in proportion to the seed counts; an error is drawn from all
    failed probes. The requests (one per skill, the calls summed) show every failure drawn for
    their skill, and their prompts do not name the skill (``GenerationRequest.show_skill``;
    new-question's templates honour it); the engine picks the seed examples a prompt shows
    (``engine.shots``).
    In DataEnvGym's MATH file the errors print as empty lines (the template reads
    ``instruction``, which a ``CompletedMathTaskInstance`` lacks, and jinja2's default
    ``Undefined`` renders it as nothing), so its prompt shows only the task examples; its code,
    VQA and tool-use teachers show problem, the student's answer and the correct answer, as
    this one does.

    Options:
        per_call: examples one of DataEnvGym's calls asks for (default 10).
        shown: task examples, and errors, one call draws (default 3 each).
        seed: seeds the draws with the iteration (a run passes its own seed).
    """

    name = "dataenvgym-open-ended"
    uses_seed = True

    def __init__(
        self,
        examples_per_iteration: int = 120,
        strategy: str = "new-question",
        per_call: int = 10,
        shown: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__(examples_per_iteration, strategy)
        if per_call < 1:
            raise ValueError("per_call must be >= 1")
        if shown < 1:
            raise ValueError("shown must be >= 1")
        self.per_call = per_call
        self.shown = shown
        self.seed = seed

    def plan(self, obs: Observation) -> Plan:
        skills = [s.name for s in obs.skills]
        weights = [obs.seed_counts.get(s, 0) for s in skills]
        if not any(weights):
            weights = [1] * len(skills)
        rng = random.Random(f"{self.name}/{self.seed}/{obs.iteration}")
        counts: Counter[str] = Counter()
        shown: dict[str, list[Failure]] = {s: [] for s in skills}
        left = self.examples_per_iteration
        while left > 0 and skills:
            n = min(self.per_call, left)
            left -= n
            examples = rng.choices(skills, weights=weights, k=self.shown)
            errors = rng.sample(obs.probes, min(self.shown, len(obs.probes)))
            drawn = Counter(examples) + Counter(f.example.skill for f in errors)
            counts.update(allocate(n, {s: drawn[s] for s in skills if drawn[s]}))
            for failure in errors:
                if failure.example.skill in shown and failure not in shown[failure.example.skill]:
                    shown[failure.example.skill].append(failure)
        requests = [
            GenerationRequest(
                skill=skill,
                strategy=self.strategy,
                count=counts[skill],
                failures=shown[skill],
                show_skill=False,
            )
            for skill in skills
            if counts[skill] > 0
        ]
        errors_shown = sum(len(f) for f in shown.values())
        rationale = (
            f"{self.examples_per_iteration} examples in calls of {self.per_call}, each from "
            f"{self.shown} random task examples and {self.shown} random failures of "
            f"{len(obs.probes)} failed probes ({errors_shown} shown); no skill named"
        )
        return Plan(requests=requests, rationale=rationale)
