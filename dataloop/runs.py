"""The run directory: the single source of truth of a run, written atomically.

    runs/<name>/
      config.yaml                        resolved configuration (no secrets)
      state.json                         last completed phase, budget spent
      metrics.json                       per-iteration validation (and final test) accuracy
      run.log                            structured log (one JSON object per line)
      iterations/<k>/observation.json    what the policy saw after iteration k (0 = reset)
      iterations/<k>/tree.json           the skill tree (skill-tree runs): grown by the plan of k,
                                         then as evaluated after iteration k
      iterations/<k>/plan.json           the policy's plan for iteration k
      iterations/<k>/generated.jsonl     every teacher candidate with its filter verdict
      iterations/<k>/accepted.jsonl      the examples added to the training set
      iterations/<k>/accepted/           the same as a Hugging Face dataset (save_to_disk)
      iterations/<k>/generation.json     per skill x strategy counts (requested ... accepted)
      checkpoints/iteration-<k>/         student checkpoint after iteration k
      cache/                             teacher response cache
      teacher.log                        the local teacher server's log (teacher-<i>.log
                                         for replica i when teacher.replicas > 1)
      environment.jsonl                  the code (commit) and package versions of each start

A phase's outputs are written before ``state.json`` moves past it, so a crash at any point
leaves either the finished phase on disk or nothing that the resumed run will trust.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from dataloop.atomic import write_text
from dataloop.errors import DataloopError
from dataloop.identity import CodeIdentity
from dataloop.schema import (
    SCHEMA_VERSION,
    Budget,
    Example,
    HistoryEntry,
    Observation,
    SkillTree,
)

Phase = Literal["reset", "planned", "generated", "trained"]
M = TypeVar("M", bound=BaseModel)


class RunError(DataloopError):
    """A run directory is missing, incomplete or has a damaged file."""


class RunState(BaseModel):
    """Where a run stands: the last phase that completed and what the teacher has spent."""

    schema_version: int = SCHEMA_VERSION
    iteration: int = 0
    """Iteration of the last completed phase (0 = reset)."""
    phase: Phase = "reset"
    """``trained`` means iteration ``iteration`` is complete (for 0: reset is complete)."""
    done: bool = False
    """The loop has finished; ``resume`` has nothing left to do."""
    budget: Budget = Budget()
    """Teacher spending so far (and whether it ran out), restored into the client on resume."""
    seed: int = 0


class Metrics(BaseModel):
    """The learning curve."""

    schema_version: int = SCHEMA_VERSION
    iterations: list[HistoryEntry] = []
    test: dict[str, float] | None = None
    """Per-skill test accuracy of the final student, when the run has finished."""


class RunDir:
    """Paths, writers and validated readers for one run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def checkpoints(self) -> Path:
        """Where student checkpoints go."""
        return self.path / "checkpoints"

    def checkpoint(self, k: int) -> Path:
        """The student checkpoint after iteration ``k``."""
        return self.checkpoints / f"iteration-{k}"

    @property
    def cache(self) -> Path:
        """The teacher response cache."""
        return self.path / "cache"

    @property
    def teacher_log(self) -> Path:
        """Log of the teacher server this run started."""
        return self.path / "teacher.log"

    @property
    def skills_file(self) -> Path:
        """Skills the teacher discovered (``env.discover_skills``), editable by the user."""
        return self.path / "skills.json"

    @property
    def log_file(self) -> Path:
        """The structured run log."""
        return self.path / "run.log"

    def iteration(self, k: int) -> Path:
        """The folder of iteration ``k``."""
        return self.path / "iterations" / str(k)

    # writers

    def write_config(self, yaml_text: str) -> None:
        """Store the resolved config."""
        write_text(self.path / "config.yaml", yaml_text)

    def write_model(self, relative: str, model: BaseModel) -> None:
        """Store one pydantic model as JSON."""
        write_text(self.path / relative, model.model_dump_json(indent=2))

    def write_jsonl(self, relative: str, rows: Iterable[BaseModel]) -> None:
        """Store pydantic models one JSON object per line."""
        write_text(self.path / relative, "".join(r.model_dump_json() + "\n" for r in rows))

    def record_environment(self, identity: CodeIdentity) -> None:
        """Add one start's (or resume's) code identity to ``environment.jsonl``."""
        before = self.environments() if self.exists("environment.jsonl") else []
        self.write_jsonl("environment.jsonl", [*before, identity])

    def discard_failed_start(self) -> None:
        """Remove the folder after a start that failed, unless the start left something worth
        keeping in it (a server's log the error points to, cached teacher answers, found
        skills): only ``config.yaml``, ``environment.jsonl`` and ``run.log`` are not."""
        made_by_start = {self.path / "config.yaml", self.path / "environment.jsonl", self.log_file}
        if all(p in made_by_start for p in self.path.rglob("*") if p.is_file()):
            shutil.rmtree(self.path, ignore_errors=True)

    def environments(self) -> list[CodeIdentity]:
        """The code identity of every start of the run, the first start first."""
        return self.read_jsonl("environment.jsonl", CodeIdentity)

    def write_state(self, state: RunState) -> None:
        """Commit a phase: written last, after the phase's own files."""
        self.write_model("state.json", state)

    def write_metrics(self, metrics: Metrics) -> None:
        """Rewrite the learning curve."""
        self.write_model("metrics.json", metrics)

    # readers: every damaged or missing file is reported by name

    def exists(self, relative: str) -> bool:
        """Whether a file of the run exists."""
        return (self.path / relative).is_file()

    def read_model(self, relative: str, model: type[M]) -> M:
        """Load one JSON file as ``model``; a missing or damaged file raises RunError."""
        path = self.path / relative
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise RunError(f"{path} is missing; the run directory is incomplete") from None
        except (OSError, ValueError) as exc:
            raise RunError(f"{path} cannot be read: {exc}") from None
        try:
            return _parse(text, model)
        except _Damaged as exc:
            raise RunError(f"{path} is damaged: {exc}") from None

    def read_jsonl(self, relative: str, model: type[M]) -> list[M]:
        """Load a JSONL file; the message names the line that is damaged."""
        path = self.path / relative
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            raise RunError(f"{path} is missing; the run directory is incomplete") from None
        except (OSError, ValueError) as exc:
            raise RunError(f"{path} cannot be read: {exc}") from None
        rows = []
        for number, line in enumerate(lines, start=1):
            try:
                rows.append(_parse(line, model))
            except _Damaged as exc:
                raise RunError(f"{path} line {number} is damaged: {exc}") from None
        return rows

    def read_state(self) -> RunState:
        """The run's state; a folder without one is not a run."""
        if not self.path.is_dir():
            raise RunError(f"no run directory at {self.path}")
        return self.read_model("state.json", RunState)

    def read_metrics(self) -> Metrics:
        """The learning curve so far."""
        return self.read_model("metrics.json", Metrics)

    def accepted(self, k: int) -> list[Example]:
        """Examples accepted in iteration ``k``."""
        return self.read_jsonl(f"iterations/{k}/accepted.jsonl", Example)

    def observation(self, k: int) -> Observation | None:
        """What the policy saw after iteration ``k``; None for a folder without one."""
        relative = f"iterations/{k}/observation.json"
        return self.read_model(relative, Observation) if self.exists(relative) else None

    def tree(self, k: int) -> SkillTree | None:
        """The skill tree after iteration ``k``; None in a run without one (not skill-tree)."""
        relative = f"iterations/{k}/tree.json"
        return self.read_model(relative, SkillTree) if self.exists(relative) else None

    def iterations_done(self) -> list[int]:
        """Iterations (after reset) that have an accepted set on disk, in order."""
        folder = self.path / "iterations"
        if not folder.is_dir():
            return []
        found = [int(p.name) for p in folder.iterdir() if p.name.isdigit() and int(p.name) > 0]
        return sorted(k for k in found if (self.iteration(k) / "accepted.jsonl").is_file())

    def save_dataset(self, k: int, examples: list[Example]) -> None:
        """The accepted set of iteration ``k`` as a Hugging Face dataset on disk."""
        from dataloop.export import to_dataset

        target = self.iteration(k) / "accepted"
        tmp = self.iteration(k) / ".accepted.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # left by a crash mid-write
        to_dataset(examples).save_to_disk(str(tmp))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)


class _Damaged(Exception):
    """What is wrong with one JSON document: where, and which field."""


def _parse(text: str, model: type[M]) -> M:
    """``text`` as ``model``; raises _Damaged with the position or the field at fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}" if "\n" in text else f"column {exc.colno}"
        raise _Damaged(f"not valid JSON: {exc.msg} ({where})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"]) or "the top level"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise _Damaged(f"field '{field}': {err['msg']}{more}") from None
