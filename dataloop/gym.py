"""The environment, Gymnasium-shaped: a task, a student, and the growing training set.

    obs, info = env.reset()
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(examples)

``reset`` trains on the seed set (unless disabled) and evaluates; ``step`` adds the teacher's
examples (the action) to the training set, trains, evaluates. The reward is the change in mean
validation accuracy. An episode *terminates* when the teacher's budget is spent (it can make no
more data) or the target accuracy is reached, and is *truncated* at the iteration limit.

How much the observation shows is the environment's ``structure`` (DataEnvGym's three teacher
environments): ``open-ended`` (mean accuracy and failed feedback probes), ``skill-list``
(per-skill accuracy, the default) or ``skill-tree`` (per-skill accuracy and a tree of
subskills, :mod:`dataloop.tree`, that :meth:`Environment.explore` grows). Every observation
after a step also says how well the student does on the data it was just given
(``data_accuracy``).

``info`` holds ``eval`` (the validation :class:`~dataloop.schema.EvalResult`), ``checkpoint``
(the student's, or None when reset did not train), ``added`` (new examples trained on),
``queries`` (teacher queries spent since the previous observation: planning, generation, and
for reset skill discovery) and, once the episode is over, ``test`` (the test EvalResult).
"""

from __future__ import annotations

import errno
import logging
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from dataloop.deprecation import deprecated
from dataloop.environments import Split, TaskEnvironment
from dataloop.errors import DiskFull
from dataloop.schema import (
    Budget,
    EvalResult,
    Example,
    Explore,
    Failure,
    HistoryEntry,
    Observation,
    SkillResult,
    SkillTree,
    Structure,
    Subskill,
)
from dataloop.students.base import LossStudent, Student, TrainRecord
from dataloop.tree import Labeller, grow_tree, new_tree, score_tree

log = logging.getLogger(__name__)

DATA_FEEDBACK_SAMPLE = 256
"""Most of a step's new examples the student is scored on for ``data_accuracy``."""


