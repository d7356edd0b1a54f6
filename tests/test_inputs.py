"""Inputs people actually have, through the CLI: JSON arrays (pretty-printed or on one line), gzip and zstd JSONL,
stdin and folders; and broken arrays and streams reported with file, line and index without losing a record.

The fixtures (fixtures/make_array_fixtures.py) hold the same LLaVA-style records in every form; fixtures/llava.jsonl is
the reference the other forms must match, positions aside.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import datasets
import jsonschema
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from child_process import signal_build_after_shards
from support import FIXTURES, SCHEMAS, vlprep_launcher
from vlprep.cli.app import app
from vlprep.inputs.json_array import ArraySplitter
from vlprep.inputs.formats import open_source

REFERENCE = FIXTURES / "llava.jsonl"
RECORDS = len(REFERENCE.read_text().splitlines())
ARRAYS = ["llava.json", "llava_oneline.json"]
COMPRESSED = ["llava.jsonl.gz", "llava.jsonl.zst"]
runner = CliRunner()


def lint(*args: str | Path, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `vlprep lint` command, as a user runs it."""
    return subprocess.run([*vlprep_launcher(), "lint", "-q", *map(str, args)], input=stdin, capture_output=True, cwd=cwd,
                          timeout=300)


def lint_json(*args: str | Path, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    done = lint("--format", "json", "--workers", "2", *args, **kwargs)
    assert done.returncode in (0, 1), done.stderr.decode()
    report = json.loads(done.stdout)
    jsonschema.validate(report, json.loads((SCHEMAS / "lint-report.schema.json").read_text()))
    return done.returncode, report


def findings(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["code"], d["message"]) for d in report["diagnostics"]]


def opening_lines(text: str) -> list[int]:
    """Lines of the elements' opening braces in a pretty-printed array (indent 2), found independently of vlprep."""
    return [number for number, line in enumerate(text.splitlines(), start=1) if line == "  {"]


def test_reference_fixture_has_findings_to_compare() -> None:
    code, report = lint_json(REFERENCE)
    assert code == 1 and report["summary"]["records"] == RECORDS
    assert {d["code"] for d in report["diagnostics"]} >= {"I001", "M003"}
    assert all("index" not in d for d in report["diagnostics"])


@pytest.mark.parametrize("name", ARRAYS + COMPRESSED)
def test_every_form_lints_like_the_same_records_in_jsonl(name: str) -> None:
    _, reference = lint_json(REFERENCE)
    code, report = lint_json(FIXTURES / name)
    assert code == 1
    assert findings(report) == findings(reference)
    assert report["summary"]["records"] == RECORDS
    assert report["summary"]["files"][0]["formats"] == reference["summary"]["files"][0]["formats"]
    reference_lines = [d["line"] for d in reference["diagnostics"]]
    if name in COMPRESSED:  # the same lines, no index
        assert [d["line"] for d in report["diagnostics"]] == reference_lines
        assert all("index" not in d for d in report["diagnostics"])
        return
    indexes = [d["index"] for d in report["diagnostics"]]
    assert indexes == [line - 1 for line in reference_lines]  # one record per JSONL line
    text = (FIXTURES / name).read_text()
    braces = opening_lines(text) if "\n" in text.strip() else [1] * RECORDS
    assert [d["line"] for d in report["diagnostics"]] == [braces[index] for index in indexes]


def test_text_report_prints_line_and_index() -> None:
    done = lint(FIXTURES / "llava.json")
    text = done.stdout.decode()
    brace = opening_lines((FIXTURES / "llava.json").read_text())[3]
    assert done.returncode == 1
    assert f"llava.json:{brace} [#3]: I001" in text
    github = lint(FIXTURES / "llava.json", "--format", "github").stdout.decode()
    assert f"line={brace},title=I001 image-missing::[#3] " in github


