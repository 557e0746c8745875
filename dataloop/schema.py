"""Data that crosses a boundary: examples, observations, plans.

Every model here round-trips through JSON (``model_dump_json`` / ``model_validate_json``)
and carries ``SCHEMA_VERSION`` where it is written to disk on its own.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

SCHEMA_VERSION = 1


class _Model(BaseModel):
    # Unknown keys are a user's typo more often than a feature: refuse them.
    model_config = ConfigDict(extra="forbid")


class Provenance(_Model):
    """Where an example came from."""

    source: Literal["seed", "generated"] = "seed"
    """``seed`` for the task's own data, ``generated`` for teacher output."""
    strategy: str | None = None
    """Generation strategy that produced it (``new-question`` …); None for seed data."""
    parent_ids: list[str] = Field(default_factory=list)
    """Ids of the examples shown to the teacher as the basis for this one."""
    teacher: str | None = None
    """Model name of the teacher LLM."""
    template: str | None = None
    """Prompt template file the teacher was given."""
    iteration: int | None = None
    """Loop iteration in which it was generated (0 = reset)."""
    relabelled: bool = False
    """True when the environment recomputed the teacher's answer."""
    subskill: str | None = None
    """The subskill of the skill tree the request that made it targeted (``skill-tree``)."""
    judge_score: int | None = None
    """The LLM judge's score against its rubric, 1 to 5 (``engine.judge``); None when not
    judged, or when the judge's reply could not be read."""
    judge_reason: str | None = None
    """The judge's reason for its score (or why there is none)."""
    feedback: str | None = None
    """What the teacher said the student got wrong in the attempt it corrected (``refine``);
    kept for the reader, not trained on."""
    level: int | None = None
    """The difficulty level (index into the task's ``levels`` of the skill, 0 the easiest)
    the request that made it asked for (``edge``); None when it asked for none."""


def example_id(skill: str, question: str) -> str:
    """A stable id: the same skill and question always give the same id."""
    digest = hashlib.sha1(f"{skill}\x00{question}".encode()).hexdigest()
    return f"{skill}-{digest[:12]}"


class Example(_Model):
    """One question with its reference answer and the skill it exercises."""

    id: str
    skill: str
    question: str
    answer: str
    provenance: Provenance = Field(default_factory=Provenance)

    @classmethod
    def make(cls, skill: str, question: str, answer: str, **provenance: object) -> Example:
        """Build an example whose id is derived from its skill and question."""
        return cls(
            id=example_id(skill, question),
            skill=skill,
            question=question,
            answer=answer,
            provenance=Provenance.model_validate(provenance),
        )

    def relabel(
        self,
        *,
        skill: str | None = None,
        question: str | None = None,
        answer: str | None = None,
    ) -> Example:
        """This example with a new skill, question or answer, its provenance kept (the id
        follows the skill and question). A changed answer is recorded as ``relabelled``: what
        an environment's ``verify`` returns when it recomputes or normalises the answer."""
        answer = self.answer if answer is None else answer
        changed = answer.strip() != self.answer.strip()
        return Example(
            id=example_id(skill or self.skill, question or self.question),
            skill=skill or self.skill,
            question=question or self.question,
            answer=answer,
            provenance=self.provenance.model_copy(
                update={"relabelled": self.provenance.relabelled or changed}
            ),
        )


class SkillResult(_Model):
    """Accuracy of the student on one skill of one split."""

    skill: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        """Fraction correct; 0 when the skill has no examples."""
        return self.correct / self.total if self.total else 0.0


class EvalResult(_Model):
    """Per-skill results of one evaluation."""

    split: str
    skills: list[SkillResult]

    @property
    def mean_accuracy(self) -> float:
        """Unweighted mean over skills, so a large skill cannot hide a weak one."""
        if not self.skills:
            return 0.0
        return sum(s.accuracy for s in self.skills) / len(self.skills)

    def accuracy(self) -> dict[str, float]:
        """Accuracy by skill name."""
        return {s.skill: s.accuracy for s in self.skills}


class Failure(_Model):
    """A train example the student got wrong, with what it said."""

    example: Example
    prediction: str


class HistoryEntry(_Model):
    """What happened in one past iteration, as a policy sees it."""

    iteration: int
    accuracy: dict[str, float]
    mean_accuracy: float
    accepted: dict[str, int] = Field(default_factory=dict)
    """Accepted examples per skill in that iteration."""
    queries: int = 0
    """Teacher queries spent in that iteration."""
    planned_from: int | None = None
    """The iteration whose observation that iteration's plan was made from: the one before
    it, or (with the loop's ``overlap``) the one before that, where there is one; None for
    the reset, and in a run recorded before the field existed."""

    @property
    def stale(self) -> bool:
        """Whether its plan read an observation older than the previous iteration's."""
        return self.planned_from is not None and self.planned_from < self.iteration - 1


