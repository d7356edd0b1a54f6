"""Faults of the machine, not the data: every write point of a cache build failed in turn (ENOSPC, EIO), a real full
disk, SIGTERM/SIGHUP, an unwritable --out, an input gone mid-read, and lint to a full stdout. Each ends in one message
and exit 74 (or 128 + the signal), no traceback, no lock file, and a partial build that `--resume` completes to the
same cache as an uninterrupted build.

The injection is installed from the test side, in this process only (the build runs in-process): the file opens for
writing, writes, renames and folder creations of the build's own files, and pyarrow's stream writers.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from child_process import signal_build_after_shards, start_vlprep, vlprep_launcher
from test_hardening import demo_lines, write_lines
from vlprep.cli.app import app
from vlprep.counting import counter

runner = CliRunner()
EXIT_MACHINE = 74


class Faults:
    """Counts the write points under `root` in this process and fails the `fail_at`-th (1-based) with `number`."""

    def __init__(self, root: Path) -> None:
        self.root, self.pid = str(root), os.getpid()
        self.fail_at, self.number, self.seen = 0, errno.ENOSPC, 0

    def point(self, path: Any) -> None:
        if os.getpid() != self.pid or not str(path).startswith(self.root):
            return
        self.seen += 1
        if self.seen == self.fail_at:
            raise OSError(self.number, os.strerror(self.number), str(path))


class _File:
    """A file opened for writing whose writes are write points."""

    def __init__(self, handle: Any, path: Any, faults: Faults) -> None:
        self._handle, self._path, self._faults = handle, path, faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _File:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._handle)

    def write(self, data: Any) -> int:
        self._faults.point(self._path)
        return self._handle.write(data)


class _Stream:
    """pyarrow's IPC stream writer, whose batches and close are write points."""

    def __init__(self, writer: Any, path: Any, faults: Faults) -> None:
        self._writer, self._path, self._faults = writer, path, faults

    def write_batch(self, batch: Any) -> None:
        self._faults.point(self._path)
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._faults.point(self._path)
        self._writer.close()


@pytest.fixture
def faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Faults:
    plan = Faults(tmp_path)
    real_open, new_stream = io.open, pa.ipc.new_stream
    real_replace, real_rename, real_mkdir = os.replace, os.rename, os.mkdir

    def opened(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if not any(flag in mode for flag in "wax+"):
            return real_open(file, mode, *args, **kwargs)
        plan.point(file)
        return _File(real_open(file, mode, *args, **kwargs), file, plan)

    def stream(sink: Any, schema: Any, **kwargs: Any) -> Any:
        plan.point(sink)
        return _Stream(new_stream(sink, schema, **kwargs), sink, plan)

    def renamed(real: Any) -> Any:
        def move(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
            plan.point(target)
            real(source, target, *args, **kwargs)
        return move

    def made(path: Any, *args: Any, **kwargs: Any) -> None:
        if not os.path.exists(path):  # an existing folder is no write (Path.mkdir(exist_ok=True) tries it anyway)
            plan.point(path)
        real_mkdir(path, *args, **kwargs)

    # the build loads its tokenizer each time (a second): loaded once here, the walk of ~60 builds stays short
    loaded: dict[str, Any] = {}
    load = counter.counting_tokenizer
    monkeypatch.setattr(counter, "counting_tokenizer", lambda model_dir, *rest: loaded.setdefault(
        str(model_dir), loaded.get(str(model_dir)) or load(model_dir, *rest)))
    monkeypatch.setattr(builtins, "open", opened)
    monkeypatch.setattr(io, "open", opened)
    monkeypatch.setattr(pa.ipc, "new_stream", stream)
    monkeypatch.setattr(os, "replace", renamed(real_replace))
    monkeypatch.setattr(os, "rename", renamed(real_rename))
    monkeypatch.setattr(os, "mkdir", made)
    return plan


def partial(out: Path) -> Path:
    return out.parent / f".{out.name}.vlprep-partial"


def lock(out: Path) -> Path:
    return out.parent / f".{out.name}.vlprep-lock"


def args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["cache", str(data), "--out", str(out), "-q", "--shard-lines", "5", "--workers", "1", "--val-ratio", "0.2",
            "--verify", "0", *extra]


def cache_files(out: Path) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {"data_files": manifest["data_files"], "counts": manifest["counts"],
            "rejects": (out / "rejects.jsonl").read_text()}


def assert_machine_fault(result: Any, out: Path, cause: str) -> None:
    assert result.exit_code == EXIT_MACHINE, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert f"[{cause}]" in text and "fix:" in text and f"No cache was written to {out}" in text, text
    assert not lock(out).exists() and not out.exists()


@pytest.mark.slow  # about a hundred in-process builds
def test_every_write_point_of_a_build_fails_cleanly_and_resumes_to_the_same_cache(
        faults: Faults, tmp_path: Path, embedded_processor: Any) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(10))
    baseline = tmp_path / "baseline"
    faults.seen = 0
    result = runner.invoke(app, args(data, baseline))
    assert result.exit_code in (0, 1), result.output
    expected, points = cache_files(baseline), faults.seen
    assert points > 20  # lock, state, journal, shards (2), rejects, assembly, manifest, the final rename
    print(f"{points} write points")
    out = tmp_path / "arrow"
    for index in range(1, points + 1):
        faults.fail_at, faults.number, faults.seen = index, (errno.ENOSPC, errno.EIO)[index % 2], 0
        failed = runner.invoke(app, args(data, out))
        assert_machine_fault(failed, out, errno.errorcode[faults.number])
        resumable = (partial(out) / "state.pkl").is_file()
        assert ("--resume" in " ".join(failed.output.split())) == resumable
        faults.fail_at = 0
        again = runner.invoke(app, args(data, out, *(["--resume"] if resumable else [])))
        assert again.exit_code == result.exit_code, (index, again.output)
        assert cache_files(out) == expected, index
        assert not partial(out).exists() and not lock(out).exists()
        shutil.rmtree(out)


@pytest.mark.signals
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_build_like_ctrl_c(sig: int, tmp_path: Path, embedded_processor: Any) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(400))
    out = tmp_path / "arrow"
    command = [str(data), "-q", "--shard-lines", "40", "--workers", "1", "--verify", "0"]
    code, stderr = signal_build_after_shards(out, command, shards=2, sig=sig)
    assert code == 128 + sig, stderr
    text = " ".join(stderr.split())
    assert f"stopped by {signal.Signals(sig).name}" in text and "--resume" in text and "Traceback" not in text
    assert not lock(out).exists() and (partial(out) / "state.pkl").is_file()
    looked = runner.invoke(app, ["inspect", str(out)])  # says what the folder is and that --resume completes it
    assert looked.exit_code == 1 and "unfinished build" in looked.output and "--resume" in looked.output
    finished = subprocess.run([*vlprep_launcher(), "cache", *command, "--out", str(out),
                               "--resume"], capture_output=True, text=True)
    assert finished.returncode in (0, 1), finished.stderr
    whole = tmp_path / "whole"
    runner.invoke(app, ["cache", *command, "--out", str(whole)])
    assert cache_files(out) == cache_files(whole)


