"""The engine: carries out a Plan with the teacher LLM and keeps only trustworthy examples.

In each round, for every request still short, it sends as many prompts at once as the strategy
expects to need (about ``missing / per_query``), parses every completion, and passes each
candidate through, in order: the strategy's check (the task's ``verify``, and for some
strategies an answer check), dedup (batch and training set), optionally near-duplicates
(MinHash LSH against the training set and the batch's accepted questions) and novelty (ROUGE-L
against the skill's seeds and this iteration's accepted questions), decontamination (validation
and test, and the user's ``benchmarks``), length limits, and optionally an LLM judge (asked last,
only for a candidate the request still needs). Candidates are judged in plan order, so the result
does not depend on which reply came first. It repeats for up to ``max_rounds`` rounds while a
request is short. Every candidate is kept with its verdict.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from dataloop.config import EngineConfig
from dataloop.deprecation import deprecated
from dataloop.engine.benchmarks import BenchmarkIndex
from dataloop.engine.filters import (
    Decontaminator,
    NearDuplicates,
    Novelty,
    Seen,
    within_length,
)
from dataloop.engine.jobs import Checked, Job, Settled, parent_uses
from dataloop.engine.judge import Judge
from dataloop.engine.legacy import SETTINGS, from_settings
from dataloop.engine.results import Candidate, GenerationResult, ProgressFn, Verdict
from dataloop.engine.strategies import resolve_solver, resolve_strategy
from dataloop.engine.strategy import Level, Prompt, RequestContext, Strategy
from dataloop.environments import TaskEnvironment, belongs
from dataloop.errors import BudgetExhausted, PluginError, TeacherError, TeacherUnavailable
from dataloop.llm.base import Completion, Sampling
from dataloop.llm.teacher import Teacher
from dataloop.plugins import origin, raised
from dataloop.schema import (
    Budget,
    Example,
    FilterCounts,
    GenerationRequest,
    Observation,
    Plan,
    SkillInfo,
)

log = logging.getLogger(__name__)


class Engine:
    """Turns a :class:`~dataloop.schema.Plan` into verified, deduplicated examples.

    ``config`` is the run's ``engine`` section (:class:`~dataloop.config.EngineConfig`: the
    strategy override, shots, per-query yield, rounds, votes and filters; default: its
    defaults); ``sampling`` is every generation request's (the ``teacher`` section's
    ``temperature`` and ``max_tokens``; each request adds its stop sequences and seed).
    ``benchmarks`` and ``judge`` are the filters built from the section's ``benchmarks`` and
    ``judge``. ``seeds`` are the examples prompts are built on (default: the task's train
    split; a run with a feedback split passes what is left of it); ``held_out`` are examples no
    generated one may copy besides validation and test (the feedback probes). With the
    section's ``votes`` each verified candidate whose answer is the teacher's is put to that
    many fresh answers, asked of its ``solver`` strategy (any that sets
    :attr:`~dataloop.engine.strategy.Strategy.solves`)::

        engine = Engine(teacher, task, EngineConfig(votes=3), sampling=Sampling(temperature=0.7))

    The settings once given one by one (``Engine(teacher, task, shots=4, temperature=0.7)``)
    still work, with a DeprecationWarning.
    """

    def __init__(
        self,
        teacher: Teacher,
        task: TaskEnvironment,
        config: EngineConfig | None = None,
        *,
        sampling: Sampling | None = None,
        benchmarks: BenchmarkIndex | None = None,
        judge: Judge | None = None,
        seeds: list[Example] | None = None,
        held_out: list[Example] | None = None,
        **settings: Any,
    ) -> None:
        if settings:
            config, sampling = from_settings(config, sampling, settings)
        self.teacher = teacher
        self.task = task
        self.config = config or EngineConfig()
        self.sampling = sampling or Sampling()
        self._solver = resolve_solver(self.config.solver)(teacher.templates, teacher.kind)
        self.benchmarks = benchmarks
        self.judge = judge
        self._skills = {s.name: s for s in task.skills()}
        self._seeds = task.split("train") if seeds is None else list(seeds)
        self._decontaminator = Decontaminator(
            task.split("validation") + task.split("test") + list(held_out or [])
        )
        if self.config.strategy is not None:
            resolve_strategy(self.config.strategy)  # fail at construction on an unknown name
        if self.config.novelty is not None:
            Novelty(self.config.novelty)  # a bad threshold fails here, not mid-run
        self._raised: dict[str, str] = {}  # candidate id -> what checking it raised
        if self.config.near_duplicates is not None:
            NearDuplicates(self.config.near_duplicates)

    def __getattr__(self, name: str) -> Any:
        # The settings were attributes of their own before the engine took a config object.
        if name in SETTINGS:
            where = SETTINGS[name]
            deprecated(f"Engine.{name} is deprecated: read Engine.{where}")
            part, field_name = where.split(".")
            return getattr(self.__dict__[part], field_name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def budget(self) -> Budget:
        """The teacher's budget: limits and what has been spent."""
        return self.teacher.budget

    def strategy(self, name: str) -> Strategy:
        """An instance of the named strategy, set up for this engine's teacher kind."""
        return resolve_strategy(name)(self.teacher.templates, self.teacher.kind)

    async def generate(
        self,
        plan: Plan,
        obs: Observation,
        train_set: list[Example],
        on_progress: ProgressFn | None = None,
    ) -> GenerationResult:
        """Carry out every request of ``plan``.

        A request the teacher fails is recorded in ``errors`` and the others carry on; but a
        teacher that cannot be reached, or that answered none of the requests, raises
        :class:`~dataloop.errors.TeacherUnavailable`: there is nothing to train on. A candidate
        whose check raises (the task's ``verify``, a strategy's answer check) is rejected with
        the verdict ``error``; when most candidates end so, the fault is the plug-in's, not the
        teacher's: :class:`~dataloop.errors.PluginError`, naming it.

        Each round sends the prompts of every request still short at once; each reply is read
        and checked as it arrives, and the verdicts (dedup, surplus, accepted) are taken in plan
        order (request, then prompt): the same replies always give the same accepted examples
        in the same order, however the requests raced.
        """
        result = GenerationResult()
        self._raised.clear()
        seen = Seen(train_set)
        novel = None if self.config.novelty is None else Novelty(self.config.novelty, self._seeds)
        near = None
        if self.config.near_duplicates is not None:
            near = NearDuplicates(self.config.near_duplicates, train_set)
        uses = parent_uses(train_set)
        for request in plan.requests:
            if request.skill not in self._skills:
                known = ", ".join(self._skills)
                raise TeacherError(f"plan asks for unknown skill '{request.skill}'; known: {known}")
        jobs = [
            self._job(request, obs, result, uses) for request in plan.requests if request.count > 0
        ]
        slots = asyncio.Semaphore(max(1, self.task.check_workers))
        answered = 0
        for _ in range(self.config.max_rounds):
            batch = [item for job in jobs if not result.budget_exhausted for item in job.next()]
            if not batch:
                break
            # Every prompt is in flight at once and each reply is read and checked as it comes;
            # the verdicts are then taken in batch order, each as soon as those before it are.
            pending = [
                asyncio.ensure_future(self._settle(job, prompt, index, slots))
                for job, prompt, index in batch
            ]
            try:
                for (job, _, _), task in zip(batch, pending, strict=True):
                    outcome = await task
                    if isinstance(outcome, BudgetExhausted):
                        result.budget_exhausted = True
                    elif isinstance(outcome, TeacherError):
                        result.errors.append(str(outcome))
                    else:
                        answered += 1
                        result.report.queries += outcome.queries
                        result.budget_exhausted |= outcome.exhausted
                        result.errors += outcome.errors
                        await self._take(
                            job, outcome.checked, seen, novel, near, result, on_progress
                        )
            finally:
                for task in pending:
                    task.cancel()
        if result.errors and not answered:
            raise TeacherUnavailable(
                f"the teacher answered none of {len(result.errors)} requests; first error: "
                f"{result.errors[0]}"
            )
        failed = [c for c in result.candidates if c.verdict == "error"]
        if 2 * len(failed) > len(result.candidates):
            raise PluginError(
                f"environment {origin(self.task)}: checking candidates raised on {len(failed)} "
                f"of {len(result.candidates)}; first: {failed[0].error}"
            )
        return result

    async def _settle(
        self, job: Job, prompt: Prompt, index: int, slots: asyncio.Semaphore
    ) -> Settled | BudgetExhausted | TeacherError:
        """One prompt sent, its reply read and every candidate checked (``check_workers`` at a
        time across the round, in threads when more than one); teacher trouble is returned."""
        try:
            reply = await self._ask(prompt, job.ctx, index)
        except (BudgetExhausted, TeacherError) as exc:
            return exc
        candidates = self._read(job, prompt, reply)

        def run_check(candidate: Example) -> tuple[Checked, Example]:
            try:
                return job.strategy.check(candidate, job.ctx, prompt)
            except Exception as exc:  # the plug-in's fault, not the candidate's: counted
                self._raised[candidate.id] = raised(exc)
                return "error", candidate

        async def check(candidate: Example) -> tuple[Checked, Example]:
            async with slots:
                if self.task.check_workers <= 1:
                    return run_check(candidate)
                return await asyncio.to_thread(run_check, candidate)

        checked = await asyncio.gather(*(check(c) for c in candidates))
        settled = Settled(queries=0 if reply.cached else 1, checked=list(checked))
        if self.config.votes and job.strategy.voted:
            settled.checked = list(
                await asyncio.gather(*(self._vote(job, c, e, settled) for c, e in checked))
            )
        return settled

    async def _vote(
        self, job: Job, check: Checked, example: Example, settled: Settled
    ) -> tuple[Checked, Example]:
        """Self-consistency: ``votes`` fresh teacher answers to the candidate's question; it
        stays verified only if more than half of them agree with its answer (``score``)."""
        if check != "verified":
            return check, example
        prompts = [self._solver.solve(job.ctx, example, i) for i in range(self.config.votes)]
        replies = await asyncio.gather(
            *(self._ask(p, job.ctx, f"vote/{example.id}/{i}") for i, p in enumerate(prompts)),
            return_exceptions=True,
        )
        agree = 0
        for prompt, reply in zip(prompts, replies, strict=True):
            if isinstance(reply, BudgetExhausted):
                settled.exhausted = True
            elif isinstance(reply, TeacherError):
                settled.errors.append(str(reply))
            elif isinstance(reply, BaseException):
                raise reply
            else:
                settled.queries += 0 if reply.cached else 1
                answer = self._solver.answer(reply.texts[0], prompt)
                agree += answer is not None and self.task.score(example, answer)
        return ("verified" if 2 * agree > self.config.votes else "wrong-answer"), example

    async def _take(
        self,
        job: Job,
        checked: list[tuple[Checked, Example]],
        seen: Seen,
        novel: Novelty | None,
        near: NearDuplicates | None,
        result: GenerationResult,
        on_progress: ProgressFn | None,
    ) -> None:
        """The final verdict of every checked candidate of one reply, in order."""
        for check, example in checked:
            verdict, example = await self._judge(job, check, example, seen, novel, near, result)
            error = self._raised.get(example.id) if verdict == "error" else None
            result.candidates.append(Candidate(example=example, verdict=verdict, error=error))
            if verdict == "accepted":
                result.accepted.append(example)
                if on_progress:
                    on_progress(1)

    def _job(
        self,
        request: GenerationRequest,
        obs: Observation,
        result: GenerationResult,
        uses: dict[str, Counter[str]],
    ) -> Job:
        strategy = self.strategy(self.config.strategy or request.strategy)
        counts = FilterCounts(skill=request.skill, strategy=strategy.name, requested=request.count)
        result.report.counts.append(counts)
        skill, seeds = self._target(request, obs)
        level = self._level(request)
        if level is not None:  # the prompts show seeds at the level, where the skill has any
            seeds = [e for e in seeds if self.task.level_of(e) == level.index] or seeds
        ctx = RequestContext(
            task=self.task,
            request=request,
            skill=skill,
            seeds=seeds,
            failures=[f for f in obs.failures if f.example.skill == request.skill],
            iteration=obs.iteration + 1,
            teacher=self.teacher.model,
            shots=self.config.shots,
            used=uses.get(strategy.name, Counter()),
            show_student_answer=self.config.show_student_answer,
            level=level,
        )
        return Job(strategy, ctx, counts, self.config.per_query)

    def _level(self, request: GenerationRequest) -> Level | None:
        """The difficulty level a request asks for, as the task declares it; None for none."""
        if request.level is None:
            return None
        levels = self.task.levels(request.skill)
        if request.level >= len(levels):
            raise TeacherError(
                f"plan asks for level {request.level} of '{request.skill}', which has "
                f"{len(levels)} levels (the task's levels(), counted from 0)"
            )
        chosen = levels[request.level]
        return Level(request.level, len(levels), chosen.name, chosen.description)

    def _target(
        self, request: GenerationRequest, obs: Observation
    ) -> tuple[SkillInfo, list[Example]]:
        """The skill as the prompts describe it and the seeds they build on: for a request
        naming a subskill of the tree, the subskill's description joins the skill's, and the
        seeds that belong to it (if any do) are used alone."""
        skill = self._skills[request.skill]
        seeds = [e for e in self._seeds if e.skill == request.skill]
        sub = obs.tree.subskill(request.skill, request.subskill) if obs.tree else None
        if request.subskill and sub is None:
            raise TeacherError(
                f"plan asks for subskill '{request.subskill}' of '{request.skill}', which the "
                "skill tree does not have"
            )
        if sub is None:
            return skill, seeds
        described = SkillInfo(
            name=skill.name, description=f"{skill.description}; only: {sub.description}"
        )
        inside = [e for e in seeds if belongs(self.task, sub, e)]
        return described, inside or seeds

    def _read(self, job: Job, prompt: Prompt, reply: Completion) -> list[Example]:
        """The candidates in every text of one reply."""
        candidates: list[Example] = []
        for i, text in enumerate(reply.texts):
            job.counts.generated += 1
            # A text stopped by the token limit may end mid-item: the strategy drops that item.
            cut = i < len(reply.finish_reasons) and reply.finish_reasons[i] == "length"
            parsed = job.strategy.parse(text, job.ctx, prompt, cut=cut)
            job.counts.dropped += parsed.dropped
            job.counts.parsed += len(parsed.items)
            candidates += parsed.items
        return candidates

    async def _ask(self, prompt: Prompt, ctx: RequestContext, index: int | str) -> Completion:
        seed = self.teacher.sampling_seed(
            ctx.iteration, ctx.skill.name, ctx.request.strategy, index
        )
        sampling = self.sampling.model_copy(update={"stop": prompt.stop, "seed": seed})
        return await self.teacher.ask(prompt.text, sampling)

    async def _judge(
        self,
        job: Job,
        check: Checked,
        example: Example,
        seen: Seen,
        novel: Novelty | None,
        near: NearDuplicates | None,
        result: GenerationResult,
    ) -> tuple[Verdict, Example]:
        counts = job.counts
        if check == "error":
            counts.errors += 1
        if check != "verified":
            return check, example
        counts.verified += 1
        if seen.contains(example, with_answer=job.strategy.dedup_on_answer):
            return "duplicate", example
        seen.add(example)
        # Answer augmentation keeps the seed's question: only a new question can be novel.
        novelty = None if job.strategy.dedup_on_answer else novel
        near = None if job.strategy.dedup_on_answer else near
        if near is not None and near.similar(example):
            counts.near_duplicates += 1
            return "near-duplicate", example
        if novelty is not None and novelty.similar(example):
            return "similar", example
        if self._decontaminator.contaminated(example):
            return "contaminated", example
        if self.benchmarks is not None and (names := self.benchmarks.hits(example)):
            for name in names:
                counts.benchmarks[name] = counts.benchmarks.get(name, 0) + 1
            return "benchmark", example
        if not within_length(example, self.config.max_chars):
            return "too-long", example
        counts.deduplicated += 1
        if counts.accepted >= job.ctx.request.count:
            return "surplus", example
        if self.judge is not None:
            # Last and in plan order: only a candidate that would be accepted costs a query.
            judged = await self.judge.judge(example, job.ctx.skill)
            result.report.queries += judged.queries
            result.budget_exhausted |= judged.exhausted
            result.errors += judged.errors
            example = judged.example
            if not self.judge.keeps(example):
                counts.judged_out += 1
                return "low-score", example
        counts.accepted += 1
        if novelty is not None:
            novelty.add(example)
        if near is not None:
            near.add(example)
        return "accepted", example