class Price(BaseModel):
    """What one model charges, in any currency, per million tokens."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    prompt: float = Field(ge=0)
    """Price of one million prompt (input) tokens."""
    completion: float = Field(ge=0)
    """Price of one million completion (output) tokens."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of this many tokens."""
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


class Budget(_Model):
    """Teacher budget: limits and what has been spent. None means unlimited."""

    max_queries: int | None = None
    max_tokens: int | None = None
    queries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_cost: float | None = None
    """Money the teacher may spend (``teacher.max_cost``), or None."""
    cost: float | None = None
    """Money spent so far at the teacher's price (``teacher.prices``); None without a price."""
    exhausted: bool = False
    """A request was refused for lack of budget: the teacher makes no more data."""
    _guard: object = PrivateAttr(default=None)
    # The one BudgetGuard of every client that spends this budget (the teacher's, a judge's on
    # another endpoint): their reservations add up, so together they cannot overshoot it.

    def restore(self, saved: Budget) -> None:
        """Take what ``saved`` records as spent (a resumed run); the limits stay this one's."""
        for name in type(self).model_fields:
            if not name.startswith("max_"):
                setattr(self, name, getattr(saved, name))

    @property
    def queries_left(self) -> int | None:
        """Queries that may still be sent, or None when unlimited."""
        return None if self.max_queries is None else max(0, self.max_queries - self.queries)

    @property
    def tokens_left(self) -> int | None:
        """Tokens that may still be spent, or None when unlimited."""
        if self.max_tokens is None:
            return None
        return max(0, self.max_tokens - self.prompt_tokens - self.completion_tokens)


class SkillInfo(_Model):
    """A skill's name and a sentence a teacher can read."""

    name: str
    description: str


Structure = Literal["open-ended", "skill-list", "skill-tree"]
"""How much structure the teacher's observation has (DataEnvGym's three teacher environments):
``open-ended``: the mean accuracy and a sample of failed feedback probes, no per-skill numbers;
``skill-list``: per-skill accuracy (the default); ``skill-tree``: per-skill accuracy and a tree
of subskills the teacher grows (``Plan.explore``) and budgets (``GenerationRequest.subskill``)."""

DEFAULT_POLICY: dict[str, str] = {
    "open-ended": "error-guided",
    "skill-list": "weakest-skills",
    "skill-tree": "skill-tree",
}
"""The built-in policy a run of each structure uses when its config names none. Stated here
only: the config's default ``policy.name`` and :func:`dataloop.policies.default_policy` read
it (the config sits below the policies, which need the teacher's LLM layer)."""


class Subskill(_Model):
    """One node under a skill in the skill tree, with what the student does on it."""

    name: str
    description: str
    iteration: int = 0
    """Iteration whose plan added it (the node exists from that iteration's data on)."""
    labelled_by: Literal["task", "teacher"] = "task"
    """Who decides which examples belong to it: the task's own rule
    (:meth:`~dataloop.environments.TaskEnvironment.in_subskill`) or the teacher LLM."""
    items: int = 0
    """Validation examples of the skill that belong to it."""
    accuracy: float | None = None
    """Student accuracy on those ``items``; None when it has none."""
    data: int = 0
    """Examples in the training set (seeds and accepted) that belong to it."""
    data_accuracy: float | None = None
    """The student's accuracy, after training, on the examples of this subskill it was just
    given (those whose request named it); None when the last step gave it none. DataEnvGym's
    ``perf_on_training_data`` is the same per-subskill number, measured before training."""
    members: list[str] = Field(default_factory=list)
    """Teacher-labelled only: ids of the skill's validation and seed examples the teacher
    placed in it (a task-labelled subskill is computed, not stored)."""


class SkillNode(_Model):
    """A skill of the tree: its accuracy, its subskills, and subskills it could still grow."""

    name: str
    description: str
    accuracy: float = 0.0
    """Validation accuracy on the whole skill."""
    items: int = 0
    """Validation examples of the skill."""
    data: int = 0
    """Examples of the skill in the training set."""
    subskills: list[Subskill] = Field(default_factory=list)
    candidates: list[SkillInfo] = Field(default_factory=list)
    """Subskills the task can label that are not in the tree yet: what a rule-based policy
    may ``explore``. A teacher may propose others (labelled by the teacher)."""

    def subskill(self, name: str) -> Subskill | None:
        """The subskill called ``name``, or None."""
        return next((s for s in self.subskills if s.name == name), None)


