"""`vlprep show`: the record as training sees it. Its ids and labels equal ms-swift's position by position, on records of
all three input formats with tool turns, several turns and several images: each raw record is loaded by ms-swift's own
loader (`swift.dataset.load_dataset` on a one-record file, as `swift sft --dataset` does) and encoded by its `qwen3_vl`
template in train mode (SwiftOracle, a child process). A cache row shows the same as its source line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from insight_data import write_images, write_jsonl
from vlprep.cli.app import app
from vlprep.run.engine import run
from vlprep.run.pipeline import PipelineOptions
from vlprep.counting.settings import CountSettings
from vlprep.cache.swift_oracle import SwiftOracle

runner = CliRunner()
TOOL_CALL = '<tool_call>\n{"name": "lookup", "arguments": {"q": "cat"}}\n</tool_call>'


def fixture_records(images: dict[str, Path]) -> dict[str, dict[str, Any]]:
    small, wide, tall = (str(images[name]) for name in ("small", "wide", "tall"))
    return {
        "messages_multi_image_multi_turn": {
            "messages": [{"role": "system", "content": "You describe images."},
                         {"role": "user", "content": "<image><image>Compare the two pictures."},
                         {"role": "assistant", "content": "The first is wider."},
                         {"role": "user", "content": "And the colours?"},
                         {"role": "assistant", "content": "Both are blue-ish."}],
            "images": [small, wide]},
        "messages_tool_turns": {
            "messages": [{"role": "user", "content": "<image>Look this up."},
                         {"role": "assistant", "content": TOOL_CALL},
                         {"role": "tool", "content": '{"answer": "a cat"}'},
                         {"role": "tool", "content": '{"answer": "a mat"}'},
                         {"role": "assistant", "content": "A cat on a mat."}],
            "images": [tall]},
        "sharegpt_tool_turns": {
            "conversations": [{"from": "human", "value": "<image>What is it?"},
                              {"from": "gpt", "value": TOOL_CALL},
                              {"from": "observation", "value": "a dog"},
                              {"from": "observation", "value": "a cat"},
                              {"from": "gpt", "value": "A dog and a cat."}],
            "images": [wide], "system": "Use tools."},
        "sharegpt_multi_turn": {
            "conversations": [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": "A square."},
                              {"from": "human", "value": "Bigger?"}, {"from": "gpt", "value": "No."}],
            "image": small},
        "openai_parts_multi_image": {
            "messages": [{"role": "user", "content": [{"type": "image", "image": small},
                                                      {"type": "text", "text": "and"},
                                                      {"type": "image_url", "image_url": {"url": tall}},
                                                      {"type": "text", "text": "Which is taller?"}]},
                         {"role": "assistant", "content": [{"type": "text", "text": "The second one."}]},
                         {"role": "user", "content": [{"type": "text", "text": "Sure?"}]},
                         {"role": "assistant", "content": "Yes."}]},
    }


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> Path:
    root = tmp_path_factory.mktemp("show")
    return write_jsonl(root / "data.jsonl", list(fixture_records(write_images(root / "images")).values()))


def show_json(*args: Any) -> dict[str, Any]:
    result = runner.invoke(app, ["show", *map(str, args), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def loaded_by_ms_swift(record: dict[str, Any], folder: Path, name: str) -> dict[str, Any]:
    """The row `swift sft --dataset` would encode for this record (its loader maps the input format)."""
    from swift.dataset import load_dataset

    single = write_jsonl(folder / f"{name}.jsonl", [record])
    train, _ = load_dataset([str(single)], split_dataset_ratio=0.0, num_proc=1)
    assert len(train) == 1, name
    return json.loads(json.dumps(train[0]))


@pytest.mark.swift
def test_show_labels_are_ms_swift_template_labels(fixture_file: Path, embedded_processor_path: Path,
                                                   tmp_path: Path) -> None:
    records = fixture_records(write_images(fixture_file.parent / "images"))
    results = list(run([fixture_file], PipelineOptions(keep_records=True), 1))
    assert [result.input_format for result in results] == ["messages", "messages", "sharegpt", "sharegpt", "openai"]
    oracle = SwiftOracle(str(embedded_processor_path), CountSettings().environment())
    try:
        for (name, record), result in zip(records.items(), results):
            view = show_json(f"{fixture_file}:{result.line}")
            theirs = oracle.encode(loaded_by_ms_swift(record, tmp_path, name))
            assert "error" not in theirs, (name, theirs)
            assert view["input_ids"] == theirs["input_ids"], name
            for position, (ours, swift) in enumerate(zip(view["labels"], theirs["labels"])):
                assert ours == swift, f"{name}: label at {position}: ours {ours}, ms-swift {swift}"
            assert len(view["labels"]) == len(theirs["labels"]) == view["length"] == theirs["length"]
            assert [image["grid"] for image in view["images"]] == theirs["image_grid_thw"]
            trained = sum(1 for label in theirs["labels"] if label != -100)
            assert view["trained_tokens"] == trained == sum(span["tokens"] for span in view["spans"] if span["trained"])
            image_spans = [span for span in view["spans"] if span["kind"] == "image"]
            assert [span["grid"] for span in image_spans] == theirs["image_grid_thw"]
            assert [span["tokens"] for span in image_spans] == [t * h * w // 4 for t, h, w in theirs["image_grid_thw"]]
            assert sum(turn["tokens"] for turn in view["turns"]) == view["length"]
            assert sum(turn["trained"] for turn in view["turns"]) == trained
            assert {turn["role"] for turn in view["turns"]} >= {"user", "assistant"}
    finally:
        oracle.close()


def test_show_text_collapses_image_pads_and_marks_trained_tokens(fixture_file: Path) -> None:
    result = runner.invoke(app, ["show", f"{fixture_file}:1"])
    assert result.exit_code == 0, result.output
    markers = re.findall(r"\[<\|image_pad\|> ×([\d,]+) grid (\d+)×(\d+)×(\d+)\]", result.stdout)
    assert [(int(count), int(t) * int(h) * int(w) // 4) for count, t, h, w in markers] == [(80, 80), (440, 440)]
    assert "<|image_pad|><|image_pad|>" not in result.stdout
    assert "grid 1×16×20" in result.stdout  # small: 320x240 → 20 patches wide, 16 high
    assert "«The first is wider.<|im_end|>\n»" in result.stdout
    assert "turn assistant" in result.stdout and "turn system" in result.stdout


def test_cache_row_shows_what_its_source_line_shows(fixture_file: Path, tmp_path: Path) -> None:
    cache = runner.invoke(app, ["cache", "-q", str(fixture_file), "--out", str(tmp_path / "cache"), "--verify", "0",
                                "-j", "1"])
    assert cache.exit_code == 0, cache.output
    for row in range(5):
        cached, source = show_json(tmp_path / "cache", "--row", row), show_json(f"{fixture_file}:{row + 1}")
        assert (cached["input_ids"], cached["labels"], cached["spans"]) == (
            source["input_ids"], source["labels"], source["spans"])
        assert cached["where"].endswith(f"{fixture_file}:{row + 1})")


def test_show_refuses_rejected_lines_and_missing_rows(fixture_file: Path, tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [], extra_lines=("{not json",))
    result = runner.invoke(app, ["show", f"{bad}:1"])
    assert result.exit_code == 2 and "J001" in result.output and "rejected" in result.output
    result = runner.invoke(app, ["show", f"{fixture_file}:99"])
    assert result.exit_code == 2 and "no line 99" in result.output
