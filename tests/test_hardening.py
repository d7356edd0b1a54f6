"""Hardening: hung image checks, killed workers, interrupted and resumed cache builds, the output lock, tampered
caches, paths escaping --image-root, and model directories that ship code.

Runs that may hang or are to be killed run `vlprep` as a subprocess (the console script beside sys.executable) in its
own process group, so a test can always end every process it started; the rest use the CLI in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from child_process import as_from_a_terminal
from support import BIN, FIXTURES, OFFLINE, codes_by_line, edit_json, marker_module, runner
from vlprep.cli.app import app

VLPREP = BIN / "vlprep"


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def demo_lines(count: int) -> list[str]:
    """`count` records cycled from fixtures/demo.jsonl, each with unique text and absolute image references."""
    records = [json.loads(line) for line in (FIXTURES / "demo.jsonl").read_text().splitlines()]

    def absolute(ref: str) -> str:
        return ref if ref.startswith(("data:", "/", "http://", "https://")) else str(FIXTURES / ref)

    lines = []
    for index in range(count):
        record = json.loads(json.dumps(records[index % len(records)]))
        if "images" in record:
            record["images"] = [absolute(ref) for ref in record["images"]]
        for turn in record["messages"]:
            if isinstance(turn["content"], str):
                turn["content"] += f" (#{index})"
                continue
            for part in turn["content"]:
                if part.get("type") == "text":
                    part["text"] += f" (#{index})"
                elif part.get("type") == "image":
                    part["image"] = absolute(part["image"])
                elif part.get("type") == "image_url":
                    part["image_url"]["url"] = absolute(part["image_url"]["url"])
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def clean_line(image: str, index: int) -> str:
    return json.dumps({"messages": [{"role": "user", "content": f"<image>Picture {index}?"},
                                    {"role": "assistant", "content": f"Answer {index}."}], "images": [image]})


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def start(args: list[str], out_dir: Path, name: str) -> subprocess.Popen[bytes]:
    """`vlprep ARGS` in its own process group, stdout/stderr to files (a pipe could fill and stall it)."""
    stdout = open(out_dir / f"{name}.out", "wb")
    stderr = open(out_dir / f"{name}.err", "wb")
    with stdout, stderr:  # os.environ as it is now (conftest's session VLPREP_CACHE_DIR included); TMPDIR here, so
        # that what a killed run leaves in its temporary folder (watchdog markers) stays in the test's folder
        process = subprocess.Popen([str(VLPREP), *args], stdout=stdout, stderr=stderr, **as_from_a_terminal(),
                                   env={**os.environ, **OFFLINE, "TMPDIR": str(out_dir)})
    process.stderr_path = out_dir / f"{name}.err"  # type: ignore[attr-defined]
    return process


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def finish(process: subprocess.Popen[bytes], out_dir: Path, name: str, timeout: float = 180) -> tuple[int, str, str]:
    """Wait for the process (killing its whole group on timeout); return (exit code, stdout, stderr)."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        process.wait()
        pytest.fail(f"vlprep did not finish within {timeout} s: {(out_dir / f'{name}.err').read_text()[-2000:]}")
    kill_group(process)  # workers orphaned by a killed parent must not outlive the test
    return code, (out_dir / f"{name}.out").read_text(), (out_dir / f"{name}.err").read_text()


def run_vlprep(args: list[str], out_dir: Path, name: str, timeout: float = 180) -> tuple[int, str, str]:
    return finish(start(args, out_dir, name), out_dir, name, timeout)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, process: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"vlprep exited ({process.returncode}) before {what}: "
                        f"{process.stderr_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def assert_no_crash(result: Any) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output[-3000:]}")
    assert "Traceback" not in result.output, result.output[-3000:]


def one_line(text: str) -> str:
    """Rich wraps stderr at the terminal width; compare messages with whitespace collapsed."""
    return " ".join(text.split())


