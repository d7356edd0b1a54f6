"""Parquet files and `datasets` save_to_disk folders through `vlprep lint` and `vlprep cache` with their default options:
each row read as the record a JSONL line holds, findings named `file:ROW` (1-based), images embedded as `{bytes, path}`
structs checked and counted like files, every row accounted for in the cache, and a resumed build equal to a whole one.

The fixtures are written by the test setup (pyarrow / datasets) from the images in fixtures/images: rows with embedded
image bytes, with image paths, one with a corrupt (cut short) embedded JPEG, and one bad row (no conversation).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support import FIXTURES, vlprep_launcher
from vlprep.inputs.columnar import RowSlice
from vlprep.inputs.formats import open_source

IMAGES = FIXTURES / "images"
CORRUPT_ROW = 3
BAD_ROW = 4
REPEAT_ROW = 5  # row 5 embeds row 2's chart and row 1's photo again: the same pictures (D002)


def vlprep(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The installed `vlprep` command, as a user runs it."""
    return subprocess.run([*vlprep_launcher(), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def image(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def messages(question: str, answer: str, images: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "<image>" * images + question}, {"role": "assistant", "content": answer}]


def fixture_rows() -> list[dict[str, Any]]:
    """Row 1: embedded bytes; 2: a path; 3: a corrupt embedded JPEG; 4: no conversation; 5: two embedded images."""
    photo = image("photo.jpg")
    return [
        {"messages": messages("What colours?", "Many.", 1), "images": [{"bytes": photo, "path": "photo.jpg"}]},
        {"messages": messages("What does it show?", "A chart.", 1),
         "images": [{"bytes": None, "path": "images/chart.png"}]},
        {"messages": messages("And this?", "Broken.", 1),
         "images": [{"bytes": photo[:len(photo) // 2], "path": "cut.jpg"}]},
        {"messages": None, "images": []},
        {"messages": messages("Compare them.", "Two pictures.", 2),
         "images": [{"bytes": image("chart.png"), "path": None}, {"bytes": photo, "path": None}]},
    ]


IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema([("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
                    ("images", pa.list_(IMAGE_STRUCT))])


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path, row_group_size=row_group_size)
    return path


@dataclass
class Data:
    folder: Path
    parquet: Path
    saved: Path  # a datasets save_to_disk folder of the same rows


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    folder = tmp_path_factory.mktemp("parquet")
    (folder / "images").symlink_to(IMAGES, target_is_directory=True)
    parquet = write_parquet(folder / "rows.parquet", fixture_rows())
    saved = folder / "saved"
    datasets.Dataset(pa.Table.from_pylist(fixture_rows(), schema=SCHEMA)).save_to_disk(str(saved))
    (saved / "images").symlink_to(IMAGES, target_is_directory=True)
    return Data(folder, parquet, saved)


def lint_report(*args: str | Path) -> tuple[int, dict[str, Any]]:
    done = vlprep("lint", "-q", "--format", "json", *args)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def by_line(report: dict[str, Any]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for diagnostic in report["diagnostics"]:
        found.setdefault(diagnostic["line"], set()).add(diagnostic["code"])
    return found


def test_parquet_lint_names_file_and_row(data: Data) -> None:
    code, report = lint_report(data.parquet)
    assert code == 1 and report["summary"]["records"] == 5
    found = by_line(report)
    assert "I004" in found[CORRUPT_ROW]  # the cut-short embedded JPEG, decoded in full
    assert "S010" in found[BAD_ROW]
    assert found[REPEAT_ROW] == {"D002"}
    assert set(found) == {CORRUPT_ROW, BAD_ROW, REPEAT_ROW}, found  # embedded bytes and the path resolve and decode
    assert all(d["file"] == str(data.parquet) and "index" not in d for d in report["diagnostics"])
    text = vlprep("lint", "-q", data.parquet)
    assert f"{data.parquet}:{CORRUPT_ROW}" in text.stdout and f"{data.parquet}:{BAD_ROW}" in text.stdout


def test_fast_mode_finds_the_cut_short_embedded_image_from_its_header_and_tail(data: Data) -> None:
    _, report = lint_report("--fast", data.parquet)
    assert by_line(report) == {CORRUPT_ROW: {"I004"}, BAD_ROW: {"S010"}, REPEAT_ROW: {"D002"}}


def test_saved_dataset_folder_lints_like_the_parquet_file(data: Data) -> None:
    _, parquet = lint_report(data.parquet)
    _, saved = lint_report(data.saved)
    assert by_line(saved) == by_line(parquet)
    assert saved["summary"]["records"] == 5
    assert {d["file"] for d in saved["diagnostics"]} == {str(next(data.saved.glob("*.arrow")))}


def test_dataset_dict_folder_is_refused_with_the_split_to_pass(tmp_path: Path) -> None:
    rows = datasets.Dataset.from_list([{"messages": messages("Hi", "Hello", 0)}])
    datasets.DatasetDict({"train": rows}).save_to_disk(str(tmp_path / "dict"))
    done = vlprep("lint", tmp_path / "dict")
    assert done.returncode == 2 and "DatasetDict" in done.stderr and "train" in done.stderr
    assert "Traceback" not in done.stderr


def test_rows_after_a_skip_and_row_group_slices_are_the_rows_from_the_start_less_the_first(tmp_path: Path) -> None:
    """What --resume relies on: reading from row k (any row group boundary or not) yields the same units; so do the
    slices of row groups that the workers read on their own."""
    path = write_parquet(tmp_path / "many.parquet", fixture_rows() * 7, row_group_size=3)
    source = open_source(path, 1 << 20)
    whole = list(source.units())
    assert source.count() == len(whole) == 35
    assert [unit.number for unit in whole] == list(range(1, 36))
    for skip in (0, 1, 3, 4, 20, 34, 35):
        assert list(source.units(skip)) == whole[skip:]
        for rows in (1, 2, 5):  # the slices the workers read on their own hold the same rows, each once
            slices = list(source.slices(skip, rows, 1))
            assert all(isinstance(part, RowSlice) and 0 < part.stop - part.start <= rows for part in slices)
            assert [unit for part in slices for unit in part.units()] == whole[skip:]


def test_unreadable_parquet_is_one_finding_not_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 100)
    code, report = lint_report(broken)
    assert code == 1 and [d["code"] for d in report["diagnostics"]] == ["J011"]
    assert report["summary"]["records"] == 1


# ---------------------------------------------------------------------------------------------------------------
# vlprep cache
# ---------------------------------------------------------------------------------------------------------------


def cache_rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: datasets.load_from_disk(str(out / split)).to_list() if (out / split).is_dir() else []
            for split in ("train", "val")}


def cache_rejects(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def parquet_cache(data: Data, embedded_processor: Any) -> Path:
    out = data.folder / "cache"
    done = vlprep("cache", "-q", data.parquet, "--out", out)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    return out


@pytest.mark.swift
def test_parquet_cache_accounts_for_every_row(parquet_cache: Path) -> None:
    counts = manifest(parquet_cache)["counts"]
    assert counts == {"input_lines": 5, "train": 3, "val": 0, "rejected": 2, "identity_holds": True}
    rejected = {entry["line"]: set(entry["codes"]) for entry in cache_rejects(parquet_cache)}
    assert set(rejected) == {CORRUPT_ROW, BAD_ROW} and "I004" in rejected[CORRUPT_ROW] and "S010" in rejected[BAD_ROW]


@pytest.mark.swift
def test_parquet_cache_rows_keep_embedded_bytes_and_resolve_paths(parquet_cache: Path, data: Data) -> None:
    train = cache_rows(parquet_cache)["train"]
    assert [row["vlprep_line"] for row in train] == [1, 2, 5]
    assert all(row["vlprep_source"] == str(data.parquet.resolve()) for row in train)
    first, second, fifth = train
    assert first["images"][0].startswith("data:image/jpeg;base64,")
    assert second["images"] == [str((data.folder / "images" / "chart.png").absolute())]
    assert [ref[:22] for ref in fifth["images"]] == ["data:image/png;base64,", "data:image/jpeg;base64"]
    assert fifth["vlprep_image_tokens"] > first["vlprep_image_tokens"] > 0
    verified = manifest(parquet_cache)["verification"]["ms_swift_template"]
    assert verified["records_checked"] == 3 and verified["mismatches"] == 0  # ms-swift encoded the embedded bytes too


@pytest.mark.signals
def test_interrupted_parquet_build_resumes_to_the_same_cache(tmp_path: Path, embedded_processor: Any) -> None:
    (tmp_path / "images").symlink_to(IMAGES, target_is_directory=True)
    rows = [row for index in range(120) for row in fixture_rows()[:3]]
    for index, row in enumerate(rows):  # distinct records (no duplicates), same images
        row["messages"] = messages(f"Question {index}?", "Answer.", len(row["images"]))
    big = write_parquet(tmp_path / "big.parquet", rows, row_group_size=25)
    out, partial = tmp_path / "cache", tmp_path / ".cache.vlprep-partial"
    command = ["cache", "-q", str(big), "--out", str(out), "--workers", "1", "--verify", "0", "--shard-lines", "40"]
    child = subprocess.Popen([*vlprep_launcher(), *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        journal = partial / "journal.jsonl"
        deadline = time.monotonic() + 300
        while child.poll() is None and time.monotonic() < deadline:
            if journal.is_file() and len(journal.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert child.poll() is None, f"the build ended before it could be interrupted:\n{child.stderr.read()}"
        os.killpg(child.pid, signal.SIGKILL)  # kill -9: no clean-up at all
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    position = json.loads(journal.read_text().splitlines()[-1])["position"]
    assert 0 < position[1] < len(rows)
    resumed = vlprep(*command, "--resume")
    assert resumed.returncode in (0, 1) and "Traceback" not in resumed.stderr, resumed.stderr
    whole = tmp_path / "whole"
    baseline = vlprep(*command[:3], "--out", whole, *command[5:])
    assert baseline.returncode == resumed.returncode, baseline.stderr
    assert cache_rows(out) == cache_rows(whole)
    assert cache_rejects(out) == cache_rejects(whole)
    assert manifest(out)["counts"] == manifest(whole)["counts"]
    assert manifest(out)["counts"]["input_lines"] == len(rows) and manifest(out)["counts"]["rejected"] == 120


def test_sharegpt_parquet_with_path_strings_lints_like_the_same_jsonl(tmp_path: Path) -> None:
    """fixtures/llava.jsonl (LLaVA: `conversations`, `image` as a path string or a list of them) written as Parquet
    (one column type: a list of paths): the same findings at the same positions (row N is line N), the keys a row
    lacks being nulls of the file's schema."""
    (tmp_path / "images").symlink_to(IMAGES, target_is_directory=True)
    reference = tmp_path / "llava.jsonl"
    shutil.copy(FIXTURES / "llava.jsonl", reference)
    records = [json.loads(line) for line in reference.read_text().splitlines()]
    parquet = tmp_path / "llava.parquet"
    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    schema = pa.schema([("id", pa.string()), ("image", pa.list_(pa.string())), ("conversations", pa.list_(turn))])
    assert {key for record in records for key in record} == set(schema.names)
    rows = [{**record, "image": [record["image"]]} if isinstance(record.get("image"), str) else record
            for record in records]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), parquet, row_group_size=3)
    assert pq.ParquetFile(parquet).num_row_groups > 1

    def findings(path: Path) -> list[tuple[int, str, str]]:
        _, report = lint_report(path)
        return [(d["line"], d["code"], d["message"]) for d in report["diagnostics"]]

    expected = findings(reference)
    assert expected and findings(parquet) == expected
