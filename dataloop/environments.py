"""Task environments: the contract a task implements, and the registry that finds one by name.

A task knows its data (splits), how to prompt the student, how to read and score an answer,
the skill of each example and, optionally, how to verify a generated example. It knows nothing
of students or teachers; :class:`dataloop.gym.Environment` puts them together.
"""

from __future__ import annotations

import inspect
import random
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, ClassVar, Literal

from dataloop.deprecation import deprecated
from dataloop.errors import RegistryError
from dataloop.plugins import Registry
from dataloop.schema import Example, SkillInfo, Subskill

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
ENTRY_POINT_GROUP = "dataloop.environments"


class TaskEnvironment(ABC):
    """A task: data, prompt format, answer extraction, scoring, and optional verification.

    Subclasses set ``name`` and ``description`` and implement :meth:`skills` and :meth:`split`.
    Keyword options from the run config (``env.options``) reach ``__init__``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    accepts_skills_file: ClassVar[bool] = False
    """Whether the constructor takes a ``skills_file`` option (a :mod:`dataloop.taxonomy`
    file that relabels every example), which skill discovery (``env.discover_skills``) hands
    the skills it found through. The built-in math, multiple_choice and code tasks do."""
    check_workers: ClassVar[int] = 1
    """How many ``verify`` / ``score`` calls may run at once, in threads. 1 (the default) runs
    them one by one; a task whose checks wait on subprocesses (code's sandbox) raises it, and
    its ``verify``, ``score`` and ``check_answer`` must then be thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @abstractmethod
    def skills(self) -> list[SkillInfo]:
        """The skills of the task, with a sentence each that a teacher can read."""

    @abstractmethod
    def split(self, name: Split) -> list[Example]:
        """The examples of a split. ``train`` is the seed set the loop starts from."""

    def prompt(self, question: str) -> str:
        """The text the student is given for a question."""
        return f"{question}\n"

    def target(self, example: Example) -> str:
        """The text the student is trained to produce after :meth:`prompt`."""
        return example.answer

    def extract(self, completion: str) -> str:
        """The answer inside a student's completion (default: its first line, stripped)."""
        lines = completion.strip().splitlines()
        return lines[0].strip() if lines else ""

    def score(self, example: Example, completion: str) -> bool:
        """Whether a completion answers the example correctly (default: exact match)."""
        return self.extract(completion) == example.answer.strip()

    def score_many(self, examples: list[Example], completions: list[str]) -> list[bool]:
        """:meth:`score` of each pair, in order; ``check_workers`` at a time."""
        if self.check_workers <= 1 or len(examples) <= 1:
            return [self.score(e, c) for e, c in zip(examples, completions, strict=True)]
        with ThreadPoolExecutor(self.check_workers) as pool:
            return list(pool.map(self.score, examples, completions))

    def verify(self, example: Example) -> Example | None:
        """Check a generated example: return it (possibly relabelled) or None to reject it.

        The default accepts everything; a task that can check answers should override it.
        """
        return example

    def check_answer(self, example: Example) -> bool | None:
        """Whether ``example.answer`` is right for its question; None if the task cannot tell.

        Asked where an answer must be kept as it is, not recomputed: a reworded question keeps
        its seed's answer (``question-rephrase``). The default cannot tell; a task that can
        compute or test answers should override it.
        """
        return None

    def sample(self, skill: str, n: int, rng: random.Random) -> list[Example] | None:
        """``n`` new examples of ``skill`` with correct answers, drawn from the task's own
        distribution; None if the task cannot make problems (the default).

        A task that can (arithmetic) is its own oracle: ``engine.source: oracle`` trains on
        these instead of teacher output, the ceiling a teacher is compared against.
        """
        return None

    def subskills(self, skill: str) -> list[SkillInfo]:
        """Subskills of ``skill`` this task can tell apart with :meth:`in_subskill`: what a
        ``skill-tree`` run may grow under it without asking the teacher. Default: none."""
        return []

    def in_subskill(self, example: Example, subskill: str) -> bool | None:
        """Whether ``example`` belongs to ``subskill`` (one of :meth:`subskills` of its skill);
        None when the task cannot tell (the default), and then the teacher labels it."""
        return None

    def levels(self, skill: str) -> list[SkillInfo]:
        """Difficulty levels of ``skill``, easiest first, each a name and a sentence a teacher
        can write to (``edge`` asks for data at one of them, by index). Default: none; a skill
        without levels is planned without one."""
        return []

    def level_of(self, example: Example) -> int | None:
        """The index in :meth:`levels` of ``example``'s skill of the level ``example`` is at;
        None when the task cannot tell (the default). A generated candidate asked for at one
        level that the task places at another is rejected."""
        return None

    def data_source(self) -> str:
        """Where the task's examples come from, in words (a run prints it). Default: the task
        makes them itself."""
        return "made by the task itself"

    def data_license(self) -> str | None:
        """The licence of the seed data as a Hugging Face Hub licence id (``mit``,
        ``apache-2.0``, ``cc-by-4.0`` ...), for the dataset card ``dataloop export`` writes;
        None when the task cannot tell (the default: data the user brought)."""
        return None

    def describe(self) -> str:
        """Deprecated (removed in 0.3.0): read :attr:`description`. One line for listings:
        ``description``, or the class docstring's first line."""
        deprecated("TaskEnvironment.describe() is deprecated; read TaskEnvironment.description")
        return self.description or (inspect.getdoc(self) or "").split("\n")[0]


def belongs(task: TaskEnvironment, subskill: Subskill, example: Example) -> bool:
    """Whether ``example`` (of the subskill's skill) belongs to ``subskill``: by the task's
    rule for a task-labelled one, by the teacher's labels or the example's provenance (it was
    made for the subskill) for a teacher-labelled one."""
    if subskill.labelled_by == "task":
        return bool(task.in_subskill(example, subskill.name))
    return example.id in subskill.members or example.provenance.subskill == subskill.name


def _task_class_in(module: ModuleType, origin: str) -> type[TaskEnvironment]:
    """The single TaskEnvironment subclass a module defines."""
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, TaskEnvironment)
        and obj is not TaskEnvironment
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise RegistryError(
            f"{origin} must define exactly one TaskEnvironment subclass (found: {names}); "
            f"name it as '{origin}:ClassName'"
        )
    return found[0]