@contextmanager
def fifo_failsafe(fifo: Path, after_s: float) -> Iterator[None]:
    """Should vlprep hang on the FIFO for `after_s` seconds, open its write end so the reader gets EOF: the test then
    fails on its assertions instead of hanging the suite."""
    stop = threading.Event()

    def release() -> None:
        if stop.wait(after_s):
            return
        while not stop.wait(0.1):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def fifo_spy(fifo: Path) -> Iterator[list[float]]:
    """Records the times at which some process had the FIFO open for reading (or was blocked opening it), and lets
    it go (EOF) so that nothing hangs."""
    opened: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.005):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                opened.append(time.monotonic())
            except OSError:  # ENXIO: no process has it open for reading
                pass

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join()


def fifo_open_blocks_visibly() -> bool:
    """Whether /proc/PID/wchan shows a process blocked opening a FIFO as `wait_for_partner` on this kernel."""
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"vlprep-wchan-probe-{os.getpid()}"
    os.mkfifo(probe)
    try:
        child = subprocess.Popen([sys.executable, "-c", f"open({str(probe)!r}, 'rb')"])
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if wchan(child.pid) == "wait_for_partner":
                    return True
                time.sleep(0.02)
            return False
        finally:
            child.kill()
            child.wait()
    finally:
        probe.unlink()


def wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------------------------
# A hung image check is reported (I014) and the run completes
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def hang_corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Four records, the second referencing hang.jpg: a FIFO nobody writes to, so opening it blocks forever."""
    shutil.copy(FIXTURES / "images" / "photo.jpg", tmp_path / "photo.jpg")
    fifo = tmp_path / "hang.jpg"
    os.mkfifo(fifo)
    lines = [clean_line("photo.jpg", 1), clean_line("hang.jpg", 2), clean_line("photo.jpg", 3),
             clean_line("photo.jpg", 4)]
    return write_lines(tmp_path / "data.jsonl", lines), fifo


@pytest.mark.signals
def test_hung_image_check_is_reported_and_lint_completes(hang_corpus: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = hang_corpus
    started = time.monotonic()
    code, out, err = run_vlprep(["lint", str(data), "--format", "json", "-q", "--image-timeout", "0.5",
                                 "--workers", "2"], tmp_path, "lint", timeout=120)
    assert code == 1, err
    report = json.loads(out)
    assert codes_by_line(report) == {2: {"I014"}}
    assert report["summary"]["records"] == 4
    assert "Traceback" not in err
    assert time.monotonic() - started < 60


def cache_past_a_hung_check(data: Path, fifo: Path, out: Path, *options: str) -> tuple[list[Any], list[int]]:
    """`vlprep cache` over a corpus with a FIFO that hangs its check: (rejected line, codes) and the cached lines."""
    from datasets import load_from_disk

    with fifo_failsafe(fifo, after_s=90):
        result = runner.invoke(app, ["cache", str(data), "--out", str(out), "-q", "--verify", "0", "--workers", "2",
                                     *options])
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().split("\n") if line]
    return [(entry["line"], entry["codes"]) for entry in rejects], load_from_disk(str(out / "train"))["vlprep_line"]


def test_hung_image_check_is_rejected_and_cache_completes(hang_corpus: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "arrow"
    rejected, cached = cache_past_a_hung_check(*hang_corpus, out, "--image-timeout", "0.5")
    assert (rejected, cached) == ([(2, ["I014"])], [1, 3, 4])
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert (counts["train"], counts["val"], counts["rejected"], counts["input_lines"]) == (3, 0, 1, 4)


@pytest.fixture
def hang_video_corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Three records: a clip, a video that is a FIFO nobody writes to (the demuxer's open blocks forever), an image."""
    from video_fixtures import write_clip

    write_clip(tmp_path / "clip.mp4", seconds=1, fps=10, width=64, height=48)
    shutil.copy(FIXTURES / "images" / "photo.jpg", tmp_path / "photo.jpg")
    fifo = tmp_path / "hang.mp4"
    os.mkfifo(fifo)

    lines = [video_line("clip.mp4", 1), video_line("hang.mp4", 2), clean_line("photo.jpg", 3)]
    return write_lines(tmp_path / "data.jsonl", lines), fifo


