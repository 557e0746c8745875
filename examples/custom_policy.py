"""Two custom teacher policies: a Policy subclass and a plain function ``obs -> Plan``.

From the command line (or ``policy.name`` in a YAML config)::

    dataloop run --policy examples/custom_policy.py:FocusOnFailures
    dataloop run --policy examples/custom_policy.py:retry_failures

``policy.examples_per_iteration`` and ``policy.options`` reach the class's ``__init__``; a
plain function takes no options.

From Python, with a teacher already serving on 127.0.0.1:8080 (``dataloop serve``)::

    from pathlib import Path

    from dataloop import (Engine, Environment, HFStudent, Loop, OpenAIClient, StudentConfig,
                          Teacher, load_task)

    task = load_task("arithmetic")
    engine = Engine(Teacher(OpenAIClient("gemma", ["http://127.0.0.1:8080/v1"])), task)
    env = Environment(
        task,
        HFStudent(StudentConfig()),
        checkpoints_dir=Path("runs/api/ckpt"),
        budget=engine.budget,  # a spent teacher budget ends the episode
    )
    history = Loop(env, FocusOnFailures(examples_per_iteration=120), engine).run()
    # or: Loop(env, retry_failures, engine).run()

or in one call, the teacher started and stopped by the run::

    import dataloop

    history = dataloop.run({"policy": {"name": "examples/custom_policy.py:FocusOnFailures"}})
"""

from __future__ import annotations

from collections import Counter

from dataloop import GenerationRequest, Observation, Plan, Policy
from dataloop.policies import allocate


class FocusOnFailures(Policy):
    """Examples per skill in proportion to its failed seed examples (+1, so none gets nothing)."""

    name = "focus-on-failures"

    def plan(self, obs: Observation) -> Plan:
        failed = Counter(f.example.skill for f in obs.failures)
        weights = {s.name: failed[s.name] + 1.0 for s in obs.skills}
        allocation = allocate(self.examples_per_iteration, weights)
        return Plan(requests=self.requests_for(allocation), rationale=f"failures: {dict(failed)}")


def retry_failures(obs: Observation) -> Plan:
    """Per skill, 4 new examples per failed seed example, written from those failures."""
    requests = []
    for skill in obs.skills:
        ids = [f.example.id for f in obs.failures if f.example.skill == skill.name]
        if ids:
            requests.append(GenerationRequest(skill=skill.name, count=4 * len(ids), seed_ids=ids))
    return Plan(requests=requests, rationale="new examples modelled on failed seed examples")
