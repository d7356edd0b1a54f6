"""Everything ms-swift reads survives into the cache: its input formats, tools and agent roles, per-turn loss, channel.

The oracle is ms-swift itself: each fixture line is loaded by ms-swift's own loader (`swift.dataset.load_dataset` on a
one-record file, as `swift sft --dataset` loads it) and encoded by its `qwen3_vl` template. For every record:
vlprep's header-only count = that encode, and ms-swift's encode of the cached row (read back with `load_from_disk`, as
`--cached_dataset` does) = that encode, input_ids and labels position by position. The cache is built through the CLI
with its default options (verification on). Records ms-swift cannot take, or vlprep cannot count, are rejected by lint
with their own rule codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pytest
from PIL import Image
from typer.testing import CliRunner

from vlprep.checks.images import ImageLimits, check_image
from vlprep.cli.app import app
from vlprep.records.normalize import normalize
from vlprep.counting.settings import CountSettings
from vlprep.cache.swift_oracle import SwiftOracle
from vlprep.counting.tokens import TokenCounter
from vlprep.cache.verify import structure, verify_answer
from vlprep.cache.writer import as_stored

runner = CliRunner()

WEATHER = {"name": "get_weather", "description": "Get the weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "城市"}},
                          "required": ["city"]}}
ZOOM = {"type": "function", "function": {"name": "zoom", "description": "Zoom into the screen",
                                         "parameters": {"type": "object", "properties": {"x": {"type": "integer"},
                                                                                         "y": {"type": "integer"}}}}}
CLICK = {"type": "function", "function": {"name": "click", "description": "Click a point",
                                          "parameters": {"type": "object", "properties": {"x": {"type": "integer"},
                                                                                          "y": {"type": "integer"}}}}}


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def turn(role: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


# name -> (input format lint must report, record as written in the JSONL)
RECORDS: dict[str, tuple[str, dict[str, Any]]] = {
    "tools_list": ("messages", {"tools": [WEATHER], "messages": [
        turn("user", "Weather in Paris?"), turn("assistant", "Let me check: it is sunny.")]}),
    "tools_string_agent_roles": ("messages", {"tools": json.dumps([WEATHER]), "messages": [
        turn("system", "You are a weather bot."), turn("user", "Weather in Paris?"),
        turn("tool_call", call("get_weather", city="Paris")), turn("tool_response", '{"weather": "sunny"}'),
        turn("assistant", "It is sunny in Paris.")]}),
    "parallel_calls_with_images": ("messages", {"tools": [ZOOM, CLICK], "images": ["screen.png", "zoomed.png"],
                                                "messages": [
        turn("system", "You operate a phone."), turn("user", "<image>Open the settings."),
        turn("tool_call", call("zoom", x=10, y=20)), turn("tool_call", call("click", x=30, y=40)),
        turn("tool_response", "<image>zoomed in"), turn("tool_response", "clicked"),
        turn("assistant", "Thought: the menu is open."), turn("tool_call", call("click", x=1, y=2)),
        turn("tool", "done"), turn("assistant", "Settings are open.")]}),
    "loss_false_on_several_turns": ("messages", {"images": ["photo.jpg"], "messages": [
        turn("user", "<image>What is this?"), turn("assistant", "A gradient.", loss=False),
        turn("user", "Which colours?"), turn("assistant", "Red and blue.", loss=True),
        turn("user", "Sure?"), turn("assistant", "Yes.", loss=False),
        turn("user", "Thanks."), turn("assistant", "You are welcome.", loss=False)]}),
    "loss_false_on_a_tool_call": ("messages", {"tools": [WEATHER], "messages": [
        turn("user", "Weather?"), turn("tool_call", call("get_weather", city="Rome"), loss=False),
        turn("tool_response", "rain"), turn("assistant", "Rain.")]}),
    "channel_and_label": ("messages", {"channel": "chat", "label": 1, "messages": [
        turn("user", "Hi"), turn("assistant", "Hello!")]}),
    "singular_image_without_tag": ("messages", {"image": "photo.jpg", "messages": [
        turn("user", "Describe it."), turn("assistant", "A colour gradient.")]}),
    "content_and_value": ("messages", {"messages": [
        {"role": "user", "content": "ignored", "value": "What is 2+2?"}, turn("assistant", "4")]}),
    "gpt_and_human_roles_in_messages": ("messages", {"messages": [turn("human", "Hi"), turn("gpt", "Hello.")]}),
    "openai_tool_calls": ("openai", {"tools": [WEATHER], "messages": [
        turn("user", "Weather in Oslo and Rome?"),
        turn("assistant", "", tool_calls=[
            {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]),
        turn("tool", "sunny", tool_call_id="b"), turn("tool", "snow", tool_call_id="a"),
        turn("assistant", "Snow in Oslo, sun in Rome.")]}),
    "openai_null_content_and_tool_parts": ("openai", {"tools": [WEATHER], "messages": [
        turn("user", "Weather in Oslo?"),
        turn("assistant", None, tool_calls=[{"id": "c", "type": "function",
                                             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]),
        turn("tool", [{"type": "text", "text": "snow"}], tool_call_id="c"), turn("assistant", "Snow.")]}),
    "openai_parts": ("openai", {"messages": [
        turn("user", [{"type": "image_url", "image_url": {"url": "photo.jpg"}}, {"type": "text", "text": "What?"}]),
        turn("assistant", [{"type": "text", "text": "A gradient."}])]}),
    "sharegpt_function_call": ("sharegpt", {"tools": json.dumps([WEATHER]), "system": "Be brief.", "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": call("get_weather", city="Paris")},
        {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]}),
    "sharegpt_bot_and_loss": ("sharegpt", {"image": "photo.jpg", "conversations": [
        {"from": "human", "value": "<image>Hi"}, {"from": "bot", "value": "Hello.", "loss": False},
        {"from": "human", "value": "Again?"}, {"from": "bot", "value": "Hello again."}]}),
    "query_response_history": ("query-response", {"system": "You are terse.", "query": "And 3+3?",
                                                  "response": "6", "history": [["2+2?", "4"], ["1+1?", "2"]]}),
    "query_response_images_tools": ("query-response", {"query": "<image>Weather on this photo's city?",
                                                       "response": "Sunny.", "images": ["photo.jpg"],
                                                       "tools": [WEATHER]}),
    "prompt_completion_aliases": ("query-response", {"prompt": "Say hi.", "completion": "Hi!"}),
    "alpaca": ("alpaca", {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}),
    "grounding_real_boxes": ("messages", {"images": ["photo.jpg"], "objects": {
        "ref": ["the bright corner", "the dark corner"], "bbox": [[250, 190, 12, 30], [0, 0, 100.5, 80]]},
        "messages": [turn("user", "<image>Find <ref-object> and <ref-object>."), turn("assistant", "<bbox> and <bbox>")]}),
    "grounding_norm1_two_images": ("messages", {"images": ["photo.jpg", "screen.png"], "objects": {
        "ref": ["button"], "bbox": [[0.1, 0.2, 0.35, 0.5]], "bbox_type": "norm1", "image_id": [1]},
        "messages": [turn("user", "<image><image>Where is <ref-object> in the second image?"),
                     turn("assistant", "At <bbox>.", loss=True)]}),
    "grounding_sharegpt_point": ("sharegpt", {"image": "screen.png", "objects": {"ref": ["icon"], "bbox": [[180, 390]]},
                                              "conversations": [{"from": "human", "value": "<image>Point at <ref-object>."},
                                                                {"from": "gpt", "value": "<bbox>"}]}),
    "grounding_query_response": ("query-response", {"query": "<image>Box <ref-object>.", "response": "<bbox>",
                                                    "images": ["photo.jpg"], "objects": {"ref": ["everything"],
                                                                                         "bbox": [[0, 0, 320, 240]]}}),
    "alpaca_with_history_and_system": ("alpaca", {"system": "Be exact.", "instruction": "Continue the count.",
                                                  "input": "", "output": "3", "history": [["Count.", "1 2"]]}),
    "alpaca_image_empty_input": ("alpaca", {"instruction": "<image>Caption this.", "input": "",
                                            "output": "A gradient.", "images": ["screen.png"]}),
}


def write_images(folder: Path) -> None:
    ramp = Image.linear_gradient("L")
    Image.merge("RGB", (ramp.resize((320, 240)), ramp.resize((320, 240)).rotate(90), ramp.resize((320, 240)))
                ).save(folder / "photo.jpg", quality=85)
    ramp.resize((360, 780)).convert("RGB").save(folder / "screen.png")
    ramp.resize((200, 120)).convert("RGB").save(folder / "zoomed.png")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("swift-formats")
    write_images(folder)
    (folder / "all.jsonl").write_text("".join(json.dumps(record, ensure_ascii=False) + "\n"
                                              for _, record in RECORDS.values()), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def oracle(embedded_processor_path: Path) -> Iterator[SwiftOracle]:
    with SwiftOracle(str(embedded_processor_path), CountSettings().environment()) as started:
        yield started


def image_infos(record: dict[str, Any], base_dir: Path) -> list[Any]:
    infos = [check_image(ref, base_dir, None, ImageLimits()).info for ref in record["images"]]
    assert None not in infos
    return infos


def by_format(fmt: str) -> list[Any]:
    return [pytest.param(name, id=name) for name, (record_format, _) in RECORDS.items() if record_format == fmt]


def test_corpus_covers_every_feature_in_every_format_that_can_express_it() -> None:
    """The fixture really holds each feature the issue names, in the formats that can express it."""
    def has(fmt: str, predicate: Any) -> bool:
        return any(predicate(record) for record_format, record in RECORDS.values() if record_format == fmt)

    turns = lambda record: record.get("messages") or record.get("conversations") or []  # noqa: E731
    assert has("messages", lambda r: isinstance(r.get("tools"), list)) and has("messages", lambda r: isinstance(
        r.get("tools"), str))
    assert has("sharegpt", lambda r: "tools" in r) and has("query-response", lambda r: "tools" in r)
    parallel = lambda r: any(a.get("role") == b.get("role") == "tool_call" for a, b in zip(turns(r), turns(r)[1:]))  # noqa: E731
    assert has("messages", lambda r: parallel(r) and r.get("images"))
    assert has("openai", lambda r: any(len(t.get("tool_calls", [])) > 1 for t in turns(r)))
    several_false = lambda r: sum(t.get("loss") is False for t in turns(r)) >= 3  # noqa: E731
    assert has("messages", several_false) and has("sharegpt", lambda r: any("loss" in t for t in turns(r)))
    assert has("sharegpt", lambda r: any(t["from"] == "function_call" for t in turns(r)))
    for fmt in ("messages", "sharegpt", "query-response"):
        assert has(fmt, lambda r: "objects" in r)
    assert has("messages", lambda r: r.get("objects", {}).get("bbox_type") == "norm1")
    assert has("messages", lambda r: "objects" in r and r["objects"].get("bbox_type") is None)
    assert {fmt for fmt, _ in RECORDS.values()} == {"messages", "openai", "sharegpt", "query-response", "alpaca"}


@pytest.mark.parametrize("name", list(RECORDS))
def test_lint_accepts_and_names_the_format(name: str, corpus: Path) -> None:
    fmt, record = RECORDS[name]
    path = corpus / f"{name}.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["lint", str(path), "-q", "--workers", "1", "--format", "json"])
    report = json.loads(result.stdout)
    assert [d for d in report["diagnostics"] if d["severity"] == "error"] == []
    assert report["summary"]["files"][0]["formats"] == {fmt: 1}


@pytest.mark.parametrize("name", list(RECORDS))
@pytest.mark.swift
def test_vlprep_count_equals_ms_swift_on_the_original_line(name: str, corpus: Path, oracle: SwiftOracle,
                                                          embedded_processor: Any) -> None:
    """vlprep's count of the normalized record = ms-swift's loader + template on the raw line; and ms-swift's encode
    of the row vlprep would cache (through the split's Arrow schema) = the same, position by position."""
    _, record = RECORDS[name]
    line = json.dumps(record, ensure_ascii=False)
    normalized = normalize(json.loads(line))
    assert normalized.record is not None
    infos = image_infos(normalized.record, corpus)
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, CountSettings())
    ours = counter.encode(normalized.record, infos)
    row = {**normalized.record, "images": [info.path for info in infos]}
    theirs = oracle.encode(as_stored({**row, "lengths": len(ours.input_ids), "vlprep_source": "", "vlprep_line": 1,
                                      "vlprep_image_grid_thw": [], "vlprep_image_tokens": 0,
                                      "vlprep_image_size": [], "vlprep_image_mtime_ns": []}),
                           raw={"text": line, "base_dir": str(corpus)})
    assert "error" not in theirs["raw"], theirs["raw"]
    assert ours.input_ids == theirs["raw"]["input_ids"]
    assert ours.labels == theirs["raw"]["labels"]
    assert [list(grid) for grid in ours.grids] == theirs["raw"]["image_grid_thw"]
    assert theirs["input_ids"] == theirs["raw"]["input_ids"]
    assert theirs["labels"] == theirs["raw"]["labels"]
    assert verify_answer(ours, theirs) is None


