"""The orchestrator: reset, then plan -> generate -> step until done, recording everything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dataloop.display import Display
from dataloop.engine.engine import Engine
from dataloop.gym import Environment
from dataloop.policies import Policy, as_policy
from dataloop.runs import RunDir
from dataloop.schema import HistoryEntry, Observation, Plan


class Loop:
    """Runs a teacher (policy + engine) against an environment.

    ``Loop(env=..., policy=..., engine=...).run()`` returns the per-iteration history; with a
    ``run`` directory every plan, candidate, accepted example and metric is written to it.
    """

    def __init__(
        self,
        env: Environment,
        policy: Policy | Callable[[Observation], Plan],
        engine: Engine,
        run: RunDir | None = None,
        display: Display | None = None,
    ) -> None:
        self.env = env
        self.policy = as_policy(policy)
        self.engine = engine
        self.run_dir = run
        self.display = display or Display(quiet=True)

    def run(self) -> list[HistoryEntry]:
        """Reset, then iterate until the environment says done or the budget runs out."""
        with asyncio.Runner() as runner:
            try:
                return self._run(runner)
            finally:
                runner.run(self.engine.client.aclose())

    def _run(self, runner: asyncio.Runner) -> list[HistoryEntry]:
        skills = [s.name for s in self.env.task.skills()]
        self.display.log("[bold]reset[/]: training on the seed set and evaluating")
        obs = self.env.reset()
        self._record_metrics()
        self.display.accuracy_table(skills, self.env.history)
        done = self.env.max_iterations == 0
        while not done:
            k = self.env.iteration + 1
            obs = obs.model_copy(update={"budget": self.engine.client.budget.model_copy()})
            plan = self.policy.plan(obs)
            self.display.log(
                f"[bold]iteration {k}[/]: {plan.total} examples asked — {plan.rationale}"
            )
            self._write("plan.json", k, plan)
            with self.display.progress("teacher generating", plan.total) as advance:
                result = runner.run(
                    self.engine.generate(plan, obs, self.env.train_set, on_progress=advance)
                )
            if self.run_dir is not None:
                folder = f"iterations/{k}"
                self.run_dir.write_jsonl(f"{folder}/generated.jsonl", result.candidates)
                self.run_dir.write_jsonl(f"{folder}/accepted.jsonl", result.accepted)
                self.run_dir.write_model(f"{folder}/generation.json", result.report)
            self.display.generation_table(result.report.counts)
            for error in result.errors[:3]:
                self.display.log(f"[yellow]teacher error[/]: {error}")
            if result.budget_exhausted:
                self.display.log("[yellow]teacher budget spent[/]: training on what was accepted")
            obs, reward, done, _ = self.env.step(result.accepted)
            self.env.history[-1].queries = result.report.queries
            self._record_metrics()
            self.display.accuracy_table(skills, self.env.history)
            self.display.log(f"reward (change in mean accuracy): {reward:+.1%}")
            if result.budget_exhausted:
                done = True
        return list(self.env.history)

    def _write(self, name: str, k: int, plan: Plan) -> None:
        if self.run_dir is not None:
            self.run_dir.write_model(f"iterations/{k}/{name}", plan)

    def _record_metrics(self) -> None:
        if self.run_dir is not None:
            self.run_dir.write_metrics(self.env.history)
