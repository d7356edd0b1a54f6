"""The one place where vlprep's and vltrain's commands turn errors into a message and an exit code (vlprep.errors)."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vlprep.errors import EXIT_MACHINE, Terminated, VlprepError, machine_fault, os_error_number

err = Console(stderr=True)
Command = TypeVar("Command", bound=Callable[..., Any])


def announce(message: str) -> None:
    """A note for the user on stderr (stdout is for results); soft-wrapped: a path is never cut at the console width."""
    err.print(message, highlight=False, soft_wrap=True)


def print_error(error: VlprepError, console: Console = err) -> None:
    console.print(f"[red]{error.label}:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    if error.fix:
        console.print(f"  fix: {escape(error.fix)}", highlight=False, soft_wrap=True)


EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def stop_signals_as_interrupts() -> None:
    """SIGTERM and SIGHUP stop the command like Ctrl-C (a Terminated, a KeyboardInterrupt) at whatever it is doing."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (a command run from a thread of a test or an embedding app)
    for number in STOP_SIGNALS:
        signal.signal(number, _terminate)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for a full disk or a closed pipe is dropped at exit
    instead of failing again there (Python would print 'Exception ignored' and exit 120)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class _NamedStdout:
    """sys.stdout, whose OSErrors name it (a write to a full disk behind a redirect names no file of its own)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _named(self, error: OSError) -> OSError:
        if error.filename is None:
            target = "stdout"
            with contextlib.suppress(OSError, ValueError):
                target = f"stdout ({os.readlink(f'/proc/self/fd/{self._stream.fileno()}')})"
            error.filename = target
        return error

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise self._named(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self._named(error) from None


def reported(command: Command, console: Console = err) -> Command:
    """The command, with every VlprepError printed on `console` (no traceback) and turned into its exit code; an
    OSError (a fault of the machine) is one message and exit 74; SIGTERM/SIGHUP end it as 128 + the signal."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        stop_signals_as_interrupts()
        stdout, sys.stdout = sys.stdout, _NamedStdout(sys.stdout)  # type: ignore[assignment]
        try:
            try:
                return command(*args, **kwargs)
            finally:  # a full disk behind stdout shows here, where it can be reported, not at interpreter exit
                sys.stdout.flush()
        except VlprepError as error:
            print_error(error, console)
            raise typer.Exit(error.exit_code) from None
        except Terminated as stopped:
            console.print(f"[yellow]stopped by {signal.Signals(stopped.signum).name}[/]", highlight=False)
            raise typer.Exit(128 + stopped.signum) from None
        except OSError as error:
            _silence_stdout()
            if os_error_number(error) == errno.EPIPE:
                raise typer.Exit(EXIT_BROKEN_PIPE) from None
            print_error(machine_fault(error), console)
            raise typer.Exit(EXIT_MACHINE) from None
        finally:
            sys.stdout = stdout

    return run  # type: ignore[return-value]