def _task_class(obj: Any, spec: str) -> type[TaskEnvironment] | None:
    if isinstance(obj, ModuleType):  # a file named alone: the one task class it defines
        return _task_class_in(obj, spec)
    if inspect.isclass(obj) and issubclass(obj, TaskEnvironment):
        return obj
    return None


ENVIRONMENTS: Registry[type[TaskEnvironment]] = Registry(
    "environment", ENTRY_POINT_GROUP, "a TaskEnvironment subclass", _task_class
)
"""Task environments by entry point (``dataloop.environments``: the built-ins, registered in
dataloop's own ``pyproject.toml``, and any plug-in), ``path/to/env.py[:Class]`` or
``module:Class``."""


def available() -> dict[str, str]:
    """Every environment known by name -> the class it names (``module:Class``): the
    ``dataloop.environments`` entry points, the built-ins (:mod:`dataloop.envs`) among them."""
    return ENVIRONMENTS.names()


def resolve(spec: str) -> type[TaskEnvironment]:
    """A task class by registered name, ``file.py[:Class]`` or ``module:Class``."""
    return ENVIRONMENTS.resolve(spec)


def load_task(spec: str, seed: int = 0, options: dict[str, Any] | None = None) -> TaskEnvironment:
    """Instantiate the task ``spec`` with a seed and the options of its config section."""
    cls = resolve(spec)
    try:
        return cls(seed=seed, **(options or {}))
    except (TypeError, ValueError) as exc:
        # A constructor's own check (unknown skills, a bad size) is a bad option as well.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(f"environment '{spec}': bad option in 'env.options': {first}") from exc
