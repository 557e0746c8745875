"""The ``dataloop`` command line: one typer app, its commands in modules by what they serve
(``loop``: run, resume; ``outputs``: report, export; ``serve``: envs, serve; ``bench``: bench,
power)."""

from __future__ import annotations

import logging
import warnings

# Importing a module registers its commands; ``dataloop --help`` lists them in this order.
# isort: off
from dataloop.cli import loop, outputs, serve, bench  # noqa: F401

# isort: on
from dataloop.cli.common import app, console, err_console

__all__ = ["app", "console", "err_console", "main"]


def main() -> None:
    """Console-script entry point."""
    # The handler's own level, not only the root's: dataloop's logger is set to INFO for
    # run.log, and its records reach the root's handlers whatever the root's level. INFO goes
    # to the terminal only with --verbose.
    terminal = logging.StreamHandler()
    terminal.setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING, handlers=[terminal])
    # Library deprecation chatter (transformers, TRL) is not the user's to act on.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    app()
