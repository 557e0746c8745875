"""The run directory: everything a run decided and produced, written atomically.

runs/<name>/
  config.yaml                  resolved configuration (no secrets)
  metrics.json                 per-iteration validation accuracy (the learning curve)
  iterations/<k>/plan.json     the policy's plan for iteration k
  iterations/<k>/generated.jsonl   every teacher candidate with its filter verdict
  iterations/<k>/accepted.jsonl    the examples added to the training set
  iterations/<k>/generation.json   per skill x strategy counts (requested ... accepted)
  checkpoints/iteration-<k>/   student checkpoints
  cache/                       teacher response cache
  teacher.log                  the local teacher server's log
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from dataloop.atomic import write_text
from dataloop.schema import SCHEMA_VERSION, HistoryEntry


class RunDir:
    """Paths and writers for one run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def checkpoints(self) -> Path:
        """Where student checkpoints go."""
        return self.path / "checkpoints"

    @property
    def cache(self) -> Path:
        """The teacher response cache."""
        return self.path / "cache"

    @property
    def teacher_log(self) -> Path:
        """Log of the teacher server this run started."""
        return self.path / "teacher.log"

    def iteration(self, k: int) -> Path:
        """The folder of iteration ``k``."""
        return self.path / "iterations" / str(k)

    def write_config(self, yaml_text: str) -> None:
        """Store the resolved config."""
        write_text(self.path / "config.yaml", yaml_text)

    def write_model(self, relative: str, model: BaseModel) -> None:
        """Store one pydantic model as JSON."""
        write_text(self.path / relative, model.model_dump_json(indent=2))

    def write_jsonl(self, relative: str, rows: Iterable[BaseModel]) -> None:
        """Store pydantic models one JSON object per line."""
        write_text(self.path / relative, "".join(r.model_dump_json() + "\n" for r in rows))

    def write_metrics(self, history: list[HistoryEntry]) -> None:
        """Rewrite the learning curve with every iteration so far."""
        payload = {
            "schema_version": SCHEMA_VERSION,
            "iterations": [h.model_dump(mode="json") for h in history],
        }
        write_text(self.path / "metrics.json", json.dumps(payload, indent=2))
