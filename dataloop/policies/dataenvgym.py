"""DataEnvGym's teachers as its code builds them.

DataEnvGym (Khan et al., 2024, arXiv:2410.06215) ships a baseline teacher per level of
structure. This module follows its code, file by file; where dataloop differs, the class
docstring says so.
"""

from __future__ import annotations

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