def test_malformed_element_is_one_diagnostic_and_the_others_are_read() -> None:
    _, reference = lint_json(REFERENCE)
    code, report = lint_json(FIXTURES / "array_malformed.json")
    text = (FIXTURES / "array_malformed.json").read_text()
    braces = opening_lines(text)
    assert code == 1 and report["summary"]["records"] == RECORDS  # resynchronized: every element counted once
    (j001,) = [d for d in report["diagnostics"] if d["code"] == "J001"]
    assert j001["index"] == 2 and j001["line"] == braces[2]
    broken_line = text.splitlines().index("    ]", braces[2]) + 1  # where the missing brace is noticed
    assert f"at line {broken_line}, column" in j001["message"]
    others = [d for d in report["diagnostics"] if d["code"] != "J001"]
    assert [(d["code"], d["message"]) for d in others] == findings(reference)  # element 2 had no finding
    assert [d["line"] for d in others] == [braces[d["index"]] for d in others]


def test_truncated_array_says_where_it_stopped_and_how_many_records_came_before() -> None:
    code, report = lint_json(FIXTURES / "array_truncated.json")
    (j008,) = [d for d in report["diagnostics"] if d["code"] == "J008"]
    brace = opening_lines((FIXTURES / "array_truncated.json").read_text())[4]
    assert code == 1 and report["summary"]["records"] == 5
    assert j008["index"] == 4 and j008["line"] == brace
    assert "ends inside element #4" in j008["message"] and "4 record(s) before it" in j008["message"]


def test_wrapped_object_is_named_with_the_fix() -> None:
    code, report = lint_json(FIXTURES / "wrapped.json")
    assert code == 1
    assert [(d["code"], d["line"]) for d in report["diagnostics"]] == [("J009", 1)]
    message = report["diagnostics"][0]["message"]
    assert "'data'" in message and f"jq .data {FIXTURES / 'wrapped.json'} > records.json" in message


def test_stray_commas_text_after_the_array_and_a_cut_after_a_comma(tmp_path: Path) -> None:
    records = [json.loads(line) for line in REFERENCE.read_text().splitlines()[:2]]
    a, b = (json.dumps(record) for record in records)
    stray = tmp_path / "stray.json"
    stray.write_text(f"[\n{a},,\n{b},\n]\n\n[{a}]\n")
    code, report = lint_json(stray, "--select", "J")  # (the records' images are not beside this file)
    assert code == 1
    assert [(d["code"], d["line"], d.get("index")) for d in report["diagnostics"]] == [
        ("J001", 2, None), ("J001", 4, None), ("J010", 6, None)]
    assert "files concatenated?" in report["diagnostics"][2]["message"]
    cut = tmp_path / "cut.json"
    cut.write_text(f"[\n{a},\n{b},\n")
    _, report = lint_json(cut, "--select", "J")
    assert [(d["code"], d["line"]) for d in report["diagnostics"]] == [("J008", 4)]
    assert "cut short after 2 record(s)" in report["diagnostics"][0]["message"]


