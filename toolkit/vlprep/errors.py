"""The one error base: every error a user can cause or fix carries its exit code and, where there is one, the fix.

A command never shows a traceback for these: `vlprep.cli.errors.reported` (and vltrain's CLI, through the same
function) prints the message and the fix and exits with `exit_code`. Exit codes, for every vlprep and vltrain command:

| code | meaning |
|---|---|
| 0 | success: nothing at or above the failing severity, every line cached, training finished |
| 1 | problems found: in the data (lint), rejected lines or a failed verification (cache), a cache that was modified or whose images changed (inspect), a guard that refused a cache or a run that failed (fit) |
| 2 | usage error: a bad option, a missing input, a model folder that cannot be used |
| 74 | a fault of the machine, not the data (EX_IOERR): a full disk, a quota, a read-only or unwritable folder, an I/O error, an input that vanished while it was read; the message names the path, the cause, what to do and whether `--resume` continues a cache build |
| 130 | interrupted (Ctrl-C); a cache build says whether `--resume` continues it |
| 143, 129 | stopped by SIGTERM (`timeout`, `docker stop`, a scheduler) or SIGHUP (the terminal closed): handled like Ctrl-C, 128 + the signal |
| 141 | the reader of stdout went away (`vlprep lint` piped into `head`): the command stops quietly, as `cat` would |
"""

from __future__ import annotations

import difflib
import errno
import os
import re
from collections.abc import Iterable

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_MACHINE = 74  # sysexits.h EX_IOERR
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


class MachineFault(VlprepError):
    """The operating system refused a read or write (disk full, read-only, I/O error, a vanished file): exit 74."""

    exit_code = EXIT_MACHINE


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the command runs so it stops at a safe point as on Ctrl-C (exit 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class ProcessorError(UsageError):
    """The processor could not be built, found or loaded; the message says how to fix it."""


_ADVICE = {
    errno.ENOSPC: "the disk is full: free space on it (or write somewhere with more room)",
    errno.EDQUOT: "the disk quota is used up: free space within the quota (or write somewhere else)",
    errno.EROFS: "the file system is read-only: write somewhere writable",
    errno.EACCES: "permission denied: make the folder writable for this user (or write somewhere else)",
    errno.EPERM: "operation not permitted: check the folder's permissions (or write somewhere else)",
    errno.EIO: "the storage reported an I/O error: check the disk (dmesg, the mount) before trusting it again",
    errno.ENOENT: "the file or folder is gone: it was moved or deleted while the command ran; put it back",
    errno.ESTALE: "the network file handle went stale: check the mount",
}


def os_error_number(error: OSError) -> int | None:
    """The errno, also for pyarrow's OSErrors, which carry it only in their text ('[errno 28] ...')."""
    if error.errno:
        return error.errno
    found = re.search(r"errno (\d+)", str(error), re.IGNORECASE)
    return int(found.group(1)) if found else None


def machine_fault(error: OSError, then: str = "") -> MachineFault:
    """One message for an operating-system error: the path, the cause, what to do, and `then` (e.g. about --resume)."""
    number = os_error_number(error)
    cause = os.strerror(number) if number and not error.errno else (error.strerror or str(error))
    where = f" at {error.filename}" if error.filename else ""
    if error.filename2:
        where += f" -> {error.filename2}"
    advice = _ADVICE.get(number or -1, "a fault of the machine, not of the data")
    return MachineFault(f"{cause}{where} [{errno.errorcode.get(number or -1, 'OSError')}]",
                        fix=advice + (f". {then}" if then else ""))


def closest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""