class SkillTree(_Model):
    """Skills and their subskills: the ``skill-tree`` observation, saved per iteration."""

    schema_version: int = SCHEMA_VERSION
    skills: list[SkillNode] = Field(default_factory=list)

    def node(self, skill: str) -> SkillNode | None:
        """The node of ``skill``, or None."""
        return next((n for n in self.skills if n.name == skill), None)

    def subskill(self, skill: str, name: str | None) -> Subskill | None:
        """The subskill ``name`` of ``skill``, or None (also for no name)."""
        node = self.node(skill) if name else None
        return node.subskill(name) if node is not None and name else None


class Explore(_Model):
    """A skill-tree action: add the subskill ``name`` under ``skill``."""

    skill: str
    name: str
    """A short identifier (lowercase, hyphens); made a slug when added."""
    description: str = ""
    """A sentence saying which questions belong to it; may be left empty for a subskill the
    task offers (``SkillNode.candidates``), whose own description is used."""


class SkillDifficulty(_Model):
    """One skill's difficulty in one iteration: the level its data was asked at and how often
    the student, sampling before training on it, solved those candidates (``edge``)."""

    level: int | None = None
    """The level asked for (an index into the skill's ``Observation.levels``), or None."""
    level_name: str | None = None
    """That level's name, as the task declares it."""
    candidates: int = 0
    """Accepted candidates of the skill the student was measured on."""
    samples: int = 0
    """Student answers sampled for them (``candidates`` × the probe's ``samples``): the cost."""
    solved: int = 0
    """Sampled answers that the task scored correct."""

    @property
    def solve_rate(self) -> float | None:
        """``solved / samples``; None when nothing was measured."""
        return self.solved / self.samples if self.samples else None


class Observation(_Model):
    """What the teacher sees after each evaluation of the student."""

    iteration: int
    skills: list[SkillInfo]
    accuracy: dict[str, float]
    """Per-skill accuracy on the validation split."""
    mean_accuracy: float
    failures: list[Failure] = Field(default_factory=list)
    """Train (seed) examples the student currently gets wrong."""
    seed_counts: dict[str, int] = Field(default_factory=dict)
    """Seed examples per skill."""
    train_size: int = 0
    """Examples in the accumulated training set."""
    budget: Budget = Field(default_factory=Budget)
    history: list[HistoryEntry] = Field(default_factory=list)
    structure: Structure = "skill-list"
    """How much of the student's state this observation shows; see :data:`Structure`. In
    ``open-ended`` ``accuracy`` and the history's per-skill accuracy are empty: the teacher
    sees the mean and the failed ``probes``."""
    probes: list[Failure] = Field(default_factory=list)
    """A sample of the feedback split's examples the student gets wrong (``env.feedback``):
    held out of the seed set, never trained on, never the validation split."""
    tree: SkillTree | None = None
    """The skill tree (``skill-tree`` only)."""
    data_accuracy: dict[str, float] = Field(default_factory=dict)
    """Per skill, the student's accuracy, after training, on the examples it was just given
    (empty at reset): high with no gain on validation says the data was too easy or off the
    mark; low says it was not learned (or its answers are wrong)."""
    losses: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per skill, seed example id -> the student's SFT loss on it (mean cross-entropy per
    answer token), computed without training; empty unless the policy asks for it
    (:attr:`~dataloop.policies.base.Policy.observes_loss`, e.g. ``high-loss``)."""
    levels: dict[str, list[SkillInfo]] = Field(default_factory=dict)
    """Per skill that has them, the difficulty levels the task declares, easiest first
    (:meth:`~dataloop.environments.TaskEnvironment.levels`); a request's ``level`` indexes them."""
    difficulty: dict[str, SkillDifficulty] = Field(default_factory=dict)
    """Per skill, the level of the data just given and the student's sampled solve rate on it,
    measured before training on it; filled when the plan asked for it (``Plan.solve_rate``)."""


