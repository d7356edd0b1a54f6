"""Starting the command under test the way a terminal would, whatever started the test suite.

A suite started from a background job (`make test &`, a non-interactive script, some CI runners) inherits SIGINT
ignored, and so would every child it starts: a test that sends Ctrl-C would then test nothing. Children that a test
signals are started with the default dispositions, in a process group of their own (so the test can signal the group,
as a terminal does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from support import vlprep_launcher

SIGNALS_A_TERMINAL_SENDS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def default_signal_dispositions() -> None:
    """preexec_fn: runs in the child between fork and exec."""
    for number in SIGNALS_A_TERMINAL_SENDS:
        signal.signal(number, signal.SIG_DFL)


def as_from_a_terminal() -> dict[str, Any]:
    """Keyword arguments for subprocess.Popen/run."""
    return {"start_new_session": True, "preexec_fn": default_signal_dispositions}


def start_vlprep(*args: str | Path) -> subprocess.Popen[str]:
    """`vlprep ARGS` started as from a terminal, in a process group of its own."""
    return subprocess.Popen([*vlprep_launcher(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **as_from_a_terminal())


def signal_build_after_shards(out: Path, args: list[str], shards: int, sig: int = signal.SIGINT,
                              timeout: float = 240) -> tuple[int, str]:
    """Start `vlprep cache ARGS --out OUT`, send `sig` to its process group (Ctrl-C by default, as a terminal does) once
    its journal records `shards` complete shards; its exit code and stderr once it has stopped."""
    child = start_vlprep("cache", *args, "--out", out)
    journal = out.parent / f".{out.name}.vlprep-partial" / "journal.jsonl"
    try:
        deadline = time.monotonic() + timeout
        while child.poll() is None and time.monotonic() < deadline:
            if journal.is_file() and len(journal.read_text().splitlines()) >= shards:
                break
            time.sleep(0.05)
        assert child.poll() is None, f"the build ended before it could be signalled:\n{child.stderr.read()}"
        os.killpg(child.pid, sig)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return child.returncode, stderr
