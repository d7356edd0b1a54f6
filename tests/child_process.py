"""Starting the command under test the way a terminal would, whatever started the test suite.

A suite started from a background job (`make test &`, a non-interactive script, some CI runners) inherits SIGINT
ignored, and so would every child it starts: a test that sends Ctrl-C would then test nothing. Children that a test
signals are started with the default dispositions, in a process group of their own (so the test can signal the group,
as a terminal does).
"""

from __future__ import annotations

import signal
from typing import Any

SIGNALS_A_TERMINAL_SENDS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def default_signal_dispositions() -> None:
    """preexec_fn: runs in the child between fork and exec."""
    for number in SIGNALS_A_TERMINAL_SENDS:
        signal.signal(number, signal.SIG_DFL)


def as_from_a_terminal() -> dict[str, Any]:
    """Keyword arguments for subprocess.Popen/run."""
    return {"start_new_session": True, "preexec_fn": default_signal_dispositions}