@pytest.mark.swift
def test_verification_sees_a_field_lost_in_normalization(corpus: Path, oracle: SwiftOracle,
                                                         embedded_processor: Any) -> None:
    """What made the loss invisible before: a row and a count without `tools` agree with each other, not with the line."""
    _, record = RECORDS["tools_string_agent_roles"]
    line = json.dumps(record, ensure_ascii=False)
    normalized = normalize(json.loads(line)).record
    assert normalized is not None
    stripped = {key: value for key, value in normalized.items() if key != "tools"}
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, CountSettings())
    ours = counter.encode(stripped, [])
    theirs = oracle.encode(stripped, raw={"text": line, "base_dir": str(corpus)})
    assert ours.input_ids == theirs["input_ids"]  # the old check: count vs a re-encode of vlprep's own copy
    problem = verify_answer(ours, theirs)
    assert problem is not None and "original line" in problem
    with_tools = counter.encode(normalized, [])
    assert verify_answer(with_tools, theirs) is not None and "cached row" in verify_answer(with_tools, theirs)


@pytest.mark.swift
def test_cache_with_default_options_verifies_every_record_against_its_line(corpus: Path, oracle: SwiftOracle,
                                                                           embedded_processor: Any) -> None:
    """`vlprep cache` (verification on by default) keeps every record, and each row read back from the split the way
    `--cached_dataset` reads it encodes exactly as ms-swift encodes the original line."""
    out = corpus / "cache"
    result = runner.invoke(app, ["cache", str(corpus / "all.jsonl"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["train"] == len(RECORDS)
    verified = manifest["verification"]["ms_swift_template"]
    assert verified["records_checked"] == min(16, len(RECORDS)) + verified["for_coverage"]
    lines = (corpus / "all.jsonl").read_text(encoding="utf-8").splitlines()
    rows = datasets.load_from_disk(str(out / "train"))
    assert len(rows) == len(RECORDS)
    for row in rows:
        theirs = oracle.encode(row, raw={"text": lines[row["vlprep_line"] - 1], "base_dir": str(corpus)})
        name = list(RECORDS)[row["vlprep_line"] - 1]
        assert "error" not in theirs and "error" not in theirs["raw"], (name, theirs)
        assert theirs["input_ids"] == theirs["raw"]["input_ids"], name
        assert theirs["labels"] == theirs["raw"]["labels"], name
        assert row["lengths"] == theirs["raw"]["length"] == len(theirs["input_ids"]), name
        assert row["vlprep_image_grid_thw"] == theirs["raw"]["image_grid_thw"], name


# ---------------------------------------------------------------------------------------------------------------
# What ms-swift cannot take, or vlprep cannot count, is rejected with its own code and reason
# ---------------------------------------------------------------------------------------------------------------

ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "tool_call_not_json": ("S018", {"tools": [WEATHER], "messages": [
        turn("user", "Weather?"), turn("tool_call", "get_weather(Paris)"), turn("tool_response", "sun"),
        turn("assistant", "Sun.")]}),
    "tool_call_unknown_function": ("S018", {"tools": [WEATHER], "messages": [
        turn("user", "Weather?"), turn("tool_call", call("get_forecast", city="Paris")), turn("tool_response", "sun"),
        turn("assistant", "Sun.")]}),
    "tool_not_an_object": ("S018", {"tools": ["not a tool"], "messages": [turn("user", "Hi"), turn("assistant", "Hi")]}),
    "tool_with_null": ("S014", {"tools": [{"name": "f", "parameters": None}], "messages": [
        turn("user", "Hi"), turn("assistant", "Hi")]}),
    "tools_list_mixing_int_and_float": ("S014", {"tools": [
        {"name": "a", "parameters": {"type": "object", "properties": {"n": {"type": "number", "minimum": 0}}}},
        {"name": "b", "parameters": {"type": "object", "properties": {"n": {"type": "number", "minimum": 0.5}}}}],
        "messages": [turn("user", "Hi"), turn("assistant", "Hi")]}),
    "objects_without_images": ("S014", {"objects": {"ref": ["cat"], "bbox": [[1, 2, 3, 4]]},
                                        "messages": [turn("user", "Find <ref-object>"), turn("assistant", "<bbox>")]}),
    "bbox_three_numbers": ("S020", {"objects": {"ref": ["cat"], "bbox": [[1, 2, 3]]}, "images": ["photo.jpg"],
                                    "messages": [turn("user", "<image>Find <ref-object>"), turn("assistant", "<bbox>")]}),
    "bbox_outside_the_image": ("S022", {"objects": {"ref": ["cat"], "bbox": [[10, 20, 330, 40]]},
                                        "images": ["photo.jpg"],
                                        "messages": [turn("user", "<image>Find <ref-object>"),
                                                     turn("assistant", "<bbox>")]}),
    "norm1_box_outside_0_1": ("S022", {"objects": {"ref": ["cat"], "bbox": [[0.1, 0.2, 1.3, 0.4]], "bbox_type": "norm1"},
                                       "images": ["photo.jpg"],
                                       "messages": [turn("user", "<image>Find <ref-object>"),
                                                    turn("assistant", "<bbox>")]}),
    "more_bbox_tags_than_boxes": ("S021", {"objects": {"ref": ["cat"], "bbox": [[1, 2, 3, 4]]}, "images": ["photo.jpg"],
                                           "messages": [turn("user", "<image>Find <ref-object>"),
                                                        turn("assistant", "<bbox> <bbox>")]}),
    "image_id_out_of_range": ("S020", {"objects": {"ref": ["cat"], "bbox": [[1, 2, 3, 4]], "image_id": [1]},
                                       "images": ["photo.jpg"],
                                       "messages": [turn("user", "<image>Find <ref-object>"),
                                                    turn("assistant", "<bbox>")]}),
    "loss_scale": ("S014", {"messages": [turn("user", "Hi"), turn("assistant", "Hi", loss_scale=0.5)]}),
    "loss_not_a_bool": ("S017", {"messages": [turn("user", "Hi"), turn("assistant", "Hi", loss="no")]}),
    "content_null": ("S003", {"messages": [turn("user", "Hi"), turn("assistant", None)]}),
    "parts_image_path_object": ("S012", {"messages": [
        turn("user", [{"type": "image", "image": {"path": "photo.jpg"}}, {"type": "text", "text": "What?"}]),
        turn("assistant", "A gradient.")]}),
    "parts_in_system_turn": ("S003", {"messages": [
        turn("system", [{"type": "text", "text": "Be brief."}]), turn("user", "Hi"), turn("assistant", "Hi")]}),
    "response_empty_list": ("S003", {"query": "Hi", "response": []}),
    "response_list_not_strings": ("S003", {"query": "Hi", "response": ["a", ["b"]]}),
    "instruction_not_a_string": ("S003", {"instruction": {"text": "Do it"}, "input": "", "output": "Done."}),
    "role_typo": ("S002", {"messages": [turn("user", "Hi"), turn("asistant", "Hello")]}),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_what_cannot_be_cached_exactly_is_rejected_with_its_code(name: str, corpus: Path) -> None:
    code, record = ERRORS[name]
    path = corpus / f"error-{name}.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["lint", str(path), "-q", "--workers", "1", "--format", "json"])
    assert result.exit_code == 1, result.output
    errors = {d["code"] for d in json.loads(result.stdout)["diagnostics"] if d["severity"] == "error"}
    assert code in errors


def test_role_typo_is_reported_in_the_input_vocabulary_with_a_suggestion_and_nothing_piled_on(tmp_path: Path) -> None:
    path = tmp_path / "typo.jsonl"
    path.write_text(json.dumps({"conversations": [{"from": "humna", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]})
                    + "\n" + json.dumps({"messages": [turn("user", "Hi"), turn("asistant", "Hello")]}) + "\n")
    result = runner.invoke(app, ["lint", str(path), "-q", "--workers", "1", "--format", "json"])
    diagnostics = json.loads(result.stdout)["diagnostics"]
    first = [d for d in diagnostics if d["line"] == 1]
    second = [d for d in diagnostics if d["line"] == 2]
    assert [d["code"] for d in first] == ["S002"]
    assert first[0]["message"].startswith("conversations[0].from is 'humna'; expected one of human, gpt, system")
    assert "did you mean 'human'?" in first[0]["message"]
    assert [d["code"] for d in second if d["code"] != "F001"] == ["S002"]
    assert "messages[1].role is 'asistant'" in second[0]["message"] and "did you mean 'assistant'?" in second[0]["message"]


def test_tool_result_without_a_call_and_ignored_keys_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "warnings.jsonl"
    path.write_text(json.dumps({"rejected_response": "Bad.", "extra": 1, "messages": [
        turn("user", "Hi", name="u"), turn("tool", "orphan result"), turn("assistant", "Hello")]}) + "\n")
    result = runner.invoke(app, ["lint", str(path), "-q", "--workers", "1", "--format", "json"])
    codes = [d["code"] for d in json.loads(result.stdout)["diagnostics"]]
    assert {"S019", "S015", "S009"} <= set(codes)
    assert codes.count("S009") == 2  # `extra` and messages[0].name


@pytest.mark.parametrize("command", ["lint", "cache"])
def test_fractional_max_ratio_is_refused_as_ms_swift_reads_an_integer(command: str, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"messages": [turn("user", "Hi"), turn("assistant", "Hello")]}) + "\n")
    extra = ["--out", str(tmp_path / "out")] if command == "cache" else []
    result = runner.invoke(app, [command, str(path), "-q", "--max-ratio", "2.5", *extra])
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_one_column_named_two_ways_in_a_file_is_reported(tmp_path: Path) -> None:
    """ms-swift's loader renames `image` to `images` only when no other record of the file says `images`: otherwise it
    renames neither and the `image` records lose their picture (checked with its loader when this rule was written)."""
    write_images(tmp_path)
    path = tmp_path / "aliases.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in [
        {"messages": [turn("user", "<image>What?"), turn("assistant", "A gradient.")], "images": ["photo.jpg"]},
        {"messages": [turn("user", "<image>And this?"), turn("assistant", "A screen.")], "image": "screen.png"},
        {"query": "Say hi.", "response": "Hi."}, {"prompt": "Say bye.", "response": "Bye."}]))
    result = runner.invoke(app, ["lint", str(path), "-q", "--workers", "1", "--format", "json"])
    found = {(d["code"], d["line"]) for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "F003"}
    assert found == {("F003", 2), ("F003", 4)}


