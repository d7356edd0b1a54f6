"""Counting parity: vlprep's header-only TokenCounter against ms-swift's own `qwen3_vl` template, record by record.

Every record below is encoded twice: by `vlprep.counting.tokens.TokenCounter` (embedded tokenizer, image sizes from headers) and
by ms-swift 4.6 in a `SwiftOracle` child process (real pixels, the pixel limits in its environment). input_ids, labels,
length and image grids must be equal (`vlprep.cache.verify.compare`), under the default pixel limits and under small ones.
Records ms-swift cannot encode (found while writing these tests) are reproduced at the end: lint must reject them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from swift_oracles import Oracles
from vlprep.checks.images import ImageLimits, check_image
from vlprep.cli.app import app
from vlprep.counting.settings import CountSettings
from vlprep.counting.tokens import TokenCounter
from vlprep.models.qwen3_vl import QWEN3_VL
from vlprep.cache.verify import compare, swift_record

runner = CliRunner()

DEFAULT = CountSettings()
SMALL = CountSettings(image_max_tokens=64, image_min_tokens=16)
SETTINGS = {"default": DEFAULT, "small": SMALL}


IMAGE_NAMES = ("rgb", "rgba", "gray", "palette_alpha", "cmyk", "deep16", "icon", "animated", "tiny", "huge",
               "panorama", "strip", "data_uri")


def gradient(width: int, height: int) -> Image.Image:
    """A cheap non-uniform RGB image of any size (no per-pixel Python loop)."""
    ramp = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ramp.rotate(90)))


def write_images(folder: Path) -> dict[str, str]:
    """One image per pixel mode and size class; returns name -> reference as a record writes it."""
    folder.mkdir()
    gradient(320, 240).save(folder / "rgb.jpg", quality=85)
    gradient(64, 48).convert("RGBA").save(folder / "rgba.png")
    gradient(120, 80).convert("L").save(folder / "gray.png")
    gradient(40, 40).convert("P").save(folder / "palette_alpha.png", transparency=0)
    gradient(80, 60).convert("CMYK").save(folder / "cmyk.jpg", quality=85)
    Image.new("I;16", (64, 48), 40000).save(folder / "deep16.png")
    gradient(96, 96).save(folder / "icon.webp", quality=80)
    frames = [gradient(40, 40).rotate(angle) for angle in (0, 90, 180)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    gradient(12, 12).save(folder / "tiny.png")
    Image.new("RGB", (5000, 4000), (30, 120, 200)).save(folder / "huge.jpg", quality=60)  # over 16384 tokens: capped
    gradient(3000, 40).save(folder / "panorama.jpg", quality=85)  # aspect ratio 75
    gradient(2400, 40).save(folder / "strip.jpg", quality=85)  # ratio 60: capped but representable at 64 tokens
    refs = {path.stem: str(path) for path in folder.iterdir()}
    refs["data_uri"] = "data:image/png;base64," + base64.b64encode((folder / "rgba.png").read_bytes()).decode()
    assert set(refs) == set(IMAGE_NAMES)
    return refs


def turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def user(content: str) -> dict[str, str]:
    return turn("user", content)


def assistant(content: str) -> dict[str, str]:
    return turn("assistant", content)


def system(content: str) -> dict[str, str]:
    return turn("system", content)


def tool(content: str) -> dict[str, str]:
    return turn("tool", content)


def records(img: dict[str, str]) -> dict[str, dict[str, Any]]:
    """name -> canonical record ({messages, images}); every one is a record `vlprep cache` can accept."""
    def one(name: str, question: str = "<image>Describe the image.") -> dict[str, Any]:
        return {"messages": [user(question), assistant("A colour gradient.")], "images": [img[name]]}

    conversations: dict[str, dict[str, Any]] = {
        "multi_image": {"messages": [user("Compare <image> with <image>, then <image>."), assistant("The first.")],
                        "images": [img["rgb"], img["rgba"], img["gray"]]},
        "multi_turn_system_chinese": {
            "messages": [system("你是一个仔细的助手。"), user("<image>这是什么?"), assistant("这是一张渐变色的图片。"),
                         user("<image>这一张呢?"), assistant("也是渐变,颜色更暗。"), user("谢谢!"), assistant("不客气。")],
            "images": [img["cmyk"], img["deep16"]]},
        "tool_after_assistant_consecutive": {
            "messages": [user("What is 2+2 and 3+3?"),
                         assistant('<tool_call>\n{"name": "calc", "arguments": {"x": "2+2"}}\n</tool_call>'),
                         tool("4"), tool("6"), assistant("2+2 = 4 and 3+3 = 6.")], "images": []},
        "tool_after_user": {"messages": [user("Summarize the search result."), tool('{"result": "sunny"}'),
                                         assistant("It is sunny.")], "images": []},
        "tools_after_user_and_assistant": {
            "messages": [system("Use tools."), user("<image>Look it up."), tool("r1"), tool("r2"), assistant("Found."),
                         user("And the weather?"), assistant("<tool_call>\n{\"name\": \"weather\"}\n</tool_call>"),
                         tool("rain"), assistant("Rain.")], "images": [img["rgb"]]},
        "leading_newline_user_and_assistant": {
            "messages": [user("\nWhat is this?"), assistant("\nA test."), user("\n\nAgain?"), assistant("\n\nYes.")],
            "images": []},
        "fewer_tags_than_images": {"messages": [user("<image>Only one tag for two images."), assistant("Two anyway.")],
                                   "images": [img["tiny"], img["huge"]]},
        "no_tags_with_system": {"messages": [system("Be brief."), user("What are these?"), assistant("Icons.")],
                                "images": [img["icon"], img["animated"]]},
        "image_tag_in_system": {"messages": [system("<image>Reference image."), user("<image>Same?"), assistant("No.")],
                                "images": [img["rgb"], img["gray"]]},
        "consecutive_user_turns": {"messages": [user("First question."), user("Second question."), assistant("Both.")],
                                   "images": []},
        "consecutive_assistant_turns": {"messages": [user("Hi"), assistant("Hello."), assistant("How can I help?")],
                                        "images": []},
        "assistant_first": {"messages": [assistant("I speak first.")], "images": []},
        "trailing_user_turn": {"messages": [user("q"), assistant("a"), user("dangling")], "images": []},
        "grounding_tags_as_text": {"messages": [user("Find <ref-object> in <bbox>."), assistant("At <bbox>.")],
                                   "images": []},
        "unicode_text": {"messages": [user("e\u0301 café 😀 ｆｕｌｌ width, tab\tend"), assistant("ﬁ ligature\r\nok")],
                         "images": []},
    }
    modes = {f"image_{name}": one(name) for name in IMAGE_NAMES}
    return {**conversations, **modes}


# The 3000x40 panorama squeezed under 64 tokens gets a zero-height grid: ms-swift refuses it (I015, tested below).
UNENCODABLE = {("small", "image_panorama")}
RECORD_NAMES = list(records({name: name for name in IMAGE_NAMES}))


@dataclass
class Corpus:
    folder: Path
    images: dict[str, str]
    records: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("counting")
    images = write_images(folder / "images")
    return Corpus(folder, images, records(images))


@pytest.fixture(scope="module")
def oracles(embedded_processor_path: Path) -> Iterator[Oracles]:
    started = Oracles(embedded_processor_path, SETTINGS)
    yield started
    started.close()


def image_infos(record: dict[str, Any], base_dir: Path) -> list[Any]:
    infos = []
    for ref in record["images"]:
        checked = check_image(ref, base_dir, None, ImageLimits())
        assert checked.info is not None, checked.problems
        assert not [code for code, _ in checked.problems if code in ("I003", "I004", "I005", "I006")], checked.problems
        infos.append(checked.info)
    return infos


def parity_cases() -> list[Any]:
    return [pytest.param(setting, name, id=f"{setting}-{name}")
            for setting in SETTINGS for name in RECORD_NAMES if (setting, name) not in UNENCODABLE]


@pytest.mark.parametrize(("setting", "name"), parity_cases())
@pytest.mark.swift
def test_counter_matches_ms_swift_template(setting: str, name: str, corpus: Corpus, embedded_processor: Any,
                                          oracles: Oracles) -> None:
    settings = SETTINGS[setting]
    record = corpus.records[name]
    infos = image_infos(record, corpus.folder)
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, settings)

    ours = counter.encode(record, infos)
    theirs = oracles[setting].encode(swift_record(record, infos))
    assert compare(ours, theirs) is None, compare(ours, theirs)
    # the same, field by field, so that a failure shows the values
    assert ours.input_ids == theirs["input_ids"]
    assert ours.labels == theirs["labels"]
    assert len(ours.input_ids) == theirs["length"]
    assert [list(grid) for grid in ours.grids] == theirs["image_grid_thw"]

    counted = counter.count(record, infos)
    assert counted.length == theirs["length"]
    assert counted.grids == ours.grids
    assert counted.image_tokens == theirs["input_ids"].count(QWEN3_VL.image_pad.id)
    assert all(h > 0 and w > 0 for _, h, w in counted.grids)
    if record["images"]:
        assert counted.image_tokens > 0


def test_corpus_covers_what_it_claims(corpus: Corpus) -> None:
    """The image corpus really has the modes, formats and sizes the parity cases are named after."""
    found = {}
    for name, ref in corpus.images.items():
        info = check_image(ref, corpus.folder, None, ImageLimits()).info
        assert info is not None
        found[name] = (info.format, info.mode, info.width, info.height)
    assert found["rgb"][:2] == ("JPEG", "RGB")
    assert found["rgba"][:2] == ("PNG", "RGBA")
    assert found["gray"][:2] == ("PNG", "L")
    assert found["palette_alpha"][:2] == ("PNG", "P")
    assert found["cmyk"][:2] == ("JPEG", "CMYK")
    assert found["deep16"][0] == "PNG" and found["deep16"][1].startswith("I")
    assert found["icon"][0] == "WEBP"
    assert found["animated"][0] == "GIF"
    assert found["tiny"][2:] == (12, 12)
    assert found["huge"][2:] == (5000, 4000) and 5000 * 4000 > DEFAULT.max_pixels
    assert found["panorama"][2:] == (3000, 40)
    assert found["data_uri"] == ("PNG", "RGBA", 64, 48)
    assert corpus.images["data_uri"].startswith("data:image/png;base64,")


def test_every_parity_record_is_one_lint_accepts(corpus: Corpus, embedded_processor: Any) -> None:
    """The parity corpus is data `vlprep cache` would keep: warnings at most, no error (length counted too)."""
    path = write_jsonl(corpus.folder / "parity.jsonl", list(corpus.records.values()))
    code, report = lint_with_counting(path)
    errors = [(d["line"], d["code"], d["message"]) for d in report["diagnostics"] if d["severity"] == "error"]
    assert errors == []
    assert code == 0


def test_caps_and_floors_are_applied(corpus: Corpus, embedded_processor: Any) -> None:
    """The corpus exercises the limits: the huge image is capped, the tiny one raised to the floor."""
    for setting, settings in SETTINGS.items():
        counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, settings)
        for name, ref in corpus.images.items():
            if (setting, f"image_{name}") in UNENCODABLE:
                continue
            record = {"messages": [user("<image>x"), assistant("y")], "images": [ref]}
            tokens = counter.count(record, image_infos(record, corpus.folder)).image_tokens
            assert tokens >= settings.image_min_tokens, (setting, name, tokens)
            if name == "huge":
                assert 0.75 * settings.image_max_tokens <= tokens <= settings.image_max_tokens, (setting, name, tokens)


# ---------------------------------------------------------------------------------------------------------------
# Records ms-swift cannot encode are rejected by lint (with counting) instead of crashing or being cached
# ---------------------------------------------------------------------------------------------------------------


def lint_with_counting(path: Path, *options: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["lint", str(path), "-q", "--workers", "1", "--format", "json",
                                 "--max-length", "100000", *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"lint raised {type(result.exception).__name__}: {result.exception}")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def error_codes(report: dict[str, Any], line: int) -> set[str]:
    return {d["code"] for d in report["diagnostics"] if d["line"] == line and d["severity"] == "error"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_image_squeezed_to_zero_height_is_rejected(corpus: Corpus, embedded_processor: Any) -> None:
    path = write_jsonl(corpus.folder / "squeezed.jsonl", [corpus.records["image_panorama"]])
    _, report = lint_with_counting(path, "--image-max-tokens", "64", "--image-min-tokens", "16")
    assert error_codes(report, 1)


@pytest.mark.parametrize("messages", [
    pytest.param([system("s"), tool("result"), assistant("a")], id="after-system"),
    pytest.param([tool("result"), user("q"), assistant("a")], id="first"),
])
def test_tool_turn_without_a_preceding_turn_is_rejected(messages: list[dict[str, str]], tmp_path: Path,
                                                         embedded_processor: Any) -> None:
    path = write_jsonl(tmp_path / "tool.jsonl", [{"messages": messages}])
    _, report = lint_with_counting(path)
    assert error_codes(report, 1)


def test_user_turn_after_tool_turn_is_rejected(tmp_path: Path, embedded_processor: Any) -> None:
    path = write_jsonl(tmp_path / "user_after_tool.jsonl", [{"messages": [
        user("q"), assistant("<tool_call>\n{\"name\": \"f\"}\n</tool_call>"), tool("r"), user("and now?"),
        assistant("a")]}])
    _, report = lint_with_counting(path)
    assert error_codes(report, 1)


def test_max_ratio_above_200_is_a_usage_error(tmp_path: Path) -> None:
    """qwen-vl-utils' smart_resize, which vlprep counts with, refuses ratios over 200: vlprep says so up front."""
    gradient(5000, 20).save(tmp_path / "wide.png")
    path = write_jsonl(tmp_path / "wide.jsonl", [{"messages": [user("<image>Wide."), assistant("Yes.")],
                                                   "images": ["wide.png"]}])
    for command in ("lint", "cache"):
        extra = ["--out", str(tmp_path / "out")] if command == "cache" else []
        result = runner.invoke(app, [command, str(path), "-q", "--max-ratio", "300", *extra])
        assert result.exit_code == 2, result.output
        assert not (tmp_path / "out").exists()
