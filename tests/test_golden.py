"""vlprep's normalize() and TokenCounter against ms-swift's own answers, captured once by tests/golden/capture.py
(`make golden`) into tests/golden/counting.json: for every record of the bundled record sets, ms-swift's loader row
and its `qwen3_vl` template's input_ids, labels, length and grids on the original line. Seconds, without starting
ms-swift; the live parity tests (test_counting.py, test_swift_formats.py, the cache's verification) stay in `make test`.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from golden_cases import SETTINGS, Bases, cases, load_golden, unpacked, write_bases
from support import lint_json
from vlprep.cache.verify import compare
from vlprep.checks.images import ImageLimits, check_image
from vlprep.counting.tokens import TokenCounter
from vlprep.records.normalize import normalize

GOLDEN = load_golden()
ENCODED = [case for case in GOLDEN["cases"] if "swift" in case and "error" not in case["swift"]]
REFUSED = [case for case in GOLDEN["cases"] if case not in ENCODED]  # by ms-swift's loader or template
# Lines ms-swift encodes that vlprep rejects on purpose: the planted problems of the lint fixture, and the planted
# <image> tag count problems of demo.jsonl and llava.jsonl. Any other would be a line vlprep wrongly refuses.
REJECTED_ON_PURPOSE = {"planted.jsonl", "demo.jsonl:14", "llava.jsonl:5"}


def case_id(case: dict[str, Any]) -> str:
    return f"{case['base']}-{case['name']}-{case['setting']}"


def key(case: dict[str, Any]) -> tuple[str, str, str]:
    return case["base"], case["name"], case["setting"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Bases:
    return write_bases(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def linted_errors(bases: Bases, tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any
                  ) -> set[tuple[str, str, str]]:
    """The cases `vlprep lint` finds an error in: with the settings' options and counting on (--max-length above
    any record), images resolved where the capture resolved them."""
    folder = tmp_path_factory.mktemp("golden-lint")
    found = set()
    groups = {(case["base"], case["setting"]) for case in GOLDEN["cases"]}
    for base, setting in sorted(groups):
        group = [case for case in GOLDEN["cases"] if (case["base"], case["setting"]) == (base, setting)]
        data = folder / f"{base}-{setting}.jsonl"
        data.write_text("".join(case["line"] + "\n" for case in group), encoding="utf-8")
        settings = SETTINGS[setting]
        _, report = lint_json(str(data), "--image-root", str(bases.folders[base]), "--workers", "1",
                              "--max-length", "100000", "--image-max-tokens", str(settings.image_max_tokens),
                              "--image-min-tokens", str(settings.image_min_tokens), "--max-ratio", str(settings.max_ratio))
        found |= {key(group[diagnostic["line"] - 1]) for diagnostic in report["diagnostics"]
                  if diagnostic["severity"] == "error" and diagnostic["line"]}
    return found


def image_infos(record: dict[str, Any], base_dir: Path) -> list[Any]:
    infos = []
    for ref in record.get("images", []):
        checked = check_image(ref, base_dir, None, ImageLimits())
        assert checked.info is not None, checked.problems
        infos.append(checked.info)
    return infos


def test_the_golden_file_holds_todays_record_sets(bases: Bases) -> None:
    """When a record set, a fixture, the pixel settings or ms-swift change, `make golden` captures them again."""
    today = [(case.base, case.name, case.setting, case.line) for case in cases(bases)]
    assert today == [(case["base"], case["name"], case["setting"], case["line"]) for case in GOLDEN["cases"]]
    assert GOLDEN["settings"] == {name: settings.to_json() for name, settings in SETTINGS.items()}
    assert GOLDEN["ms_swift"] == version("ms-swift")


@pytest.mark.parametrize("case", ENCODED, ids=case_id)
def test_counter_equals_ms_swift_on_the_line(case: dict[str, Any], bases: Bases, linted_errors: set[Any],
                                             embedded_processor: Any) -> None:
    """What ms-swift's loader and template make of the line, position by position; a line vlprep rejects is one of
    the planted problems."""
    if key(case) in linted_errors:
        assert case["name"] in REJECTED_ON_PURPOSE or case["name"].split(":")[0] in REJECTED_ON_PURPOSE, case["name"]
        return
    normalized = normalize(json.loads(case["line"]))
    assert normalized.record is not None, normalized.problems
    infos = image_infos(normalized.record, bases.folders[case["base"]])
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, SETTINGS[case["setting"]])
    ours = counter.encode(normalized.record, infos)
    theirs = {**case["swift"], "input_ids": unpacked(case["swift"]["input_ids"]),
              "labels": unpacked(case["swift"]["labels"])}
    assert compare(ours, theirs) is None, compare(ours, theirs)
    assert ours.input_ids == theirs["input_ids"]  # field by field: a failure shows the values
    assert ours.labels == theirs["labels"]
    assert [list(grid) for grid in ours.grids] == theirs["image_grid_thw"]
    counted = counter.count(normalized.record, infos)
    assert counted.length == theirs["length"] == len(ours.input_ids)
    assert counted.grids == ours.grids


@pytest.mark.parametrize("case", [case for case in ENCODED if "loader_row" in case], ids=case_id)
def test_normalize_keeps_the_images_and_keys_ms_swifts_loader_keeps(case: dict[str, Any],
                                                                   linted_errors: set[Any]) -> None:
    """The same images in the same order, and the same top-level keys (tools, objects, channel, ...) as the loader's
    row. (The conversation itself is compared through its tokens above: vlprep writes typed parts as tags and
    `tool_response` as `tool`, which the template encodes alike.)"""
    if key(case) in linted_errors:
        return  # a planted problem (checked above): vlprep caches no record for it
    record = normalize(json.loads(case["line"])).record
    row = case["loader_row"]
    assert record is not None
    if "images" in row:  # (typed content parts keep their images inside the messages)
        assert record["images"] == [image["path"] for image in row["images"]]
    assert set(row) - {"images"} == set(record) - {"images"}
    for name in set(row) - {"images", "messages"}:
        if name == "objects":  # the loader's Arrow column holds the boxes as float32
            assert {**record[name], "bbox": None} == {**row[name], "bbox": None}
            assert record[name]["bbox"] == [pytest.approx(box, rel=1e-6) for box in row[name]["bbox"]]
        else:
            assert record[name] == row[name]


@pytest.mark.parametrize("case", REFUSED, ids=case_id)
def test_what_ms_swift_cannot_load_or_encode_lint_rejects(case: dict[str, Any], linted_errors: set[Any]) -> None:
    assert key(case) in linted_errors, case.get("loader_error") or case["swift"]["error"]
