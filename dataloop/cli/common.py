"""What every command shares: the typer app, the consoles, and how a DataloopError ends a command
(one line on stderr, exit status 2)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from dataloop.errors import DataloopError
from dataloop.redact import redact_keys

app = typer.Typer(
    help="Closed-loop synthetic data: a teacher LLM writes data where a student is weak.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(exc: DataloopError) -> typer.Exit:
    """The exit for ``exc``, after its message on stderr: ``raise fail(exc) from None``."""
    # Escaped: a message's own brackets ('dataloop[vllm]') are text, not rich markup. A key
    # pasted where a name or URL belongs is not echoed.
    message = escape(redact_keys(str(exc)))
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)
