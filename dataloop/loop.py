"""The orchestrator: reset, then plan -> generate -> step until done, recording every phase.

With a run directory each phase (reset, plan, generate, train) is committed to ``state.json``
after its outputs are on disk, so :meth:`Loop.run` on an existing run continues from the last
completed phase: nothing accepted is lost or added twice, and the teacher's response cache
makes regenerating a half-finished phase free.

With ``overlap`` the teacher makes iteration k+1's data, planned from iteration k-1's
observation, while the student trains on iteration k's (docs/architecture.md, "Overlapping
generation with training").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from dataloop.background import InFlight
from dataloop.difficulty import measure_solve_rates
from dataloop.display import Display
from dataloop.engine.engine import GenerationResult
from dataloop.engine.judge import copying_warning
from dataloop.engine.sources import DataSource
from dataloop.errors import DataloopError, PluginError
from dataloop.gym import Environment
from dataloop.plugins import origin, raised
from dataloop.policies import FunctionPolicy, Policy, as_policy
from dataloop.runs import Metrics, Phase, RunDir, RunState
from dataloop.schema import (
    Budget,
    Example,
    HistoryEntry,
    Observation,
    Plan,
    SkillDifficulty,
    SkillTree,
)

log = logging.getLogger(__name__)


class Loop:
    """Runs a teacher (policy + engine) against an environment.

    ``engine`` is any :class:`~dataloop.engine.sources.DataSource`: the teacher's
    :class:`~dataloop.engine.engine.Engine`, or a control (the task's own sampler, no data).

    ``Loop(env=..., policy=..., engine=...).run()`` returns the per-iteration history; with a
    ``run`` directory every plan, candidate, accepted example and metric is written to it and
    an interrupted run continues where it stopped. The environment must be given the
    engine's budget (``Environment(..., budget=engine.budget)``), so that a spent budget ends
    the run. ``runner`` is an event loop to share with work done on the same teacher client
    before and after the loop (``open_loop``'s skill discovery, closing the client); its owner
    closes it. The loop closes nothing it did not open.

    With ``overlap`` the plan and data of iteration k+1 are made in a worker thread, on
    ``runner``'s event loop, while the student trains on iteration k's in the caller's thread;
    the plan reads iteration k-1's observation (the newest while k trains), with the budget as
    it stands (:func:`planned_from`). A ``skill-tree`` environment is refused: a plan grows the
    tree that the training iteration's evaluation scores.
    """

    def __init__(
        self,
        env: Environment,
        policy: Policy | Callable[[Observation], Plan],
        engine: DataSource,
        run: RunDir | None = None,
        display: Display | None = None,
        runner: asyncio.Runner | None = None,
        overlap: bool = False,
    ) -> None:
        if overlap and env.structure == "skill-tree":
            raise ValueError(
                "overlap cannot run a skill-tree environment: the next plan would grow the tree "
                "while the student's evaluation scores it; turn overlap off or use skill-list"
            )
        if env.budget is not engine.budget:
            raise ValueError(
                "the environment must read the engine's budget, so that a spent budget ends "
                "the episode: Environment(..., budget=engine.budget)"
            )
        self.env = env
        self._runner = runner
        self.policy = as_policy(policy)
        self.engine = engine
        self.run_dir = run
        self.display = display or Display(quiet=True)
        self.overlap = overlap
        self.state = RunState(seed=env.task.seed)
        self.metrics = Metrics()

    def run(self) -> list[HistoryEntry]:
        """Reset (or restore), then iterate until done or the budget runs out."""
        if self._runner is not None:
            return self._run(self._runner)
        with asyncio.Runner() as runner:
            return self._run(runner)

    def _run(self, runner: asyncio.Runner) -> list[HistoryEntry]:
        skills = [s.name for s in self.env.task.skills()]
        obs = self._restore() if self._has_state() else self._reset()
        self.display.accuracy_table(skills, self.metrics.iterations)
        if self.overlap:
            self._overlapped(obs, skills, runner)
            return list(self.metrics.iterations)
        while not self.state.done:
            k = self.env.iteration + 1
            plan, obs = self._plan(k, obs, runner)  # obs: with the tree as the plan grew it
            accepted = self._generate(k, plan, obs, runner)
            difficulty = self._measure(k, plan, accepted)
            self.display.log(f"[bold]iteration {k}[/]: training on {len(accepted)} new examples")
            obs, reward, terminated, truncated, info = self.env.step(accepted)
            if difficulty:
                obs = obs.model_copy(update={"difficulty": difficulty})
            self._finish_iteration(k, obs, info, terminated or truncated)
            self.display.accuracy_table(skills, self.metrics.iterations)
            self.display.log(f"reward (change in mean accuracy): {reward:+.1%}")
            if self.engine.budget.exhausted:
                self.display.log("[yellow]teacher budget spent[/]: stopping")
        return list(self.metrics.iterations)

    # phases

    def _reset(self) -> Observation:
        self.display.log("[bold]reset[/]: training on the seed set and evaluating")
        obs, info = self.env.reset()
        # A test result means the episode is already over (iterations: 0).
        self._finish_iteration(0, obs, info, "test" in info)
        return obs

    def _plan(self, k: int, obs: Observation, runner: asyncio.Runner) -> tuple[Plan, Observation]:
        """The plan of iteration ``k``, and the observation as its explore actions grew the
        skill tree (what the engine builds on)."""
        if self._at(k, "planned", "generated") and self.run_dir is not None:
            # Restored with the tree as this plan grew it: nothing grows twice.
            return self.run_dir.read_model(f"iterations/{k}/plan.json", Plan), self.env.explore([])
        plan = runner.run(self._aplan(obs))
        self._log_plan(k, plan)
        # The teacher may be asked to label examples into new subskills (queries counted).
        obs = self.env.explore(plan.explore)
        if plan.explore:
            nodes = obs.tree.skills if obs.tree is not None else []
            added = [s for n in nodes for s in n.subskills if s.iteration == k]
            names = ", ".join(f"{s.name} ({s.labelled_by})" for s in added) or "none"
            self.display.log(f"[bold]iteration {k}[/]: subskills added: {names}")
        self._save_plan(k, plan, obs.tree)
        return plan, obs

    def _log_plan(self, k: int, plan: Plan) -> None:
        stale = f" (planned from iteration {planned_from(k)})" if self.overlap else ""
        self.display.log(
            f"[bold]iteration {k}[/]: {plan.total} examples asked{stale} — {plan.rationale}"
        )

    def _save_plan(self, k: int, plan: Plan, tree: SkillTree | None = None) -> None:
        if self.run_dir is not None:
            self.run_dir.write_model(f"iterations/{k}/plan.json", plan)
            if tree is not None:
                self.run_dir.write_model(f"iterations/{k}/tree.json", tree)
        self._commit(k, "planned")

    async def _aplan(self, obs: Observation) -> Plan:
        """The policy's plan; a policy that raises, or returns anything but a Plan, stops the
        run in one line naming it (PluginError), before this iteration records anything."""
        policy = self.policy
        where = origin(policy.fn if isinstance(policy, FunctionPolicy) else policy)
        try:
            # aplan, on the engine's event loop: a policy may ask the teacher (llm-planner).
            plan = await policy.aplan(obs)
        except DataloopError:
            raise  # the teacher's trouble, already one line
        except Exception as exc:
            raise PluginError(f"policy {where}: plan() raised {raised(exc)}") from exc
        if not isinstance(plan, Plan):
            raise PluginError(
                f"policy {where}: plan() returned {type(plan).__name__}, not a Plan "
                "(dataloop.schema.Plan: requests and a rationale)"
            )
        return plan

    def _generate(
        self, k: int, plan: Plan, obs: Observation, runner: asyncio.Runner
    ) -> list[Example]:
        """The examples accepted for ``plan``."""
        if self._at(k, "generated") and self.run_dir is not None:
            return self.run_dir.accepted(k)
        with self.display.progress("teacher generating", plan.total) as advance:
            result = runner.run(
                self.engine.generate(plan, obs, self.env.train_set, on_progress=advance)
            )
        self._record_generation(k, result)
        self._commit(k, "generated")
        return result.accepted

    def _measure(self, k: int, plan: Plan, accepted: list[Example]) -> dict[str, SkillDifficulty]:
        """The student's sampled solve rate on the accepted candidates, before it trains on
        them, where the plan asks for it (``edge``); it goes into the next observation. A
        resumed iteration measures again: the student is restored to the same checkpoint and
        its sampling is seeded."""
        difficulty = measure_solve_rates(self.env.task, self.env.student, plan, accepted)
        for skill, d in difficulty.items():
            rate = "—" if d.solve_rate is None else f"{d.solve_rate:.0%}"
            self.display.log(
                f"[bold]iteration {k}[/]: {skill} at level {d.level_name}: {rate} of "
                f"{d.samples} student samples on {d.candidates} candidates solved"
            )
        return difficulty

    def _record_generation(self, k: int, result: GenerationResult) -> None:
        self.display.generation_table(result.report.counts)
        for error in result.errors[:3]:
            self.display.log(f"[yellow]teacher error[/]: {error}")
        for candidate in [c for c in result.candidates if c.error][:3]:
            self.display.log(f"[yellow]check error[/] (candidate rejected): {candidate.error}")
        if warning := copying_warning([c.example for c in result.candidates]):
            self.display.log(f"[yellow]judge[/]: {warning}")
            log.warning(warning, extra={"iteration": k})
        log.info(
            "generation",
            extra={"iteration": k, "accepted": len(result.accepted), "errors": len(result.errors)},
        )
        if self.run_dir is None:
            return
        folder = f"iterations/{k}"
        self.run_dir.write_jsonl(f"{folder}/generated.jsonl", result.candidates)
        self.run_dir.write_model(f"{folder}/generation.json", result.report)
        self.run_dir.save_dataset(k, result.accepted)
        # accepted.jsonl is written last: its presence marks the generate phase's files complete.
        self.run_dir.write_jsonl(f"{folder}/accepted.jsonl", result.accepted)

    def _finish_iteration(
        self,
        k: int,
        obs: Observation,
        info: dict[str, Any],
        done: bool,
        budget: Budget | None = None,
    ) -> None:
        # The environment's history, not the observation's: an open-ended one hides per-skill
        # accuracy from the teacher, not from the record.
        self.metrics.iterations = list(self.env.history)
        if "test" in info:
            self.metrics.test = info["test"].accuracy()
        if self.run_dir is not None:
            self.run_dir.write_model(f"iterations/{k}/observation.json", obs)
            if obs.tree is not None:
                self.run_dir.write_model(f"iterations/{k}/tree.json", obs.tree)
            self.run_dir.write_metrics(self.metrics)
        log.info("iteration done", extra={"iteration": k, "mean_accuracy": obs.mean_accuracy})
        self.state.done = done
        self._commit(k, "trained", budget)

    # overlap

    def _overlapped(self, obs: Observation, skills: list[str], runner: asyncio.Runner) -> None:
        """Iterate with ``overlap``: while the student trains on iteration k (this thread),
        iteration k+1 is planned from ``obs`` (k-1's) and generated (a worker thread).

        Only this thread commits, in the plain loop's order (k trained, then k+1 planned and
        generated): a run killed while both run resumes at k's training, and k+1's data,
        never committed, is made again (from the teacher's response cache)."""
        if self.state.done:
            return
        k = self.env.iteration + 1
        plan, accepted = self._first(k, obs, runner)
        while True:
            budget = self.engine.budget.model_copy()  # as iteration k's plan and data left it
            ahead: InFlight[tuple[Plan, GenerationResult]] | None = None
            try:
                if k < self.env.max_iterations and not budget.exhausted:
                    # Copied now: step() extends the training set while the next data is made.
                    made_on = self.env.train_set + accepted
                    ahead = InFlight(runner, self._ahead(k + 1, obs, budget, made_on))
                    self.display.log(
                        f"[bold]iteration {k + 1}[/]: planning from iteration {obs.iteration} "
                        "and generating while the student trains"
                    )
                difficulty = self._measure(k, plan, accepted)
                self.display.log(
                    f"[bold]iteration {k}[/]: training on {len(accepted)} new examples"
                )
                obs, reward, terminated, truncated, info = self.env.step(
                    accepted, budget=budget, planned_from=planned_from(k)
                )
                if difficulty:
                    obs = obs.model_copy(update={"difficulty": difficulty})
                done = terminated or truncated
                if done and ahead is not None:  # the target is reached: no more data needed
                    ahead.cancel()
                    ahead = None
                    self.display.log(f"[bold]iteration {k + 1}[/]: generation cancelled")
                # What the cancelled generation spent counts; one under way is k+1's.
                self._finish_iteration(k, obs, info, done, None if ahead is None else budget)
                self.display.accuracy_table(skills, self.metrics.iterations)
                self.display.log(f"reward (change in mean accuracy): {reward:+.1%}")
                if ahead is None:
                    if self.engine.budget.exhausted:
                        self.display.log("[yellow]teacher budget spent[/]: stopping")
                    return
                plan, result = ahead.result()
            except BaseException:  # Ctrl-C, a failed step: the worker stops before we leave
                if ahead is not None:
                    ahead.cancel()
                raise
            k += 1
            self._log_plan(k, plan)
            self._save_plan(k, plan)
            self._record_generation(k, result)
            self._commit(k, "generated")
            accepted = result.accepted

    def _first(
        self, k: int, obs: Observation, runner: asyncio.Runner
    ) -> tuple[Plan, list[Example]]:
        """The plan and data of iteration ``k``, made before anything trains: the run's first
        iteration, or the one a resumed run stopped in (from what it committed)."""
        source = planned_from(k)
        if source != self.env.iteration:  # resumed past it: read the observation it planned on
            assert self.run_dir is not None
            obs = self.run_dir.read_model(f"iterations/{source}/observation.json", Observation)
        if self._at(k, "planned", "generated") and self.run_dir is not None:
            plan = self.run_dir.read_model(f"iterations/{k}/plan.json", Plan)
        else:
            budget = self.engine.budget.model_copy()
            plan = runner.run(self._aplan(obs.model_copy(update={"budget": budget})))
            self._log_plan(k, plan)
            self._save_plan(k, plan)
        return plan, self._generate(k, plan, _numbered(obs, k), runner)

    async def _ahead(
        self, k: int, obs: Observation, budget: Budget, train_set: list[Example]
    ) -> tuple[Plan, GenerationResult]:
        """Iteration ``k``'s plan, from ``obs`` with the budget as it stands, and its data: in
        the worker thread, so it reads neither the environment nor the student."""
        plan = await self._aplan(obs.model_copy(update={"budget": budget}))
        result = await self.engine.generate(plan, _numbered(obs, k), train_set)
        return plan, result

    # state

    def _commit(self, k: int, phase: Phase, budget: Budget | None = None) -> None:
        """Record phase ``phase`` of iteration ``k`` as complete, with ``budget`` as spent
        (default: the engine's, as it is now)."""
        self.state.iteration = k
        self.state.phase = phase
        self.state.budget = (self.engine.budget if budget is None else budget).model_copy()
        if self.run_dir is not None:
            self.run_dir.write_state(self.state)

    def _at(self, k: int, *phases: Phase) -> bool:
        return self.state.iteration == k and self.state.phase in phases

    def _has_state(self) -> bool:
        return self.run_dir is not None and self.run_dir.exists("state.json")

    def _restore(self) -> Observation:
        """Bring the environment, student and budget back to the last completed iteration."""
        assert self.run_dir is not None
        self.state = self.run_dir.read_state()
        self.metrics = self.run_dir.read_metrics()
        state = self.state
        trained = state.iteration if state.phase == "trained" else state.iteration - 1
        self.display.log(f"resuming after iteration {trained} ({state.phase} {state.iteration})")
        accepted: list[Example] = []
        for k in range(1, trained + 1):
            accepted += self.run_dir.accepted(k)
        history = [h for h in self.metrics.iterations if h.iteration <= trained]
        obs = self.run_dir.read_model(f"iterations/{trained}/observation.json", Observation)
        planned: SkillTree | None = None  # the next plan grew the tree before the crash
        if obs.tree is not None and state.phase in ("planned", "generated"):
            planned = self.run_dir.read_model(f"iterations/{state.iteration}/tree.json", SkillTree)
        checkpoint = self.run_dir.checkpoint(trained)
        self.env.restore(trained, accepted, history, checkpoint, planned, observation=obs)
        self.engine.budget.restore(self.state.budget)
        return obs


def planned_from(k: int) -> int:
    """With ``overlap``, the iteration whose observation iteration ``k``'s plan reads: k-2's,
    the newest while k-1 trains; the reset's for the first two (the first has nothing to
    overlap with)."""
    return max(k - 2, 0)


def _numbered(obs: Observation, k: int) -> Observation:
    """``obs`` as the engine is given it to make iteration ``k``'s data: it numbers the data
    (provenance, the teacher's sampling seeds) ``obs.iteration + 1``, so a plan made from an
    older observation must not reuse that iteration's seeds."""
    return obs if obs.iteration == k - 1 else obs.model_copy(update={"iteration": k - 1})