@pytest.mark.signals
def test_hung_video_check_is_reported_and_lint_completes(hang_video_corpus: tuple[Path, Path], tmp_path: Path
                                                         ) -> None:
    """Video checks run under the same watchdog as image checks, with their own limit (--video-timeout): V014."""
    data, fifo = hang_video_corpus
    with fifo_failsafe(fifo, after_s=90):
        code, out, err = run_vlprep(["lint", str(data), "--format", "json", "-q", "--video-timeout", "0.5",
                                     "--workers", "2"], tmp_path, "lint", timeout=120)
    assert code == 1, err
    report = json.loads(out)
    assert codes_by_line(report) == {2: {"V014"}}
    assert "hang.mp4 took longer than --video-timeout 0.5 s" in report["diagnostics"][0]["message"]
    assert report["summary"]["records"] == 3
    assert "Traceback" not in err


def test_hung_video_check_is_rejected_and_cache_completes(hang_video_corpus: tuple[Path, Path], tmp_path: Path
                                                          ) -> None:
    rejected, cached = cache_past_a_hung_check(*hang_video_corpus, tmp_path / "arrow", "--video-timeout", "0.5")
    assert (rejected, cached) == ([(2, ["V014"])], [1, 3])


@pytest.mark.signals
def test_marker_folders_of_killed_runs_are_removed_by_the_next_run(hang_corpus: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    """A run killed with SIGKILL cannot remove its watchdog folder; the next run removes it (and no live run's)."""
    from vlprep.run.watchdog import MARKER_DIR_PREFIX

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stale = tmp_path / f"{MARKER_DIR_PREFIX}{gone}-killed"  # start() makes tmp_path the run's temporary folder
    stale.mkdir()
    (stale / "leftover.timeout").write_text("{}")
    live = tmp_path / f"{MARKER_DIR_PREFIX}{os.getpid()}-running"
    live.mkdir()
    data, _ = hang_corpus
    code, _, err = run_vlprep(["lint", str(data), "-q", "--image-timeout", "0.5", "--workers", "1"], tmp_path, "lint",
                              timeout=120)
    assert code == 1, err
    assert not stale.exists()
    assert live.is_dir()
    assert sorted(path.name for path in tmp_path.glob(f"{MARKER_DIR_PREFIX}*")) == [live.name]  # its own is gone


# ---------------------------------------------------------------------------------------------------------------
# Workers killed by a signal: nothing is lost; a line that kills its worker every time is W001
# ---------------------------------------------------------------------------------------------------------------


def _without_elapsed(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "summary": {**report["summary"], "elapsed_s": 0}}


def _fifo_holders(process: subprocess.Popen[bytes], fifo: Path) -> list[psutil.Process]:
    """The child processes of vlprep that have the FIFO open."""
    holders = []
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            links = [os.readlink(entry) for entry in Path(f"/proc/{child.pid}/fd").iterdir()]
        except OSError:
            continue
        if str(fifo) in links:
            holders.append(child)
    return holders


@pytest.mark.signals
def test_worker_killed_while_the_run_waits_loses_no_line(tmp_path: Path) -> None:
    """A healthy worker is killed at a known moment: while the run waits for a chunk stuck on an image (a FIFO that the
    test holds open without writing). Every lost line is re-run; the stuck one is then fed a real JPEG through the
    FIFO. The report must equal the one of an undisturbed run over the same data (with hang.jpg a plain file)."""
    hang = tmp_path / "hang.jpg"
    lines = demo_lines(3000)
    lines.insert(1000, clean_line(str(hang), 0))
    data = write_lines(tmp_path / "data.jsonl", lines)
    args = ["lint", str(data), "--format", "json", "-q", "--image-timeout", "600", "--workers", "2"]
    photo = (FIXTURES / "images" / "photo.jpg").read_bytes()
    hang.write_bytes(photo)
    _, reference_out, _ = run_vlprep(args, tmp_path, "reference")
    hang.unlink()
    os.mkfifo(hang)

    process = start(args, tmp_path, "killed")
    writer = -1
    try:
        def reader_waits() -> bool:  # succeeds once a worker is blocked opening the FIFO; it then blocks reading
            nonlocal writer
            try:
                writer = os.open(hang, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return False
            return True

        wait_for(reader_waits, 60, "a worker to open the FIFO", process)
        wait_for(lambda: bool(_fifo_holders(process, hang)), 30, "the worker's open() to return", process)
        stuck = _fifo_holders(process, hang)
        time.sleep(1.0)  # the other worker fills the window and idles; the run waits for the stuck chunk
        healthy = [child for child in psutil.Process(process.pid).children() if child not in stuck]
        assert len(stuck) == 1 and healthy, (stuck, healthy)
        healthy[0].send_signal(signal.SIGKILL)
        psutil.wait_procs(stuck, timeout=30)  # the broken pool's workers are ended; the stuck line is re-run alone
        wait_for(lambda: bool(_fifo_holders(process, hang)), 60, "the stuck line to be re-run", process)
        os.write(writer, photo)
    finally:
        if writer >= 0:
            os.close(writer)
        code, out, err = finish(process, tmp_path, "killed", timeout=120)
    assert "Traceback" not in err
    report = json.loads(out)
    assert code == 1 and report["summary"]["records"] == 3001
    assert _without_elapsed(report) == _without_elapsed(json.loads(reference_out))


@pytest.mark.signals
def test_worker_killed_while_results_are_written_loses_no_line(tmp_path: Path) -> None:
    """A worker is killed while the run is blocked writing its report (stdout is a pipe the test does not read yet),
    that is between two chunks: deterministic for the race a random kill hits now and then."""
    count = 30_000
    data = write_lines(tmp_path / "data.jsonl", demo_lines(count))
    args = ["lint", str(data), "--format", "json", "-q", "--fast", "--workers", "2"]
    _, reference_out, _ = run_vlprep(args, tmp_path, "reference")

    with open(tmp_path / "killed.err", "wb") as stderr:
        process = subprocess.Popen([str(VLPREP), *args], stdout=subprocess.PIPE, stderr=stderr,
                                   env={**os.environ, **OFFLINE, "TMPDIR": str(tmp_path)}, **as_from_a_terminal())
    try:
        wait_for(lambda: len(psutil.Process(process.pid).children()) == 2, 60, "the workers", process)
        deadline = time.monotonic() + 5  # the report is over 1 MB: the 64 KiB pipe is full within milliseconds
        while "pipe" not in wchan(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        psutil.Process(process.pid).children()[0].send_signal(signal.SIGKILL)
        time.sleep(0.5)
        out, _ = process.communicate(timeout=120)
    finally:
        kill_group(process)
        process.wait()
    err = (tmp_path / "killed.err").read_text()
    assert "Traceback" not in err, err[-2000:]
    report = json.loads(out)
    assert report["summary"]["records"] == count
    assert process.returncode == (1 if report["summary"]["by_severity"]["error"] else 0)
    assert _without_elapsed(report) == _without_elapsed(json.loads(reference_out))


def video_line(video: str, index: int) -> str:
    return json.dumps({"messages": [{"role": "user", "content": f"<video>Clip {index}?"},
                                    {"role": "assistant", "content": f"Answer {index}."}], "videos": [video]})


def kill_workers_blocked_on_a_fifo(process: subprocess.Popen[Any], precise: bool = True
                                   ) -> tuple[threading.Thread, list[int]]:
    """A thread that SIGKILLs every descendant of `process` blocked opening a FIFO (kernel wait channel
    `wait_for_partner`; with precise=False, every one alive for more than 2 s) until `process` ends; the pids killed."""
    kills: list[int] = []

    def killer() -> None:
        while process.poll() is None:
            try:
                children = psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    doomed = (wchan(child.pid) == "wait_for_partner" if precise
                              else time.time() - child.create_time() > 2.0)
                    if doomed:
                        child.send_signal(signal.SIGKILL)
                        kills.append(child.pid)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread, kills


@pytest.mark.parametrize("kind", ["image", "video"])
@pytest.mark.signals
def test_line_that_kills_its_worker_every_time_is_w001(kind: str, tmp_path: Path) -> None:
    """Deterministic variant of "kill whatever worker takes long": a thread kills exactly the worker processes that are
    blocked opening the FIFO (kernel wait channel `wait_for_partner`), every time one is, and no other. The image
    and video timeouts are far away, so only a crash can end those checks. Where the kernel hides wait channels,
    workers alive for more than 2 s are killed instead (the healthy ones finish in well under a second)."""
    shutil.copy(FIXTURES / "images" / "photo.jpg", tmp_path / "photo.jpg")
    if kind == "image":
        hang = clean_line("hang.jpg", 4)
    else:
        from video_fixtures import write_clip

        write_clip(tmp_path / "clip.mp4", seconds=1, fps=10, width=64, height=48)
        hang = video_line("hang.mp4", 4)
    os.mkfifo(tmp_path / ("hang.jpg" if kind == "image" else "hang.mp4"))
    data = write_lines(tmp_path / "data.jsonl", [clean_line("photo.jpg", 1), clean_line("photo.jpg", 2),
                                                 video_line("clip.mp4", 3) if kind == "video"
                                                 else clean_line("photo.jpg", 3), hang])
    precise = fifo_open_blocks_visibly()
    process = start(["lint", str(data), "--format", "json", "-q", "--image-timeout", "600", "--video-timeout", "600",
                     "--workers", "2"], tmp_path, "lint")
    thread, kills = kill_workers_blocked_on_a_fifo(process, precise)
    code, out, err = finish(process, tmp_path, "lint", timeout=120)
    thread.join()
    report = json.loads(out)
    assert code == 1, err
    assert codes_by_line(report) == {4: {"W001"}}
    assert report["summary"]["records"] == 4
    assert len(kills) >= 2, "the line's worker is killed in its chunk and again when the line is re-run alone"
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------------------------
# Resumable cache builds
# ---------------------------------------------------------------------------------------------------------------

RESUME_LINES = 2000


@pytest.fixture(scope="module")
def resume_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lines(tmp_path_factory.mktemp("resume-input") / "data.jsonl", demo_lines(RESUME_LINES))


def resume_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["cache", str(data), "--out", str(out), "-q", "--shard-lines", "200", "--workers", "1",
            "--val-ratio", "0.1", "--verify", "0", *extra]


@dataclass
class Snapshot:
    manifest: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    rejects: str


def snapshot(out: Path) -> Snapshot:
    from datasets import load_from_disk

    rows = {split: load_from_disk(str(out / split)).to_list() if (out / split).exists() else [] for split in
            ("train", "val")}
    return Snapshot(json.loads((out / "manifest.json").read_text()), rows, (out / "rejects.jsonl").read_text())


@pytest.fixture(scope="module")
def reference_cache(resume_input: Path, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    out = tmp_path_factory.mktemp("resume-reference") / "arrow"
    result = runner.invoke(app, resume_args(resume_input, out))
    assert_no_crash(result)
    reference = snapshot(out)
    counts = reference.manifest["counts"]
    assert result.exit_code == (1 if counts["rejected"] else 0)
    assert counts["input_lines"] == RESUME_LINES and counts["train"] and counts["val"] and counts["rejected"]
    return reference


def journal(out: Path) -> list[dict[str, Any]]:
    path = out.parent / f".{out.name}.vlprep-partial" / "journal.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    except FileNotFoundError:
        return []


def assert_same_cache(resumed: Snapshot, reference: Snapshot) -> None:
    assert resumed.rows == reference.rows
    assert resumed.rejects == reference.rejects
    for key in ("counts", "lengths", "data_files", "rejects_by_code", "warnings_by_code", "inputs", "split"):
        assert resumed.manifest[key] == reference.manifest[key], key


@pytest.mark.signals
def test_interrupted_builds_resume_to_the_same_cache(resume_input: Path, reference_cache: Snapshot,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "arrow"
    args = resume_args(resume_input, out)
    partial = tmp_path / ".arrow.vlprep-partial"

    # 1. kill -9 right after the first shard is complete (the whole process group: see the lock tests for why)
    process = start(args, tmp_path, "run1")
    wait_for(lambda: len(journal(out)) >= 2, 180, "the first complete shard", process)
    kill_group(process)
    finish(process, tmp_path, "run1")
    done = journal(out)[-1]["shards"]
    assert partial.is_dir() and not out.exists()

    # 2. --resume, then kill -9 in the middle of a shard
    process = start([*args, "--resume"], tmp_path, "run2")
    wait_for(lambda: journal(out)[-1]["shards"] > done, 180, "a resumed shard", process)
    time.sleep(0.03)
    kill_group(process)
    finish(process, tmp_path, "run2")
    entries = [entry["shards"] for entry in journal(out)]
    assert entries == sorted(set(entries)), "a resumed build continues from its last complete shard, not from 0"
    done = entries[-1]
    assert not out.exists()

    # 3. --resume, then Ctrl-C (SIGINT to the process group, as a terminal sends it)
    process = start([*args, "--resume"], tmp_path, "run3")
    wait_for(lambda: journal(out)[-1]["shards"] > done, 180, "another resumed shard", process)
    kill_group(process, signal.SIGINT)
    code, _, err = finish(process, tmp_path, "run3", timeout=120)
    assert code == 130, err
    assert "--resume" in one_line(err) and "Traceback" not in err
    assert partial.is_dir() and not out.exists()

    # 4. --resume with other settings is refused and leaves the partial build alone
    result = runner.invoke(app, [*args, "--resume", "--seed", "7"])
    assert result.exit_code == 2, result.output
    assert "differ" in one_line(result.output)
    assert partial.is_dir()

    # 5. --resume to the end: the same rows, rejects and manifest as the uninterrupted build
    result = runner.invoke(app, [*args, "--resume"])
    assert_no_crash(result)
    assert result.exit_code == 1, result.output  # the demo records include rejected ones
    assert not partial.exists()
    assert_same_cache(snapshot(out), reference_cache)


def test_resume_with_nothing_to_resume_is_a_usage_error(resume_input: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, resume_args(resume_input, tmp_path / "arrow", "--resume"))
    assert result.exit_code == 2, result.output
    assert "no interrupted build" in one_line(result.output)
    assert not (tmp_path / "arrow").exists()


@pytest.mark.parametrize("interrupt", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
@pytest.mark.signals
def test_build_interrupted_while_assembling_resumes(interrupt: int, resume_input: Path, tmp_path: Path) -> None:
    data = write_lines(tmp_path / "small.jsonl", resume_input.read_text().splitlines()[:400])
    out = tmp_path / "arrow"
    args = resume_args(data, out)
    process = start(args, tmp_path, "run")
    assembling = tmp_path / ".arrow.vlprep-partial" / "cache"
    wait_for(assembling.exists, 180, "the assembly step", process)
    kill_group(process, interrupt)
    code, _, err = finish(process, tmp_path, "run")
    assert not out.exists()
    if interrupt == signal.SIGINT:
        assert code == 130 and "--resume" in one_line(err), err
    result = runner.invoke(app, [*args, "--resume"])
    assert_no_crash(result)
    assert result.exit_code in (0, 1), result.output
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["train"] + counts["val"] + counts["rejected"] == counts["input_lines"] == 400


# ---------------------------------------------------------------------------------------------------------------
# The output lock
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class LockStory:
    contended: Any  # a second build while the first holds the lock
    orphans: list[int]  # worker processes still alive after `kill -9` of the first build's main process
    after_parent_killed: Any  # a new build then
    after_all_killed: Any  # a new build once every process of the first build is dead
    out: Path


@pytest.fixture(scope="module")
def lock_story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockStory]:
    """One long build, interrupted: contention while it runs, then kill -9 of its main process, then of the rest."""
    from vlprep.counting.processor import load_processor

    load_processor()  # in-process builds below must not spend seconds loading it while the first build runs
    tmp = tmp_path_factory.mktemp("lock")
    data = write_lines(tmp / "big.jsonl", demo_lines(60_000))  # runs long past the probes below
    small = write_lines(tmp / "small.jsonl", demo_lines(14))
    out = tmp / "arrow"
    quick = ["-q", "--verify", "0", "--workers", "1"]
    process = start(["cache", str(data), "--out", str(out), "-q", "--verify", "0", "--workers", "2"], tmp, "holder")
    try:
        lock, partial = tmp / ".arrow.vlprep-lock", tmp / ".arrow.vlprep-partial"
        wait_for(lambda: lock.exists() and partial.exists() and bool(psutil.Process(process.pid).children()), 180,
                 "the first build to take the lock and start its workers", process)
        contended = runner.invoke(app, ["cache", str(small), "--out", str(out), *quick])
        workers = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGKILL)  # kill -9 PID: the main process only, as the OOM killer would
        process.wait()
        time.sleep(1.0)
        orphans = [worker.pid for worker in workers if _alive(worker)]
        after_parent_killed = runner.invoke(app, ["cache", str(small), "--out", str(out), *quick])
        kill_group(process)
        psutil.wait_procs(workers, timeout=10)
        after_all_killed = runner.invoke(app, ["cache", str(small), "--out", str(out), "--force", *quick])
    finally:
        kill_group(process)
    yield LockStory(contended, orphans, after_parent_killed, after_all_killed, out)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.signals
def test_second_build_on_the_same_folder_is_refused_while_the_first_runs(lock_story: LockStory) -> None:
    assert lock_story.contended.exit_code == 2, lock_story.contended.output
    assert "is being built" in one_line(lock_story.contended.output)


@pytest.mark.signals
def test_lock_of_a_killed_build_does_not_block_a_new_one(lock_story: LockStory) -> None:
    result = lock_story.after_all_killed
    assert_no_crash(result)
    assert result.exit_code == 1, result.output  # the demo records include rejected ones
    counts = json.loads((lock_story.out / "manifest.json").read_text())["counts"]
    assert counts["input_lines"] == 14


@pytest.mark.signals
def test_lock_is_released_when_the_main_process_is_killed(lock_story: LockStory) -> None:
    result = lock_story.after_parent_killed
    assert result.exit_code != 2, f"orphaned workers {lock_story.orphans}: {one_line(result.output)}"


# ---------------------------------------------------------------------------------------------------------------
# Tampered caches
# ---------------------------------------------------------------------------------------------------------------


def test_inspect_refuses_a_modified_or_extended_cache(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(14))
    out = tmp_path / "arrow"
    assert runner.invoke(app, ["cache", str(data), "--out", str(out), "-q", "--verify", "0", "--workers", "1"]
                         ).exit_code == 1

    def inspect() -> Any:
        result = runner.invoke(app, ["inspect", str(out)])
        assert_no_crash(result)
        return result

    assert inspect().exit_code == 0
    arrow = out / "train" / "data-00000-of-00001.arrow"
    original = arrow.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    arrow.write_bytes(bytes(flipped))
    result = inspect()
    assert result.exit_code == 1 and "checksums" in one_line(result.output), result.output
    arrow.write_bytes(original)
    assert inspect().exit_code == 0

    extra = out / "train" / "data-00001-of-00001.arrow"
    shutil.copy(arrow, extra)
    result = inspect()
    assert result.exit_code == 1 and "checksums" in one_line(result.output), result.output
    extra.unlink()
    (out / "extra").mkdir()
    shutil.copy(arrow, out / "extra" / "data.arrow")
    result = inspect()
    assert result.exit_code == 1 and "checksums" in one_line(result.output), result.output
    shutil.rmtree(out / "extra")

    for metadata in ("dataset_info.json", "state.json"):  # the features and file list load_from_disk follows
        path = out / "train" / metadata
        original_text = path.read_text()
        path.write_text(original_text.replace('"', "'", 1) if metadata == "state.json" else original_text + " ")
        result = inspect()
        assert result.exit_code == 1 and f"train/{metadata}" in one_line(result.output), result.output
        path.write_text(original_text)
    assert inspect().exit_code == 0


# ---------------------------------------------------------------------------------------------------------------
# Paths escaping --image-root are refused and never opened
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.signals
def test_images_outside_the_root_are_refused_without_being_opened(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.jpg"
    os.mkfifo(outside)  # opening it blocks: had vlprep opened it, the spy sees a reader and the check gets EOF/I014
    (root / "link.jpg").symlink_to(outside)
    (root / "dir").mkdir()
    (root / "dir" / "up.jpg").symlink_to(Path("..") / ".." / "outside.jpg")
    inside = root / "inside-fifo.jpg"
    os.mkfifo(inside)  # control: a FIFO inside the root is opened and times out (I014)
    shutil.copy(FIXTURES / "images" / "photo.jpg", root / "photo.jpg")
    refs = ["link.jpg", str(outside), "../outside.jpg", "dir/up.jpg", f"file://{outside}", "photo.jpg",
            "inside-fifo.jpg"]
    data = write_lines(tmp_path / "data.jsonl", [clean_line(ref, index) for index, ref in enumerate(refs)])
    with fifo_spy(outside) as opened:
        code, out, err = run_vlprep(["lint", str(data), "--format", "json", "-q", "--image-root", str(root),
                                     "--image-timeout", "1", "--workers", "2"], tmp_path, "lint", timeout=120)
    assert opened == [], "a path outside --image-root was opened"
    assert code == 1, err
    assert codes_by_line(json.loads(out)) == {1: {"I002"}, 2: {"I002"}, 3: {"I002"}, 4: {"I002"}, 5: {"I002"},
                                              7: {"I014"}}


# ---------------------------------------------------------------------------------------------------------------
# Model directories that ship code: the code never runs without --trust-remote-code
# ---------------------------------------------------------------------------------------------------------------

EVIL_MODULES = {
    "processing_evil": "from transformers import Qwen3VLProcessor\nclass EvilProcessor(Qwen3VLProcessor):\n    pass\n",
    "tokenization_evil": "from transformers import Qwen2Tokenizer\nclass EvilTokenizer(Qwen2Tokenizer):\n    pass\n",
    "image_processing_evil": ("from transformers import Qwen2VLImageProcessor\n"
                              "class EvilImageProcessor(Qwen2VLImageProcessor):\n    pass\n"),
    "configuration_evil": "from transformers import Qwen3VLConfig\nclass EvilConfig(Qwen3VLConfig):\n    pass\n",
}


def evil_model_dir(tmp_path: Path, native_classes: bool) -> tuple[Path, Path]:
    """A copy of the embedded processor whose configs point (auto_map) at modules that write a marker when imported;
    with `native_classes=False` the class names are unknown to transformers, so only the shipped code could load."""
    from vlprep.counting.processor import embedded_processor_dir

    model = tmp_path / ("evil-beside-native" if native_classes else "evil-only")
    shutil.copytree(embedded_processor_dir(), model)
    marker = tmp_path / "code-ran"
    for module, source in EVIL_MODULES.items():
        marker_module(model, module, marker, source)

    def processor_config(config: dict[str, Any]) -> None:
        config["auto_map"] = {"AutoProcessor": "processing_evil.EvilProcessor"}
        config["image_processor"]["auto_map"] = {"AutoImageProcessor": "image_processing_evil.EvilImageProcessor"}
        if not native_classes:
            config["processor_class"] = "EvilProcessor"
            config["image_processor"]["image_processor_type"] = "EvilImageProcessor"

    def tokenizer_config(config: dict[str, Any]) -> None:
        config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None],
                              "AutoProcessor": "processing_evil.EvilProcessor"}
        if not native_classes:
            config["tokenizer_class"] = "EvilTokenizer"
            config["processor_class"] = "EvilProcessor"

    def model_config(config: dict[str, Any]) -> None:
        config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                              "AutoProcessor": "processing_evil.EvilProcessor"}

    edit_json(model / "processor_config.json", processor_config)
    edit_json(model / "tokenizer_config.json", tokenizer_config)
    edit_json(model / "config.json", model_config)
    return model, marker


@pytest.mark.parametrize("native_classes", [True, False], ids=["auto_map-beside-native-classes", "auto_map-only"])
def test_code_in_a_model_directory_never_runs_without_trust(native_classes: bool, tmp_path: Path) -> None:
    from vlprep.counting.processor import load_processor

    model, marker = evil_model_dir(tmp_path, native_classes)
    try:
        load_processor(str(model))
    except Exception:  # noqa: BLE001 - refusing is fine; running the code is not
        pass
    assert not marker.exists(), f"{marker.read_text()} was imported by load_processor"

    data = write_lines(tmp_path / "data.jsonl", demo_lines(3))
    result = runner.invoke(app, ["cache", str(data), "--out", str(tmp_path / "arrow"), "--model", str(model), "-q",
                                 "--verify", "0", "--workers", "1"])
    assert not marker.exists(), f"{marker.read_text()} was imported by `vlprep cache --model`"
    assert_no_crash(result)
    assert result.exit_code in (0, 1, 2), result.output
    result = runner.invoke(app, ["lint", str(data), "--max-length", "4096", "--model", str(model), "-q",
                                 "--workers", "1"])
    assert not marker.exists(), f"{marker.read_text()} was imported by `vlprep lint --model`"
    assert_no_crash(result)