def feedback_split(
    task: TaskEnvironment, per_skill: int, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """(seed set, feedback split) with ``per_skill`` feedback examples per skill.

    A task that samples its own problems gives fresh ones (none in any split, so the seed set
    stays whole); any other gives up part of its train split, at most half of each skill's.
    """
    train = task.split("train")
    if per_skill <= 0:
        return train, []
    rng = random.Random(f"{seed}/feedback")
    held = {e.id for split in ("train", "validation", "test") for e in task.split(split)}
    feedback: list[Example] = []
    carved: set[str] = set()
    for skill in task.skills():
        fresh: list[Example] = []
        for _ in range(100):
            if len(fresh) >= per_skill:
                break
            drawn = task.sample(skill.name, per_skill - len(fresh), rng)
            if drawn is None:
                break
            for example in drawn:
                if example.id not in held:
                    held.add(example.id)
                    fresh.append(example)
        if fresh:
            feedback += fresh[:per_skill]
            continue
        of_skill = [e for e in train if e.skill == skill.name]
        taken = rng.sample(of_skill, min(per_skill, len(of_skill) // 2))
        carved.update(e.id for e in taken)
        feedback += taken
    return [e for e in train if e.id not in carved], feedback


class Environment:
    """Trains and evaluates a student on a task; observations say where it is weak.

    ``budget`` is the teacher's (``engine.budget``), read as it is spent: each observation
    shows what is left, each step's ``info`` what it cost, and a spent budget terminates the
    episode. Without one the teacher is unlimited.

    ``seed_set`` is what the student starts from (default: the task's train split) and
    ``feedback`` the probes it is scored on but never trained on (see :func:`feedback_split`);
    the failed ones go into each observation (a random ``probes_shown`` of them, if set).
    ``structure`` decides what the observation shows; in ``skill-tree`` the tree starts with
    every skill and no subskill, the task's
    :meth:`~dataloop.environments.TaskEnvironment.subskills` as candidates, and ``labeller``
    (the teacher) places examples in subskills the task cannot label.

    With ``losses`` each observation also carries the student's SFT loss on every seed example
    (``Observation.losses``, from :meth:`~dataloop.students.base.LossStudent.losses`): one
    forward pass over the seed set, no generation, after the student's accuracy is measured.
    Off by default, so only a policy that reads it (``high-loss``) pays for it.
    """

    def __init__(
        self,
        task: TaskEnvironment,
        student: Student,
        *,
        checkpoints_dir: Path,
        max_iterations: int = 3,
        target_accuracy: float | None = None,
        train_on_seed: bool = True,
        max_failures: int | None = None,
        budget: Budget | None = None,
        structure: Structure = "skill-list",
        seed_set: list[Example] | None = None,
        feedback: list[Example] | None = None,
        probes_shown: int | None = None,
        labeller: Labeller | None = None,
        data_feedback: bool = True,
        losses: bool = False,
    ) -> None:
        if losses and not isinstance(student, LossStudent):
            raise TypeError(
                f"student {type(student).__name__} has no losses(records) method, which the "
                "policy needs (it reads the student's loss): add one or choose another policy"
            )
        self.task = task
        self.student = student
        self.checkpoints_dir = checkpoints_dir
        self.max_iterations = max_iterations
        self.target_accuracy = target_accuracy
        self.train_on_seed = train_on_seed
        self.max_failures = max_failures
        self.budget = budget if budget is not None else Budget()
        self.seed_set = task.split("train") if seed_set is None else list(seed_set)
        self.feedback = list(feedback or [])
        self.probes_shown = probes_shown
        self.structure: Structure = structure
        self.labeller = labeller
        self.data_feedback = data_feedback
        self.losses = losses
        self.tree: SkillTree | None = new_tree(task) if structure == "skill-tree" else None
        """The skill tree (``skill-tree`` only), as :meth:`explore` grew it; observations show
        a copy."""
        self._obs: Observation | None = None  # the latest observation, what explore builds on
        self.train_set: list[Example] = []
        self.iteration = 0
        self.history: list[HistoryEntry] = []
        """One entry per observation so far (the reset's first)."""

    def reset(self) -> tuple[Observation, dict[str, Any]]:
        """Start over from the seed set: train on it (if enabled), evaluate, observe."""
        self.iteration = 0
        self.train_set = list(self.seed_set)
        self.history = []
        if self.structure == "skill-tree":
            self.tree = new_tree(self.task)
        checkpoint = self._train() if self.train_on_seed else None
        obs, info = self._observe(accepted={})
        info["checkpoint"] = checkpoint
        if self._terminated(obs) or self._truncated():
            info["test"] = self.evaluate("test")[0]
        return obs, info

    def step(
        self,
        examples: list[Example],
        *,
        budget: Budget | None = None,
        planned_from: int | None = None,
    ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Add ``examples`` to the training set, train, evaluate.

        Returns (observation, reward, terminated, truncated, info); see the module docstring.
        ``budget`` is the teacher's budget as it stood when ``examples`` were made and
        ``planned_from`` the iteration whose observation their plan read (recorded in the
        history); default: the budget as it is now and the previous iteration. A loop whose
        teacher makes the next iteration's data while the student trains passes both, so that
        what this step observes does not depend on how far that has got.
        """
        spent = self.budget if budget is None else budget
        before = self.history[-1].mean_accuracy if self.history else 0.0
        self.iteration += 1
        known = {e.id for e in self.train_set}
        added = [e for e in examples if e.id not in known]
        self.train_set.extend(added)
        checkpoint = self._train()
        obs, info = self._observe(
            accepted=dict(Counter(e.skill for e in added)),
            data_accuracy=self._on_data(added),
            budget=spent,
            planned_from=self.iteration - 1 if planned_from is None else planned_from,
        )
        info.update(checkpoint=checkpoint, added=len(added))
        terminated, truncated = self._terminated(obs, spent), self._truncated()
        if terminated or truncated:
            info["test"] = self.evaluate("test")[0]
        return obs, obs.mean_accuracy - before, terminated, truncated, info

    def restore(
        self,
        iteration: int,
        accepted: list[Example],
        history: list[HistoryEntry],
        checkpoint: Path,
        tree: SkillTree | None = None,
        observation: Observation | None = None,
    ) -> None:
        """Return to the end of ``iteration``: its training set, history, ``observation``
        (what :meth:`explore` builds on), skill tree and student checkpoint.

        The tree is ``tree`` when given (the next plan's, already grown), else the
        observation's. Without a checkpoint (reset did not train) the student stays as built.
        """
        self.iteration = iteration
        self.train_set = list(self.seed_set) + list(accepted)
        self.history = list(history)
        self._obs = observation
        if tree is None and observation is not None:
            tree = observation.tree
        if tree is not None:
            self.tree = tree.model_copy(deep=True)
        if checkpoint.is_dir():
            self.student.load(checkpoint)

    def records(self, examples: list[Example]) -> list[TrainRecord]:
        """Examples as the student's prompt/completion pairs."""
        return [
            TrainRecord(prompt=self.task.prompt(e.question), completion=self.task.target(e))
            for e in examples
        ]

    def evaluate(self, split: Split) -> tuple[EvalResult, list[Failure]]:
        """Score the student on a split; also return the examples it got wrong."""
        result, failures, _ = self._grade(self.task.split(split), split)
        return result, failures

    def _grade(
        self, examples: list[Example], split: str
    ) -> tuple[EvalResult, list[Failure], list[bool]]:
        """The student scored on ``examples``: per-skill result, failures, and each verdict."""
        predictions = self.student.predict([self.task.prompt(e.question) for e in examples])
        correct: Counter[str] = Counter()
        total: Counter[str] = Counter()
        failures: list[Failure] = []
        scores = self.task.score_many(examples, predictions)
        for example, prediction, right in zip(examples, predictions, scores, strict=True):
            total[example.skill] += 1
            if right:
                correct[example.skill] += 1
            else:
                failures.append(Failure(example=example, prediction=prediction))
        skills = [s.name for s in self.task.skills()]
        result = EvalResult(
            split=split,
            skills=[SkillResult(skill=s, correct=correct[s], total=total[s]) for s in skills],
        )
        return result, failures, list(scores)

    def _sample_probes(self, missed: list[Failure]) -> list[Failure]:
        """All failed probes, or ``probes_shown`` of them drawn at random (seeded by the
        iteration), in split order: each skill's share of the sample follows its failures."""
        if self.probes_shown is None or len(missed) <= self.probes_shown:
            return missed
        rng = random.Random(f"{self.task.seed}/probes/{self.iteration}")
        return [missed[i] for i in sorted(rng.sample(range(len(missed)), self.probes_shown))]

    def _on_data(self, added: list[Example]) -> dict[str, float]:
        """Per skill, the student's accuracy on (a sample of) the examples just trained on;
        each subskill of the tree gets its own (``Subskill.data_accuracy``, None without data)."""
        if self.tree is not None:
            for node in self.tree.skills:
                for sub in node.subskills:
                    sub.data_accuracy = None
        if not self.data_feedback or not added:
            return {}
        sample = added
        if len(added) > DATA_FEEDBACK_SAMPLE:
            rng = random.Random(f"{self.task.seed}/data/{self.iteration}")
            sample = rng.sample(added, DATA_FEEDBACK_SAMPLE)
        result, _, verdicts = self._grade(sample, "data")
        if self.tree is not None:
            by_subskill: dict[tuple[str, str], list[bool]] = {}
            for example, right in zip(sample, verdicts, strict=True):
                if example.provenance.subskill:
                    key = (example.skill, example.provenance.subskill)
                    by_subskill.setdefault(key, []).append(right)
            for node in self.tree.skills:
                for sub in node.subskills:
                    if got := by_subskill.get((node.name, sub.name)):
                        sub.data_accuracy = sum(got) / len(got)
        return {s.skill: s.accuracy for s in result.skills if s.total}

    # the skill tree

    def explore(self, explore: list[Explore]) -> Observation:
        """Grow the skill tree by the plan's ``explore`` actions (:func:`dataloop.tree.grow_tree`:
        the subskills are labelled by the task, or by the ``labeller``, the teacher); return the
        latest observation showing the tree as grown, which the next step's data is made for.

        Outside ``skill-tree`` the actions are ignored (and logged) and the latest observation
        is returned as it was. Call :meth:`reset` first.
        """
        if self._obs is None:
            raise RuntimeError("explore() needs an observation: call reset() first")
        self._grow(explore)
        if self.tree is None:
            return self._obs
        return self._obs.model_copy(update={"tree": self.tree.model_copy(deep=True)})

    def grow(self, explore: list[Explore]) -> list[Subskill]:
        """Deprecated: call :meth:`explore`, which returns the observation with the grown tree
        (the subskills added are those of ``iteration`` ``env.iteration + 1``); removed in
        0.3.0."""
        deprecated(
            "Environment.grow is deprecated; call Environment.explore, which returns the "
            "observation with the grown tree"
        )
        return self._grow(explore)

    def new_tree(self) -> SkillTree:
        """Every skill of the task, no subskills yet (:func:`dataloop.tree.new_tree`)."""
        return new_tree(self.task)

    def _grow(self, explore: list[Explore]) -> list[Subskill]:
        if self.tree is None:
            if explore:
                log.warning("explore ignored: env.structure is %s, not skill-tree", self.structure)
            return []
        return grow_tree(
            self.tree,
            explore,
            iteration=self.iteration + 1,
            examples=self.task.split("validation") + self.seed_set,
            labeller=self.labeller,
        )

    def _train(self) -> Path:
        folder = self.checkpoints_dir / f"iteration-{self.iteration}"
        try:
            return self.student.train(self.records(self.train_set), folder)
        except Exception as exc:
            if not _disk_full(exc, folder):
                raise
            raise DiskFull(
                f"no space left on the disk of {folder} while saving the student's checkpoint: "
                "free some space there"
            ) from exc

    def _terminated(self, obs: Observation, budget: Budget | None = None) -> bool:
        reached = self.target_accuracy is not None and obs.mean_accuracy >= self.target_accuracy
        return (self.budget if budget is None else budget).exhausted or reached

    def _truncated(self) -> bool:
        return self.iteration >= self.max_iterations

    def _observe(
        self,
        accepted: dict[str, int],
        data_accuracy: dict[str, float] | None = None,
        budget: Budget | None = None,
        planned_from: int | None = None,
    ) -> tuple[Observation, dict[str, Any]]:
        budget = self.budget if budget is None else budget
        validation = self.task.split("validation")
        result, _, scores = self._grade(validation, "validation")
        _, failures, _ = self._grade(self.seed_set, "train")  # not the probes held out of it
        probes: list[Failure] = []
        if self.feedback:
            _, missed, _ = self._grade(self.feedback, "feedback")
            probes = self._sample_probes(missed)
        if self.tree is not None:
            score_tree(self.tree, self.task, validation, scores, self.train_set)
        queries = budget.queries - sum(h.queries for h in self.history)
        self.history.append(
            HistoryEntry(
                iteration=self.iteration,
                accuracy=result.accuracy(),
                mean_accuracy=result.mean_accuracy,
                accepted=accepted,
                queries=queries,
                planned_from=planned_from,
            )
        )
        open_ended = self.structure == "open-ended"
        history = [h.model_copy(update={"accuracy": {}}) if open_ended else h for h in self.history]
        obs = Observation(
            iteration=self.iteration,
            skills=self.task.skills(),
            accuracy={} if open_ended else result.accuracy(),
            mean_accuracy=result.mean_accuracy,
            failures=failures[: self.max_failures],  # None keeps all
            seed_counts=dict(Counter(e.skill for e in self.seed_set)),
            train_size=len(self.train_set),
            budget=budget.model_copy(),
            history=history,
            structure=self.structure,
            probes=probes,
            tree=None if self.tree is None else self.tree.model_copy(deep=True),
            data_accuracy=data_accuracy or {},
            losses=self._losses(),
            levels={s.name: lv for s in self.task.skills() if (lv := self.task.levels(s.name))},
        )
        self._obs = obs
        return obs, {"eval": result, "queries": queries}

    def _losses(self) -> dict[str, dict[str, float]]:
        """Per skill, seed example id -> the student's loss on it, when ``losses`` is on."""
        if not self.losses:
            return {}
        assert isinstance(self.student, LossStudent)
        values = self.student.losses(self.records(self.seed_set))
        out: dict[str, dict[str, float]] = {}
        for example, loss in zip(self.seed_set, values, strict=True):
            out.setdefault(example.skill, {})[example.id] = loss
        return out


def _disk_full(exc: BaseException | None, folder: Path) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or quota: an ``OSError``, one that
    safetensors wrapped into its own error's text, or (torch's writer says only "file write
    failed") any error with no space left where ``folder`` is."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(s in str(exc) for s in ("No space left on device", "Disk quota exceeded")):
            return True
        exc = exc.__cause__ or exc.__context__
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing is not None and shutil.disk_usage(existing).free < 1 << 20