class GenerationRequest(_Model):
    """Ask the engine for ``count`` new examples of one skill by one strategy."""

    skill: str
    strategy: str = "new-question"
    count: int = Field(ge=0)
    seed_ids: list[str] = Field(default_factory=list)
    """Examples to build on (LLM2LLM's failed examples, rephrase sources); empty = engine picks."""
    guidance: str = ""
    """Free text for the teacher, shown in every strategy's prompt (``Focus: ...``): what the
    data should be like (an open-ended plan's data specification)."""
    subskill: str | None = None
    """A subskill of ``skill`` in the skill tree: the prompt describes it, seeds that belong to
    it are shown first, and the examples record it in their provenance."""
    show_skill: bool = True
    """Whether the prompts name the skill and describe it. False for a teacher that sees no
    skill labels (``dataenvgym-open-ended``): new-question's prompts then show only examples
    (and ``failures``); the request's skill still decides what the task verifies."""
    failures: list[Failure] = Field(default_factory=list)
    """Failed feedback probes of ``skill`` that every prompt of the request shows, each with the
    student's answer and the correct one (DataEnvGym's skill-list teacher); ``new-question``
    also takes its worked examples from them first. Recorded in ``plan.json``."""
    level: int | None = Field(default=None, ge=0)
    """A difficulty level of ``skill`` (an index into ``Observation.levels[skill]``): the prompt
    names it with the task's description, candidates the task places at another level are
    rejected, and the examples record it in their provenance."""


class SolveRateProbe(_Model):
    """Ask for the student's sampled solve rate on the accepted candidates of each skill,
    measured before it trains on them; the result is ``Observation.difficulty``."""

    samples: int = Field(default=4, ge=1)
    """Answers the student samples per candidate question (k)."""
    temperature: float = Field(default=1.0, gt=0)
    """The student's sampling temperature (above 0: greedy answers would all agree)."""
    candidates: int = Field(default=32, ge=1)
    """At most this many candidates per skill are measured (the first accepted), which bounds
    the cost at ``candidates × samples`` student answers per skill."""


class Plan(_Model):
    """A policy's decision for one iteration."""

    requests: list[GenerationRequest] = Field(default_factory=list)
    rationale: str = ""
    explore: list[Explore] = Field(default_factory=list)
    """Subskills to add to the skill tree before the requests are carried out (``skill-tree``
    only); a request may name a subskill added here."""
    solve_rate: SolveRateProbe | None = None
    """Measure the student's sampled solve rate on the accepted candidates before training
    (``edge``); None measures nothing."""

    @property
    def total(self) -> int:
        """Examples asked for in all."""
        return sum(r.count for r in self.requests)


class FilterCounts(_Model):
    """How many candidates of one (skill, strategy) survived each stage, and how many the
    optional stages removed."""

    STAGES: ClassVar[tuple[str, ...]] = (
        "requested",
        "generated",
        "parsed",
        "verified",
        "deduplicated",
        "accepted",
    )
    """The survivors' counts, in pipeline order: every run's tables show them."""
    REMOVED: ClassVar[tuple[str, ...]] = ("errors", "near_duplicates", "benchmarks", "judged_out")
    """What a check that raised or an optional stage removed: a table shows one where some row
    counts any."""

    skill: str
    strategy: str
    requested: int = 0
    generated: int = 0
    parsed: int = 0
    dropped: int = 0
    """Items in the teacher's text that could not be read (junk, cut off by the length limit)."""
    verified: int = 0
    errors: int = 0
    """Candidates whose check raised (the task's ``verify``, a strategy's answer check):
    rejected, and the run stops if they are most of an iteration's candidates."""
    deduplicated: int = 0
    """Verified candidates that passed every filter after verification (dedup,
    near-duplicates, novelty, decontamination, length): accepted or surplus."""
    near_duplicates: int = 0
    """Verified candidates removed as near-duplicates (MinHash LSH, ``engine.near_duplicates``)."""
    benchmarks: dict[str, int] = Field(default_factory=dict)
    """Verified candidates removed for overlapping a benchmark (``engine.benchmarks``), per
    benchmark (one candidate may count for several)."""
    judged_out: int = 0
    """Verified candidates the LLM judge scored below its threshold, or could not score
    (``engine.judge``)."""
    accepted: int = 0
    seeds: list[str] = Field(default_factory=list)
    """Ids of the seed examples the prompts were built on (their parents), in order of first
    use: which seeds a rotating strategy reached this iteration."""

    def count(self, stage: str) -> int:
        """The number in a column of :attr:`STAGES` or :attr:`REMOVED` (per-benchmark
        removals summed)."""
        value = getattr(self, stage)
        return sum(value.values()) if isinstance(value, dict) else int(value)


class GenerationReport(_Model):
    """What the engine did with one plan."""

    counts: list[FilterCounts] = Field(default_factory=list)
    queries: int = 0
