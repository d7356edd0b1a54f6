"""The record sets of the golden counting file (tests/golden/counting.json): which lines, read from which folder, under
which pixel setting. Shared by the capture (tests/golden/capture.py, runs ms-swift) and tests/test_golden.py (does not)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import test_counting
import test_swift_formats
from support import FIXTURES

GOLDEN_FILE = Path(__file__).resolve().parent / "golden" / "counting.json"
FIXTURE_FILES = ("demo.jsonl", "clean_messages.jsonl", "clean_openai.jsonl", "clean_sharegpt.jsonl", "llava.jsonl",
                 "mixed.jsonl", "planted.jsonl")
SETTINGS = test_counting.SETTINGS


@dataclass(frozen=True)
class Case:
    base: str  # the folder its relative image paths resolve against: a key of write_bases()
    name: str
    setting: str  # a key of SETTINGS
    line: str  # the input line, as written


@dataclass
class Bases:
    folders: dict[str, Path]  # Case.base -> the folder
    counting_refs: dict[str, str]  # test_counting's image name -> its reference, relative to folders["counting"]


def write_bases(folder: Path) -> Bases:
    """The folders the cases' lines are read from: the bundled fixtures, and the test-written images of the counting
    and format record sets (sizes and modes are all counting reads, and the writers are deterministic)."""
    counting = folder / "counting"
    counting.mkdir(parents=True)
    refs = {name: ref if ref.startswith("data:") else str(Path(ref).relative_to(counting))
            for name, ref in test_counting.write_images(counting / "images").items()}
    formats = folder / "swift_formats"
    formats.mkdir(parents=True)
    test_swift_formats.write_images(formats)
    return Bases({"fixtures": FIXTURES, "counting": counting, "swift_formats": formats}, refs)


def _object_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that hold a JSON object (the others never reach normalization), less those
    naming a URL: ms-swift's loader would fetch it (vlprep reports it, I011, and never sends it to ms-swift)."""
    found = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        try:
            text = raw.decode("utf-8")
            if isinstance(json.loads(text), dict) and "://" not in text:
                found.append((number, text))
        except ValueError:  # not UTF-8 or not JSON: lint's J-rules, not counting
            continue
    return found


def cases(bases: Bases) -> list[Case]:
    """The fixtures' object lines; test_counting's records under each setting; test_swift_formats' records."""
    found = [Case("fixtures", f"{name}:{number}", "default", text)
             for name in FIXTURE_FILES for number, text in _object_lines(FIXTURES / name)]
    counting = test_counting.records(bases.counting_refs)
    found += [Case("counting", name, setting, json.dumps(record, ensure_ascii=False))
              for setting in SETTINGS for name, record in counting.items()]
    found += [Case("swift_formats", name, "default", json.dumps(record, ensure_ascii=False))
              for name, (_, record) in test_swift_formats.RECORDS.items()]
    return found


def as_json(value: Any) -> Any:
    """A loader row as JSON (bytes as {"base64": ...})."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return value


def packed(answer: dict[str, Any]) -> dict[str, Any]:
    """An encode with input_ids and labels run-length packed ([value, times] pairs): image pads and -100 labels come
    in runs of hundreds."""
    if "error" in answer:
        return {"error": answer["error"]}
    return {**answer, "input_ids": _runs(answer["input_ids"]), "labels": _runs(answer["labels"])}


def unpacked(runs: list[list[int]]) -> list[int]:
    return [value for value, times in runs for _ in range(times)]


def _runs(values: list[int]) -> list[list[int]]:
    return [[value, len(list(group))] for value, group in groupby(values)]


def load_golden() -> dict[str, Any]:
    return json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))
