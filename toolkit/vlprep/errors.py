"""The one error base: every error a user can cause or fix carries its exit code and, where there is one, the fix.

A command never shows a traceback for these: `vlprep.cli.errors.reported` (and vltrain's CLI, through the same
function) prints the message and the fix and exits with `exit_code`. Exit codes, for every vlprep and vltrain command:

| code | meaning |
|---|---|
| 0 | success: nothing at or above the failing severity, every line cached, training finished |
| 1 | problems found: in the data (lint), rejected lines or a failed verification (cache), a cache that was modified or whose images changed (inspect), a guard that refused a cache or a run that failed (fit) |
| 2 | usage error: a bad option, a missing input, a model folder that cannot be used |
| 130 | interrupted (Ctrl-C); a cache build says whether `--resume` continues it |
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class VlprepError(Exception):
    """An error for the user: its message says what is wrong and where; `fix` says what to do about it."""

    exit_code = EXIT_USAGE
    label = "error"  # how the CLI introduces the message

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class UsageError(VlprepError):
    """A bad option, input or combination: the command did not start its work."""


class ProblemsFound(VlprepError):
    """The command ran and found a problem with what it checked (exit 1)."""

    exit_code = EXIT_PROBLEMS


class ProcessorError(UsageError):
    """The processor could not be built, found or loaded; the message says how to fix it."""


def closest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""
