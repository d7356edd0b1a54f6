"""`--engine ray` on a local Ray instance with 2 CPUs (`--workers 2`), through the installed CLI: the same lint report
and the same cache as the local engine, for JSONL (planted bad lines), a JSON array, gzip JSONL and Parquet; a record
that kills its worker every time is W001 with every other record reported; a Ray build killed with kill -9 resumes
(on Ray) to the local engine's cache.

Each command starts and stops its own Ray instance (about 15 s on this 2-core machine, measured in bench/README), so
the tests are few and each covers several inputs at once.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest

from child_process import signal_build_after_shards
from support import FIXTURES, codes_by_line
from test_hardening import (clean_line, demo_lines, fifo_open_blocks_visibly, kill_workers_blocked_on_a_fifo,
                            write_lines)
from test_parquet import fixture_rows, write_parquet
from vlprep.inputs.formats import open_source
from vlprep.inputs.jsonl import LineRange
from vlprep.inputs.streams import BOM

# found, not imported: importing Ray costs seconds of every collection
pytestmark = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed")

VLPREP = Path(sys.executable).with_name("vlprep")
RAY = ["--engine", "ray", "--workers", "2"]


def vlprep(*args: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(VLPREP), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def without_elapsed(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "summary": {**report["summary"], "elapsed_s": 0}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Planted bad lines (JSONL), demo records as JSONL, a JSON array, gzip JSONL, and the Parquet fixture."""
    folder = tmp_path_factory.mktemp("ray-inputs")
    (folder / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    for name in ("planted.jsonl", "demo.jsonl", "llava.json", "llava.jsonl.gz"):
        shutil.copy(FIXTURES / name, folder / name)
    return [folder / "planted.jsonl", folder / "demo.jsonl", folder / "llava.json", folder / "llava.jsonl.gz",
            write_parquet(folder / "rows.parquet", fixture_rows())]


def test_byte_ranges_of_a_jsonl_file_hold_each_of_its_lines_once(tmp_path: Path) -> None:
    """The Ray tasks' JSONL ranges, read on their own, give exactly the units the reader gives for the whole file
    after any skip (--resume): random lines, CRLF, a byte-order mark, lines over --max-line-bytes, no final newline."""
    rng = random.Random(13)
    path = tmp_path / "lines.jsonl"
    for _ in range(200):
        lines = [b"x" * rng.randint(0, 50) for _ in range(rng.randint(0, 30))]
        text = b"\n".join(lines) + (b"\n" if lines and rng.random() < 0.5 else b"")
        text = (BOM if rng.random() < 0.2 else b"") + text
        path.write_bytes(text.replace(b"\n", b"\r\n") if rng.random() < 0.2 else text)
        source = open_source(path, 30)
        whole = list(source.units())
        for skip in range(len(whole) + 2):
            for max_lines, max_bytes in ((1, 1000), (3, 1000), (100, 40), (7, 1 << 20)):
                ranges = list(source.slices(skip, max_lines, max_bytes))
                assert all(isinstance(lines, LineRange) for lines in ranges)
                assert [unit for lines in ranges for unit in lines.units()] == whole[skip:]
                assert sum(lines.lines for lines in ranges) == len(whole[skip:])


@pytest.mark.ray
def test_ray_lint_report_equals_the_local_one(inputs: list[Path], tmp_path: Path) -> None:
    """The inputs above plus a `datasets` save_to_disk folder of the Parquet rows, in one command."""
    saved = tmp_path / "saved"
    datasets.Dataset(pq.read_table(inputs[-1])).save_to_disk(str(saved), max_shard_size="3KB")
    (saved / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    arrow_files = [saved / entry["filename"] for entry in json.loads((saved / "state.json").read_text())["_data_files"]]
    assert len(arrow_files) > 1
    local = vlprep("lint", "-q", "--format", "json", "--workers", "2", *inputs, saved)
    on_ray = vlprep("lint", "-q", "--format", "json", *RAY, *inputs, saved)
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr
    report = json.loads(on_ray.stdout)
    assert without_elapsed(report) == without_elapsed(json.loads(local.stdout))
    assert report["summary"]["records"] == sum(entry["lines"] for entry in report["summary"]["files"])
    assert [entry["path"] for entry in report["summary"]["files"]] == list(map(str, inputs + arrow_files))
    assert {d["code"] for d in report["diagnostics"] if d["file"] in map(str, arrow_files)} >= {"I004", "S010"}


@pytest.mark.ray
@pytest.mark.swift
def test_unreachable_ray_address_is_a_usage_error_at_once(inputs: list[Path], tmp_path: Path) -> None:
    for command in (["lint", str(inputs[0])], ["cache", str(inputs[0]), "--out", str(tmp_path / "out")]):
        started = time.monotonic()
        done = vlprep(*command, "--engine", "ray", "--ray-address", "127.0.0.1:1", timeout=120)
        assert done.returncode == 2 and "--ray-address 127.0.0.1:1: nothing answers there" in " ".join(
            done.stderr.split()), done.stderr
        assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists()
    done = vlprep("lint", str(inputs[0]), "--ray-address", "127.0.0.1:1")
    assert done.returncode == 2 and "--ray-address needs --engine ray" in done.stderr


def cache_snapshot(out: Path) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {"rows": {split: datasets.load_from_disk(str(out / split)).to_list() for split in ("train", "val")},
            "rejects": (out / "rejects.jsonl").read_text(),
            "manifest": {key: value for key, value in manifest.items() if key != "created"}}


@pytest.mark.ray
@pytest.mark.swift
def test_ray_cache_equals_the_local_cache(inputs: list[Path], tmp_path: Path, embedded_processor: Any) -> None:
    """Same rows in the same order, same rejects, same manifest (counts, lengths, fingerprints, file checksums)."""
    common = ["cache", "-q", *[str(path) for path in inputs], "--val-ratio", "0.3", "--workers", "2"]
    local = vlprep(*common, "--out", tmp_path / "local")
    on_ray = vlprep(*common, "--out", tmp_path / "ray", "--engine", "ray")
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr
    ray_cache, local_cache = cache_snapshot(tmp_path / "ray"), cache_snapshot(tmp_path / "local")
    assert ray_cache == local_cache
    counts = ray_cache["manifest"]["counts"]
    assert counts["identity_holds"] and counts["rejected"] > 0 and counts["train"] > 0 and counts["val"] > 0
    assert ray_cache["manifest"]["verification"]["ms_swift_template"]["records_checked"] > 0


@pytest.mark.ray
@pytest.mark.signals
def test_record_that_kills_its_ray_worker_every_time_is_w001(tmp_path: Path) -> None:
    """A thread kills exactly the Ray worker processes blocked opening a FIFO (kernel wait channel
    `wait_for_partner`), every time one is: Ray retries the task, vlprep re-runs its records one per task, and only
    the FIFO's record is reported (W001); every other record's findings are the local engine's."""
    if not fifo_open_blocks_visibly():
        pytest.skip("this kernel does not show a process blocked opening a FIFO")
    shutil.copy(FIXTURES / "images" / "photo.jpg", tmp_path / "photo.jpg")
    os.mkfifo(tmp_path / "hang.jpg")
    lines = demo_lines(300)
    lines.insert(150, clean_line("hang.jpg", 150))
    data = write_lines(tmp_path / "data.jsonl", lines)
    process = subprocess.Popen([str(VLPREP), "lint", str(data), "--format", "json", "-q", "--image-timeout", "600",
                                *RAY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    thread, kills = kill_workers_blocked_on_a_fifo(process)
    try:
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    thread.join()
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["summary"]["records"] == 301
    found = codes_by_line(report)
    assert found.pop(151) == {"W001"}
    assert len(kills) >= 4, "killed in its task, in Ray's retry, and twice when re-run alone"
    (tmp_path / "hang.jpg").unlink()  # the same data without the FIFO's line, on the local engine: same findings
    del lines[150]
    reference = json.loads(vlprep("lint", write_lines(tmp_path / "rest.jsonl", lines), "--format", "json", "-q",
                                  "--workers", "2").stdout)
    expected = {line + (line > 150): codes for line, codes in codes_by_line(reference).items()}
    assert found == expected


@pytest.mark.ray
@pytest.mark.signals
def test_killed_ray_build_resumes_to_the_local_engines_cache(tmp_path: Path, embedded_processor: Any) -> None:
    data = write_lines(tmp_path / "data.jsonl", demo_lines(1500))
    common = ["cache", "-q", str(data), "--val-ratio", "0.1", "--verify", "0", "--shard-lines", "150"]
    out, partial = tmp_path / "ray", tmp_path / ".ray.vlprep-partial"
    signal_build_after_shards(out, [*common[1:], *RAY], shards=3, sig=signal.SIGKILL, timeout=600)
    journal = partial / "journal.jsonl"
    done_before = json.loads(journal.read_text().splitlines()[-1])
    assert 0 < done_before["position"][1] < 1500
    resumed = vlprep(*common, "--out", out, *RAY, "--resume")
    assert resumed.returncode == 1, resumed.stderr
    local = vlprep(*common, "--out", tmp_path / "local", "--workers", "2")
    assert local.returncode == 1, local.stderr
    assert cache_snapshot(out) == cache_snapshot(tmp_path / "local")
    assert cache_snapshot(out)["manifest"]["counts"]["input_lines"] == 1500
