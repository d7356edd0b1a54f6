"""Run the per-record pipeline over files in worker processes, streaming, in input order, with bounded memory.

Each input is cut into slices (vlprep.inputs.source: byte ranges of a plain JSONL file and slices of the row groups of
a Parquet or Arrow file, which the workers read themselves; the units of any other input, read here) that go to the
workers as chunks; at most `4 × workers` chunks are in flight, so memory does not grow with the file. Results come back
in input order. A worker that dies (segfault, out-of-memory kill, or its watchdog ending it on an image that overran
--image-timeout) breaks the pool: the pool is rebuilt and the lost chunks are re-run one line per task, so only the
line that kills a worker again is reported (I014/V014 for a timeout, W001 otherwise) and the run goes on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from vlprep.inputs.formats import input_slices
from vlprep.inputs.source import Slice, Units
from vlprep.inputs.units import RawLine
from vlprep.records.diagnostics import Diagnostic, RecordResult
from vlprep.run.pipeline import ImageCache, PipelineOptions, process_line
from vlprep.run.watchdog import Watchdog, new_marker_dir, read_marker, timeout_problem

Chunk = tuple[str, Slice]
MAX_LINE_BYTES_DEFAULT = 64 << 20

_PR_SET_PDEATHSIG = 1
_worker_state: dict[str, Any] = {}


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _die_with_parent() -> None:
    """Linux: end this worker when the parent dies (kill -9 included) instead of living on as an orphan."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _init_worker(options: PipelineOptions, counter_factory: Callable[[], Any] | None, marker_dir: str) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group; it is the parent's to handle (it stops the pool). A worker that took it
    # while idle printed a KeyboardInterrupt traceback from its queue read.
    # SIGHUP too (vlprep.cli.errors). SIGTERM gets its default back (the fork inherited the parent's handler, which
    # raises and printed a traceback): the pool ends a broken pool's workers with it, and a worker that ignored it while
    # stuck on a hung image would never end.
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker_state["options"] = options
    _worker_state["images"] = ImageCache(Watchdog(options.image_timeout_s, Path(marker_dir)))
    _worker_state["counter"] = counter_factory() if counter_factory else None


def _run_chunk(chunk: Chunk) -> list[RecordResult]:
    name, part = chunk
    file = Path(name)
    state = _worker_state
    return [process_line(raw, file, state["options"], state["images"], state["counter"]) for raw in part.units()]


def run(files: list[Path], options: PipelineOptions, workers: int, max_line_bytes: int = MAX_LINE_BYTES_DEFAULT,
        counter_factory: Callable[[], Any] | None = None, start: tuple[int, int] = (0, 0)) -> Iterator[RecordResult]:
    """Yield one RecordResult per input unit (inputs.units.RawLine), in input order, from `start` = (file index, units
    of it to skip)."""
    chunks = ((str(file), part) for file, part in input_slices(files, max_line_bytes, start))
    marker_dir = new_marker_dir()
    try:
        yield from _PoolRunner(options, max(1, workers), counter_factory, marker_dir).run(chunks)
    finally:
        shutil.rmtree(marker_dir, ignore_errors=True)


def run_on(engine: str, ray_address: str | None, files: list[Path], options: PipelineOptions, workers: int,
           max_line_bytes: int = MAX_LINE_BYTES_DEFAULT, counter_factory: Callable[[], Any] | None = None,
           start: tuple[int, int] = (0, 0)) -> Iterator[RecordResult]:
    """`run` on the chosen engine: "local" (this module) or "ray" (vlprep.run.ray_engine, same results in the same order)."""
    if engine == "ray":
        from vlprep.run import ray_engine

        return ray_engine.run(files, options, workers, max_line_bytes, counter_factory, start, ray_address)
    return run(files, options, workers, max_line_bytes, counter_factory, start)


class _PoolRunner:
    def __init__(self, options: PipelineOptions, workers: int, counter_factory: Callable[[], Any] | None,
                 marker_dir: str) -> None:
        self._args = (options, counter_factory, marker_dir)
        self._marker_dir = Path(marker_dir)
        self._workers = workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        return ProcessPoolExecutor(self._workers, mp_context=context, initializer=_init_worker, initargs=self._args)

    def run(self, chunks: Iterator[Chunk]) -> Iterator[RecordResult]:
        window: deque[tuple[Chunk, Future[list[RecordResult]]]] = deque()
        try:
            for chunk in chunks:
                try:
                    future = self._pool.submit(_run_chunk, chunk)
                except BrokenProcessPool:  # a worker died since the last result: settle what is in flight first
                    while window:
                        yield from self._drain_one(window)
                    self._restart()
                    future = self._pool.submit(_run_chunk, chunk)
                window.append((chunk, future))
                if len(window) >= 4 * self._workers:
                    yield from self._drain_one(window)
            while window:
                yield from self._drain_one(window)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _drain_one(self, window: deque[tuple[Chunk, Future[list[RecordResult]]]]) -> Iterator[RecordResult]:
        chunk, future = window.popleft()
        try:
            yield from future.result()
            return
        except BrokenProcessPool:
            pass
        lost = [chunk] + [pending for pending, _ in window]
        window.clear()
        self._restart()
        for name, part in lost:
            for raw in part.units():
                yield from self._isolated(name, raw)

    def _isolated(self, name: str, raw: RawLine) -> list[RecordResult]:
        """Run one line alone. A pool breaks when any of its workers dies, also an idle one killed from outside, so a
        line is blamed (W001) only when it breaks a fresh pool twice; a timeout marker blames it (I014/V014) at once."""
        for _ in range(2):
            try:
                return self._pool.submit(_run_chunk, (name, Units([raw]))).result()
            except BrokenProcessPool:
                self._restart()
                marker = read_marker(self._marker_dir, name, raw.number)
                if marker is not None:
                    code, message = timeout_problem(marker)
                    return [self._blamed(name, raw, Diagnostic(code, raw.line, message, name, index=raw.index))]
        return [self._blamed(name, raw, Diagnostic("W001", raw.line, "the worker process died while checking this "
                                                                     "record, twice (crash or out-of-memory kill)",
                                                   name, index=raw.index))]

    @staticmethod
    def _blamed(name: str, raw: RawLine, diagnostic: Diagnostic) -> RecordResult:
        return RecordResult(file=name, line=raw.line, text=_raw_text(raw), number=raw.number, index=raw.index,
                            diagnostics=[diagnostic])

    def _restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()


def _raw_text(raw: RawLine) -> str:
    return raw.data.decode("utf-8", errors="replace") if raw.data is not None else ""