def test_compressed_streams_cut_short_are_reported_after_the_records_read(tmp_path: Path) -> None:
    draw = random.Random(0)  # records that do not compress to nothing, so that records come out before the cut
    jsonl = "".join(json.dumps({**json.loads(line), "id": draw.randbytes(16).hex()}) + "\n"
                    for _ in range(2000) for line in REFERENCE.read_text().splitlines()).encode()
    for name, blob in (("cut.jsonl.gz", gzip.compress(jsonl, mtime=0)),
                       ("cut.jsonl.zst", zstandard.ZstdCompressor().compress(jsonl))):
        path = tmp_path / name
        path.write_bytes(blob[: len(blob) // 2])
        code, report = lint_json(path, "--select", "J")
        (j011,) = [d for d in report["diagnostics"] if d["code"] == "J011"]
        read = report["summary"]["records"] - 1
        assert code == 1 and 0 < read < 2000 * RECORDS
        assert f"{read:,} record(s) before it were read" in j011["message"]
        assert j011["line"] == read + 1 and report["summary"]["files"][0]["lines"] == read + 1


def test_stdin_is_read_like_a_file(tmp_path: Path) -> None:
    _, from_file = lint_json(FIXTURES / "llava.json")
    _, from_stdin = lint_json("-", stdin=(FIXTURES / "llava.json").read_bytes(), cwd=FIXTURES)  # images: ./images
    assert findings(from_stdin) == findings(from_file)
    assert {d["file"] for d in from_stdin["diagnostics"]} == {"-"}
    _, gz = lint_json("-", stdin=(FIXTURES / "llava.jsonl.gz").read_bytes(), cwd=FIXTURES)
    assert findings(gz) == findings(from_file)


def test_folder_lints_its_data_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    for name in ["llava.jsonl.zst", "llava.json", "llava.jsonl", "llava.jsonl.gz"]:
        shutil.copy(FIXTURES / name, folder / name)
    (folder / "notes.txt").write_text("not data\n")
    done = lint(folder, "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 1
    order = ["llava.json", "llava.jsonl", "llava.jsonl.gz", "llava.jsonl.zst"]
    assert [Path(f["path"]).name for f in report["summary"]["files"]] == order
    assert "reading its 4 data file(s) in name order: " + ", ".join(order) in " ".join(done.stderr.decode().split())
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = lint(empty)
    assert refused.returncode == 2 and "a folder with no data files" in " ".join(refused.stderr.decode().split())


def test_cache_refuses_stdin_and_says_why(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cache", "-", "--out", str(tmp_path / "out")], input=b"[]")
    assert result.exit_code == 2
    assert "cannot read stdin" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


PROVENANCE = ("vlprep_source", "vlprep_line", "vlprep_index")
CACHED_FORMS = ["llava.jsonl", *ARRAYS, *COMPRESSED]
BROKEN = ["array_malformed.json", "array_truncated.json", "wrapped.json"]


def cache(*args: str | Path) -> Any:
    """`vlprep cache` in this process (the processor is loaded once per session)."""
    result = runner.invoke(app, ["cache", "-q", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def split_rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: datasets.load_from_disk(str(out / split)).to_list() if (out / split).is_dir() else []
            for split in ("train", "val")}


def rejects(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


def by_source(items: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        grouped.setdefault(Path(item[key]).name, []).append(item)
    return grouped


def without(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in keys}


@pytest.mark.swift
def test_cache_of_every_form_equals_the_jsonl_cache(tmp_path: Path, embedded_processor: Any) -> None:
    """One `vlprep cache FOLDER` with default options over every form at once: each form's rows and rejects are the
    JSONL ones (positions aside) and every record of every input is accounted for."""
    folder = tmp_path / "forms"
    folder.mkdir()
    (folder / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    for name in CACHED_FORMS + BROKEN:
        shutil.copy(FIXTURES / name, folder / name)
    out = tmp_path / "cache"
    result = cache(folder, "--out", out)
    assert result.exit_code == 1, result.output
    names = sorted(CACHED_FORMS + BROKEN)
    assert f"reading its {len(names)} data file(s) in name order: {', '.join(names)}" in " ".join(result.stderr.split())
    manifest = json.loads((out / "manifest.json").read_text())
    lines = {"array_malformed.json": RECORDS, "array_truncated.json": 5, "wrapped.json": 1}
    assert [(Path(entry["path"]).name, entry["lines"]) for entry in manifest["inputs"]] == [
        (name, lines.get(name, RECORDS)) for name in names]
    counts = manifest["counts"]
    assert counts["identity_holds"] and counts["input_lines"] == RECORDS * 6 + 5 + 1
    sizes = {Path(entry["path"]).name: entry["size"] for entry in manifest["inputs"]}
    assert sizes["llava.jsonl.gz"] == (FIXTURES / "llava.jsonl.gz").stat().st_size  # as stored
    rows = by_source(split_rows(out)["train"], "vlprep_source")
    rejected = by_source(rejects(out), "file")
    reference_rows, reference_rejects = rows["llava.jsonl"], rejected["llava.jsonl"]
    assert reference_rows and reference_rejects
    assert all(row["vlprep_index"] is None for row in reference_rows)
    for name in CACHED_FORMS[1:]:
        assert [without(row, PROVENANCE) for row in rows[name]] == [without(r, PROVENANCE) for r in reference_rows]
        assert [(r["codes"], r["message"]) for r in rejected[name]] == [(r["codes"], r["message"])
                                                                         for r in reference_rejects]
        if name in ARRAYS:
            assert [row["vlprep_index"] for row in rows[name]] == [row["vlprep_line"] - 1 for row in reference_rows]
            assert [r["index"] for r in rejected[name]] == [r["line"] - 1 for r in reference_rejects]
            assert all(json.loads(r["text"]) == json.loads(ref["text"])
                       for r, ref in zip(rejected[name], reference_rejects))
        else:
            assert [row["vlprep_line"] for row in rows[name]] == [row["vlprep_line"] for row in reference_rows]
    malformed = FIXTURES / "array_malformed.json"
    braces = opening_lines(malformed.read_text())
    assert [row["vlprep_index"] for row in rows["array_malformed.json"]] == [
        row["vlprep_line"] - 1 for row in reference_rows if row["vlprep_line"] != 3]
    assert [row["vlprep_line"] for row in rows["array_malformed.json"]] == [
        braces[row["vlprep_index"]] for row in rows["array_malformed.json"]]
    first_reject = rejected["array_malformed.json"][0]
    assert (first_reject["codes"], first_reject["index"], first_reject["line"]) == (["J001"], 2, braces[2])
    truncated = rejected["array_truncated.json"]
    assert (truncated[-1]["codes"], truncated[-1]["index"]) == (["J008"], 4)
    assert truncated[-1]["text"] and (FIXTURES / "array_truncated.json").read_text().endswith(truncated[-1]["text"])
    assert [(r["codes"], r["line"]) for r in rejected["wrapped.json"]] == [(["J009"], 1)]
    assert "index" not in rejected["wrapped.json"][0]


def interrupted_then_resumed(data: Path, out: Path, args: list[str]) -> None:
    """Start `vlprep cache`, Ctrl-C it after its first complete shard, then finish it with --resume."""
    code, stderr = signal_build_after_shards(out, [str(data), *args], shards=2)
    assert code == 130, stderr
    journal = out.parent / f".{out.name}.vlprep-partial" / "journal.jsonl"
    done = json.loads(journal.read_text().splitlines()[-1])["position"][1]
    assert 0 < done < RESUME_RECORDS
    resumed = cache(data, "--out", out, *args, "--resume")
    assert resumed.exit_code == 1, resumed.output


RESUME_RECORDS = 1400


@pytest.mark.signals
def test_gzipped_array_resumes_and_splits_like_the_same_jsonl(tmp_path: Path, embedded_processor: Any) -> None:
    """A gzip-compressed pretty-printed array, interrupted and resumed, gives the cache of an uninterrupted build, and
    its val split (a hash of the record's number) is that of the same records as JSONL."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    base = [json.loads(line) for line in REFERENCE.read_text().splitlines()]
    records = [{**base[number % len(base)], "id": f"r{number}"} for number in range(RESUME_RECORDS)]
    array = folder / "data.json.gz"
    array.write_bytes(gzip.compress(json.dumps(records, indent=2).encode(), mtime=0))
    jsonl = folder / "data.jsonl"
    jsonl.write_text("".join(json.dumps(record) + "\n" for record in records))
    args = ["--workers", "1", "--verify", "0", "--shard-lines", "100", "--val-ratio", "0.3", "-q"]
    interrupted_then_resumed(array, tmp_path / "resumed", args)
    assert cache(array, "--out", tmp_path / "whole", *args).exit_code == 1
    assert cache(jsonl, "--out", tmp_path / "jsonl", *args).exit_code == 1
    resumed, whole, reference = (split_rows(tmp_path / name) for name in ("resumed", "whole", "jsonl"))
    assert resumed == whole
    assert rejects(tmp_path / "resumed") == rejects(tmp_path / "whole")
    assert json.loads((tmp_path / "resumed" / "manifest.json").read_text())["counts"]["input_lines"] == RESUME_RECORDS
    for split in ("train", "val"):
        assert whole[split], split
        assert [row["vlprep_index"] for row in whole[split]] == [row["vlprep_line"] - 1 for row in reference[split]]
        assert [without(row, PROVENANCE) for row in whole[split]] == [without(r, PROVENANCE) for r in reference[split]]


# --- the splitter's properties (hypothesis): any valid array, any layout, any read size; any damage -------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
LAYOUTS = st.sampled_from([None, 0, 1, 2, 4, "\t"])


def split(data: bytes, max_bytes: int = 1 << 20, read_bytes: int = 1 << 20) -> list[Any]:
    return list(ArraySplitter(io.BufferedReader(io.BytesIO(data)), max_bytes, read_bytes).spans())


@pytest.mark.fuzz
@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(elements=st.lists(JSON_VALUES, max_size=6), indent=LAYOUTS, ascii_only=st.booleans(),
       read_bytes=st.integers(1, 64))
def test_splitter_cuts_any_valid_array_into_its_elements(elements: list[Any], indent: Any, ascii_only: bool,
                                                         read_bytes: int) -> None:
    data = json.dumps(elements, indent=indent, ensure_ascii=ascii_only).encode()
    spans = split(data, read_bytes=read_bytes)
    assert [(span.index, span.problem) for span in spans] == [(index, None) for index in range(len(elements))]
    assert [json.loads(span.data) for span in spans] == elements
    offset = 0
    for span in spans:  # each span is the file's own bytes, on the line it says
        at = data.index(span.data, offset)
        assert span.line == data.count(b"\n", 0, at) + 1
        offset = at + len(span.data)
    small = split(data, max_bytes=32, read_bytes=read_bytes)  # over-long elements: scanned, not kept, same cuts
    assert [(span.line, span.index, span.size) for span in small] == [(span.line, span.index, span.size)
                                                                      for span in spans]
    assert all(span.data is None and span.problem[0] == "J006" for span in small if span.size > 32)


@pytest.mark.fuzz
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(elements=st.lists(JSON_VALUES, min_size=1, max_size=5), indent=LAYOUTS, data=st.data())
def test_damaged_arrays_never_crash_and_every_unit_is_counted_once(elements: list[Any], indent: Any, data: Any,
                                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    raw = bytearray(json.dumps(elements, indent=indent).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(1, len(raw)))
        if data.draw(st.booleans()):
            del raw[position:position + data.draw(st.integers(1, 8))]
        else:
            raw[position:position] = data.draw(st.sampled_from([b"{", b"}", b"[", b"]", b",", b'"', b"\\", b"\n",
                                                                b"x", b"\xff", b"  {\n"]))
    raw = bytes(raw)
    units = split(raw)
    cuts = [(unit.line, unit.index, unit.size) for unit in units]
    assert [(unit.line, unit.index, unit.size) for unit in split(raw, max_bytes=32, read_bytes=3)] == cuts
    indexes = [u.index for u in units if u.index is not None]
    assert indexes == list(range(len(indexes)))
    assert [u.line for u in units] == sorted(u.line for u in units)
    path = tmp_path_factory.mktemp("damaged") / "data.json"
    path.write_bytes(raw)
    result = runner.invoke(app, ["lint", str(path), "--format", "json", "-q", "--workers", "1"])
    assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["records"] == len(units) == open_source(path, 64 << 20).count()