@pytest.mark.swift
def test_keys_of_other_tasks_do_not_stop_the_build(tmp_path: Path, embedded_processor: Any) -> None:
    """`rejected_response` (RLHF data, S015, not cached) can make ms-swift's loader drop the line (equal to the response);
    verification compares what SFT trains on, so the build goes through with the warning."""
    path = tmp_path / "rlhf.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in [
        {"messages": [turn("user", "Hi"), turn("assistant", "Good.")], "rejected_response": "Bad."},
        {"messages": [turn("user", "Hi!"), turn("assistant", "Good!")], "rejected_response": "Good!"}]))
    out = tmp_path / "cache"
    result = runner.invoke(app, ["cache", str(path), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["train"] == 2
    assert manifest["verification"]["ms_swift_template"]["records_checked"] == 2


@pytest.mark.swift
def test_lines_loaded_together_get_the_answers_each_gets_alone(corpus: Path, oracle: SwiftOracle) -> None:
    """The cache hands ms-swift's loader the sampled lines of one file and one structure together (one loader call
    for the batch): each line's answer is the one it gets loaded alone; when the loader drops a line of the batch,
    every line is loaded alone again, so the dropped one is named by its own answer."""
    def line(index: int, reply: str | None) -> str:
        return json.dumps({"messages": [{"role": "user", "content": f"<image>Question {index}?"},
                                        {"role": "assistant", "content": reply}],
                           "images": ["photo.jpg" if index % 2 else "screen.png"]})

    good = [line(index, f"Answer {index}.") for index in range(4)]
    dropped = line(9, None)  # null content: ms-swift's loader drops the record
    assert len({structure(text) for text in [*good, dropped]}) == 1  # what lets the cache batch them
    row = {"messages": [{"role": "user", "content": "<image>Question?"}, {"role": "assistant", "content": "A."}],
           "images": [str(corpus / "photo.jpg")]}

    def answers(texts: list[str]) -> dict[int, dict[str, Any]]:
        oracle.submit_batch([(key, row, text) for key, text in enumerate(texts)], base_dir=str(corpus))
        return dict(oracle.take() for _ in texts)

    alone = [oracle.encode(as_stored(row), raw={"text": text, "base_dir": str(corpus)}) for text in [*good, dropped]]
    together = answers(good)
    assert [together[key]["raw"] for key in range(len(good))] == [answer["raw"] for answer in alone[:len(good)]]
    assert all("error" not in together[key]["raw"] for key in together)
    with_dropped = answers([good[0], dropped, good[1]])
    assert with_dropped[0]["raw"] == alone[0]["raw"] and with_dropped[2]["raw"] == alone[1]["raw"]
    assert with_dropped[1]["raw"] == alone[-1]["raw"] and "error" in alone[-1]["raw"]  # (an empty file: it fails)
    assert {key: {k: v for k, v in answer.items() if k != "raw"} for key, answer in together.items()} == {
        key: {k: v for k, v in alone[0].items() if k != "raw"} for key in together}  # the cached row, encoded
