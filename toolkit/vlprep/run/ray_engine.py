"""The per-record pipeline as Ray tasks (`--engine ray`): the same RecordResults, in the same order, as vlprep.run.engine.

The driver plans tasks and consumes their results in input order, so everything after the per-record pipeline (the
tally, duplicates, the split, shards, rejects, resume state, manifest) is the local engine's code, unchanged:
a task per slice of an input (vlprep.inputs.source, as the local engine's chunks):
- plain JSONL: a byte range of whole lines (at most 128 lines or 4 MB), which the task reads from the file itself
  (the file must be at the same path on every node);
- Parquet / Arrow: at most 128 rows of a row group (record batch), read by the task;
- JSON arrays and compressed inputs (read sequentially only): the driver reads the units (at most 128 or 4 MB) and
  ships them.

Each worker process loads the pipeline state (options and the token counter with its tokenizer) once, from the object
store, on its first task. At most 4 tasks per CPU of the cluster are in flight.

A task whose worker dies (segfault, out-of-memory kill) is retried once by Ray; when it dies again its units are
re-run one per task (each retried once by Ray as well), so only a unit that kills its worker every time is reported:
I014/V014 when the worker's watchdog left a marker for it (an image over --image-timeout, a video over --video-timeout;
seen on the driver's node only), W001 otherwise. Ray Data's operators were not used: an actor pool fails the whole dataset once its restarts are spent,
and the blame has to land on one record.
"""

from __future__ import annotations

import logging
import shutil
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlprep.records.diagnostics import Diagnostic, RecordResult
from vlprep.run.pipeline import ImageCache, PipelineOptions, process_line
from vlprep.inputs.formats import input_slices
from vlprep.inputs.source import Slice, Units
from vlprep.inputs.units import RawLine
from vlprep.run.watchdog import Watchdog, new_marker_dir, read_marker, timeout_problem
from vlprep.errors import UsageError

_WINDOW_PER_CPU = 4


class RayUnavailable(UsageError):
    """Ray is not installed, or the cluster cannot be reached: reported as a usage error."""


@dataclass(frozen=True)
class Task:
    """One unit of work: a slice of `file`."""

    file: str
    part: Slice


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install 'vlprep[ray]'") from None
    return ray


def run(files: list[Path], options: PipelineOptions, workers: int, max_line_bytes: int,
        counter_factory: Callable[[], Any] | None = None, start: tuple[int, int] = (0, 0),
        address: str | None = None) -> Iterator[RecordResult]:
    """engine.run's contract, on Ray: a local instance with `workers` CPUs, or the cluster at `address`."""
    ray = import_ray()
    if address:
        check_reachable(address)
    started = not ray.is_initialized()
    report_stdout = sys.stdout
    sys.stdout = sys.stderr  # Ray's driver prints worker-death notices to sys.stdout, which carries the report: the
    # report's writers hold the real stdout (taken before the run), what Ray prints goes to stderr until it stops
    if started:
        try:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=max(1, workers), include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            sys.stdout = report_stdout
            raise RayUnavailable(f"cannot start or join Ray{f' at {address}' if address else ''}: {error}") from None
    marker_dir = new_marker_dir()
    try:
        state = ray.put((options, counter_factory, marker_dir))
        cpus = int(ray.cluster_resources().get("CPU", workers))
        yield from _Runner(ray, [state], marker_dir, max(1, cpus)).run(
            Task(str(file), part) for file, part in input_slices(files, max_line_bytes, start))
    finally:
        shutil.rmtree(marker_dir, ignore_errors=True)
        if started:
            ray.shutdown()
        sys.stdout = report_stdout


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a cluster address nothing listens at: `ray.init` would retry for minutes."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise RayUnavailable(f"--ray-address {address}: nothing answers there ({error}); start the head node with "
                             f"`ray start --head --port {port}` or check the address") from None


# --- inside the workers --------------------------------------------------------------------------------------------
_worker_state: dict[str, Any] = {}


def _state(ray: Any, holder: list[Any]) -> dict[str, Any]:
    """The pipeline state of this worker process, loaded from the object store on its first task."""
    key = holder[0].hex()
    if _worker_state.get("key") != key:
        options, counter_factory, marker_dir = ray.get(holder[0])
        _worker_state.clear()
        _worker_state.update(key=key, options=options, images=ImageCache(Watchdog(options.image_timeout_s,
                                                                                 Path(marker_dir))),
                             counter=counter_factory() if counter_factory else None)
    return _worker_state


def _process(holder: list[Any], task: Task) -> list[RecordResult]:
    import ray

    state = _state(ray, holder)
    file = Path(task.file)
    return [process_line(raw, file, state["options"], state["images"], state["counter"])
            for raw in task.part.units()]


# --- the driver ----------------------------------------------------------------------------------------------------
class _Runner:
    def __init__(self, ray: Any, holder: list[Any], marker_dir: str, cpus: int) -> None:
        self._ray = ray
        self._holder = holder
        self._marker_dir = Path(marker_dir)
        self._window = _WINDOW_PER_CPU * cpus
        self._remote = ray.remote(num_cpus=1, max_retries=1)(_process)
        self._crashes = _crash_errors(ray.exceptions)

    def _submit(self, task: Task) -> Any:
        return self._remote.remote(self._holder, task)

    def run(self, tasks: Iterator[Task]) -> Iterator[RecordResult]:
        window: deque[tuple[Task, Any]] = deque()
        try:
            for task in tasks:
                window.append((task, self._submit(task)))
                if len(window) >= self._window:
                    yield from self._settle(*window.popleft())
            while window:
                yield from self._settle(*window.popleft())
        finally:
            for _, pending in window:
                self._ray.cancel(pending, force=True)

    def _settle(self, task: Task, future: Any) -> list[RecordResult]:
        try:
            return self._ray.get(future)
        except self._crashes:
            pass
        results: list[RecordResult] = []
        for raw in task.part.units():
            try:
                results.extend(self._ray.get(self._submit(Task(task.file, Units([raw])))))
            except self._crashes:
                results.append(self._blamed(task.file, raw))
        return results

    def _blamed(self, name: str, raw: RawLine) -> RecordResult:
        marker = read_marker(self._marker_dir, name, raw.number)
        if marker is not None:
            code, message = timeout_problem(marker)
            diagnostic = Diagnostic(code, raw.line, message, name, index=raw.index)
        else:
            diagnostic = Diagnostic("W001", raw.line, "the worker process died while checking this record, twice "
                                                      "(crash or out-of-memory kill)", name, index=raw.index)
        text = raw.data.decode("utf-8", errors="replace") if raw.data is not None else ""
        return RecordResult(file=name, line=raw.line, text=text, number=raw.number, index=raw.index,
                            diagnostics=[diagnostic])


def _crash_errors(exceptions: Any) -> tuple[type[BaseException], ...]:
    """What ray.get raises when the worker running a task died (after Ray's retries)."""
    names = ("WorkerCrashedError", "OutOfMemoryError", "NodeDiedError", "LocalRayletDiedError")
    return tuple(getattr(exceptions, name) for name in names if hasattr(exceptions, name))
