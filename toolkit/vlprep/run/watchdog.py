"""A per-worker watchdog for image and video checks that take too long.

A decoder or demuxer stuck in C code cannot be interrupted from Python, so the watchdog thread records which image or
video of which line overran its time limit in a marker file and ends the worker process. The parent sees a broken pool,
re-runs the lost lines one by one, and reports the line whose marker it finds as I014 (an image) or V014 (a video);
others that die are W001.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_CODE = 70
MARKER_DIR_PREFIX = "vlprep-watchdog-"


def new_marker_dir() -> str:
    """A marker folder for this run, named after this process; folders of runs that were killed are removed."""
    for stale in Path(tempfile.gettempdir()).glob(f"{MARKER_DIR_PREFIX}*"):
        owner = stale.name[len(MARKER_DIR_PREFIX):].split("-")[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{MARKER_DIR_PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def marker_path(marker_dir: Path, file: str, line: int) -> Path:
    digest = hashlib.blake2b(f"{file}:{line}".encode(), digest_size=10).hexdigest()
    return marker_dir / f"{digest}.timeout"


def read_marker(marker_dir: Path, file: str, line: int) -> dict[str, Any] | None:
    path = marker_path(marker_dir, file, line)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def timeout_problem(marker: dict[str, Any]) -> tuple[str, str]:
    """The rule code and message for a line whose check overran (a marker written by `Watchdog`)."""
    if marker.get("kind") == "video":
        return "V014", (f"video {marker['ref']} took longer than --video-timeout {marker['timeout_s']} s to check "
                        "(its header read, or its full decode)")
    return "I014", f"image {marker['ref']} took longer than --image-timeout {marker['timeout_s']} s to check"


class Watchdog:
    def __init__(self, timeout_s: float, marker_dir: Path) -> None:
        self._timeout_s = timeout_s
        self._marker_dir = marker_dir
        self._current: tuple[float, str, int, str, str, float] | None = None
        threading.Thread(target=self._watch, name="vlprep-watchdog", daemon=True).start()

    @contextmanager
    def guard(self, file: str, line: int, ref: str, kind: str = "image", timeout_s: float | None = None
              ) -> Iterator[None]:
        """Watch one check of `ref` (an image, or a video with its own `timeout_s`)."""
        limit = self._timeout_s if timeout_s is None else timeout_s
        self._current = (time.monotonic() + limit, file, line, ref, kind, limit)
        try:
            yield
        finally:
            self._current = None

    def _watch(self) -> None:
        period = min(0.05, self._timeout_s / 4)
        while True:
            time.sleep(period)
            current = self._current
            if current is not None and time.monotonic() > current[0]:
                _, file, line, ref, kind, limit = current
                marker = marker_path(self._marker_dir, file, line)
                marker.write_text(json.dumps({"file": file, "line": line, "kind": kind, "ref": ref[:200],
                                              "timeout_s": limit}))
                os._exit(EXIT_CODE)
