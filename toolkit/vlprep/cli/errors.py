"""The one place where vlprep's and vltrain's commands turn errors into a message and an exit code (vlprep.errors)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vlprep.errors import VlprepError

err = Console(stderr=True)
Command = TypeVar("Command", bound=Callable[..., Any])


def announce(message: str) -> None:
    """A note for the user on stderr (stdout is for results)."""
    err.print(message, highlight=False)


def print_error(error: VlprepError, console: Console = err) -> None:
    console.print(f"[red]{error.label}:[/] {escape(str(error))}", highlight=False)
    if error.fix:
        console.print(f"  fix: {escape(error.fix)}", highlight=False)


def reported(command: Command, console: Console = err) -> Command:
    """The command, with every VlprepError printed on `console` (no traceback) and turned into its exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except VlprepError as error:
            print_error(error, console)
            raise typer.Exit(error.exit_code) from None

    return run  # type: ignore[return-value]
