"""On-disk response cache: the same request to the same model is paid for once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dataloop.atomic import write_text
from dataloop.llm.base import Completion, Sampling


class ResponseCache:
    """One JSON file per response, named by a hash of (model, kind, payload, sampling)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def key(model: str, kind: str, payload: object, sampling: Sampling) -> str:
        """The cache key of a request; a different seed or temperature is a different key."""
        blob = json.dumps([model, kind, payload, sampling.model_dump(mode="json")], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        """The cached response, or None (a damaged entry counts as a miss)."""
        try:
            data = self._path(key).read_text()
            return Completion.model_validate_json(data).model_copy(update={"cached": True})
        except (OSError, ValueError):
            return None

    def put(self, key: str, completion: Completion) -> None:
        """Store a response atomically: readers never see half a file."""
        write_text(self._path(key), completion.model_dump_json())
