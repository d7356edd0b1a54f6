"""Everything ms-swift, transformers and torch print during training goes, complete, to OUTPUT/train.log.

The process's file descriptors 1 and 2 are pointed at the log (so prints, logging handlers, tqdm and C-level output all
land there); the console keeps a private duplicate of the terminal's stderr for vltrain's own display. With `tee`
(--verbose) the output goes through a pipe to both the terminal's stderr and the log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def terminal_stream() -> Iterator[IO[str]]:
    """A text stream on a duplicate of the current stderr, unaffected by the redirection below."""
    sys.stderr.flush()
    stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield stream
    finally:
        stream.close()


@contextlib.contextmanager
def output_to_log(log_path: Path, tee: bool = False) -> Iterator[None]:
    """fds 1 and 2 → `log_path` (appended) for the duration; with `tee` also → the original stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed below, after the fds are restored
    copier: threading.Thread | None = None
    if tee:
        read_end, write_end = os.pipe()
        copier = threading.Thread(target=_copy, args=(read_end, [log.fileno(), saved[1]]), daemon=True)
        copier.start()
        target = write_end
    else:
        target = log.fileno()
    os.dup2(target, 1)
    os.dup2(target, 2)
    if tee:
        os.close(target)  # fds 1 and 2 hold the pipe's write end now
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        if copier is not None:
            copier.join(timeout=10)
        for fd in saved:
            os.close(fd)
        log.close()


def _copy(read_end: int, targets: list[int]) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as source:
        while chunk := source.read(65536):
            for fd in targets:
                os.write(fd, chunk)