@pytest.mark.signals
@pytest.mark.slow
def test_sigterm_stops_lint_without_a_traceback(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(300_000))  # about 30 s of work: the signal lands mid-run
    child = start_vlprep("lint", data, "--workers", "1")
    try:
        import time
        time.sleep(3)
        os.killpg(child.pid, signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stderr


def test_lint_to_a_full_disk_is_one_message_and_exit_74(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(14))
    with open("/dev/full", "w") as full:
        done = subprocess.run([*vlprep_launcher(), "lint", str(data), "-q", "--format",
                               "json"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == EXIT_MACHINE, done.stderr
    assert "No space left on device at stdout (/dev/full) [ENOSPC]" in done.stderr and "Traceback" not in done.stderr


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real small (or read-only) file system at `folder`, where this machine lets the test mount one."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): the injected faults of "
                    "test_every_write_point_... stand in for a real full disk")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_real_full_disk_stops_cleanly_and_resumes_once_there_is_room(tmp_path: Path, embedded_processor: Any) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(3000))
    command = ["--shard-lines", "500"]
    reference = tmp_path / "reference"
    assert runner.invoke(app, args(data, reference, *command)).exit_code == 1
    with tmpfs(tmp_path / "tiny", "size=1m") as tiny:  # clearly too small: refused up front, with the figures
        refused = runner.invoke(app, args(data, tiny / "arrow", *command))
        assert refused.exit_code == EXIT_MACHINE and "MB free" in refused.output and "did not start" in refused.output
        assert not any(tiny.iterdir())
    with tmpfs(tmp_path / "small", "size=2m") as small:  # passes the estimate (a lower bound), fills while assembling
        out = small / "arrow"
        full = runner.invoke(app, args(data, out, *command))
        assert_machine_fault(full, out, "ENOSPC")
        assert "No space left on device" in full.output and "--resume" in " ".join(full.output.split())
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)  # a bigger disk
        resumed = runner.invoke(app, args(data, out, *command, "--resume"))
        assert resumed.exit_code == 1, resumed.output
        assert cache_files(out) == cache_files(reference)
        assert sorted(path.name for path in small.iterdir()) == ["arrow"]


def test_an_input_deleted_mid_read_is_one_message_and_resumes_once_restored(
        tmp_path: Path, embedded_processor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from vlprep.cache import build

    data = write_lines(tmp_path / "data.jsonl", demo_lines(10))
    aside = tmp_path / "aside.jsonl"
    describe = build.describe_inputs

    def then_deleted(*how: Any) -> Any:  # the input goes after it was checked and counted, before its records are read
        described = describe(*how)
        if data.exists():  # called for the train files, then for the (no) val files
            data.rename(aside)
        return described

    monkeypatch.setattr(build, "describe_inputs", then_deleted)
    out = tmp_path / "arrow"
    gone = runner.invoke(app, args(data, out))
    assert_machine_fault(gone, out, "ENOENT")
    assert str(data) in " ".join(gone.output.split()).replace(" ", "") or data.name in gone.output
    monkeypatch.setattr(build, "describe_inputs", describe)
    aside.rename(data)
    resumed = runner.invoke(app, args(data, out, "--resume"))
    assert resumed.exit_code in (0, 1), gone.output + resumed.output
    assert (out / "manifest.json").is_file()


def test_an_unwritable_out_is_one_message(tmp_path: Path, embedded_processor: Any) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(4))
    with tmpfs(tmp_path / "readonly", "ro,size=1m") as readonly:
        out = readonly / "arrow"
        result = runner.invoke(app, args(data, out))
    assert result.exit_code == EXIT_MACHINE, result.output
    text = " ".join(result.output.split())
    assert "[EROFS]" in text and "write somewhere writable" in text and "Traceback" not in text
