"""Logging: a structured JSON-lines log per run, and an optional verbose terminal log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def attach_run_log(path: Path) -> logging.Handler:
    """Send dataloop's INFO+ records to ``path`` (appending, so a resumed run adds to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("dataloop")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    """Stop and close a handler added by :func:`attach_run_log`."""
    logging.getLogger("dataloop").removeHandler(handler)
    handler.close()


def verbose_terminal() -> None:
    """Show dataloop's INFO records on the terminal (``--verbose``)."""
    handler = RichHandler(console=Console(stderr=True), show_path=False)  # stdout is results
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("dataloop")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False  # its warnings would be printed twice
