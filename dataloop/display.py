"""Terminal display: progress bars for training and generation, a per-skill table per iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dataloop.schema import FilterCounts, HistoryEntry


def _train_progress(display: Display) -> Any:
    """A TrainerCallback that advances a rich progress bar once per optimiser step."""
    # transformers is imported here, when a student is built, so the CLI starts at once.
    from transformers import TrainerCallback

    class TrainProgress(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            display._begin("training student", state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            display._advance(1)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            display._end()

    return TrainProgress()


class Display:
    """Everything the loop shows in the terminal; quiet=True shows nothing."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None

    @cached_property
    def train_callback(self) -> Any:
        """A transformers ``TrainerCallback`` that shows training progress."""
        return _train_progress(self)

    def _begin(self, label: str, total: int) -> None:
        if self.quiet:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(label, total=total)

    def _advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def _end(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar for the block; yields a function that advances it."""
        self._begin(label, total)
        try:
            yield self._advance
        finally:
            self._end()

    def log(self, message: str) -> None:
        """One status line."""
        if not self.quiet:
            self.console.print(message, soft_wrap=True)

    def generation_table(self, counts: list[FilterCounts]) -> None:
        """Requested -> accepted per skill and strategy."""
        if self.quiet or not counts:
            return
        table = Table(title="teacher output", title_justify="left")
        removed = [f for f in FilterCounts.REMOVED if any(c.count(f) for c in counts)]
        columns = (*FilterCounts.STAGES, *removed)
        for name in ("skill", "strategy", *columns):
            header = name.replace("_", "-")
            table.add_column(header, justify="left" if name in ("skill", "strategy") else "right")
        for c in counts:
            table.add_row(c.skill, c.strategy, *(str(c.count(name)) for name in columns))
        self.console.print(table)

    def accuracy_table(self, skills: list[str], history: list[HistoryEntry]) -> None:
        """Validation accuracy per skill (rows) and iteration (columns)."""
        if self.quiet:
            return
        table = Table(title="validation accuracy", title_justify="left")
        table.add_column("skill")
        for h in history:
            table.add_column(
                "reset" if h.iteration == 0 else f"iter {h.iteration}", justify="right"
            )
        for skill in skills:
            table.add_row(skill, *(f"{h.accuracy.get(skill, 0.0):.0%}" for h in history))
        table.add_row("[bold]mean", *(f"[bold]{h.mean_accuracy:.0%}" for h in history))
        table.add_row("new examples", *(str(sum(h.accepted.values())) for h in history))
        table.add_row("teacher queries", *(str(h.queries) for h in history))
        if any(h.stale for h in history):  # an overlapped run: what each plan read
            table.add_row("planned from", *(_planned_from(h) for h in history))
        self.console.print(table)


def _planned_from(h: HistoryEntry) -> str:
    k = h.planned_from
    return "" if k is None else "reset" if k == 0 else f"iter {k}"
