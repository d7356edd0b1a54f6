"""Fuzzing the real CLI: whatever bytes, records and images come in, `vlprep lint` and `vlprep cache` finish without a
traceback, exit as their reports say, and account for every input line.

Corpora mix the three input formats (ms-swift messages, ShareGPT, OpenAI typed parts) with random JSON and Unicode in
every field (control characters, chat-control tokens, `<image>` tags, leading newlines), wrong types, missing keys,
deep nesting, raw byte lines (invalid UTF-8, BOM, blank, NaN, huge numbers) and image references to byte-level mutations
of small valid JPEG / PNG / WebP / GIF files.

`make test` runs a bounded, derandomized sample (VLPREP_FUZZ_EXAMPLES examples per property, 40 by default; the cache
property, about a second per example, VLPREP_FUZZ_CACHE_EXAMPLES, 15 by default). `make fuzz` sets VLPREP_FUZZ_EXAMPLES
to 2000: the search is then random and failures are kept in .hypothesis/ to be replayed.

Product bugs the fuzzing found are fixed; each keeps a minimal reproduction at the end of this file, and its trigger
is part of the random search.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from vlprep.cli.app import app
from vlprep.records.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
LINT_SCHEMA = json.loads((ROOT / "schemas" / "lint-report.schema.json").read_text())
MANIFEST_SCHEMA = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
runner = CliRunner()

LONG_RUN = "VLPREP_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("VLPREP_FUZZ_EXAMPLES", "40"))
CACHE_EXAMPLES = int(os.environ.get("VLPREP_FUZZ_CACHE_EXAMPLES", str(max(15, EXAMPLES // 8) if LONG_RUN else 15)))



def fuzz_settings(examples: int) -> settings:
    """Deterministic and database-free under `make test`; random with a failure database under `make fuzz`."""
    options: dict[str, Any] = {}
    if not LONG_RUN:
        options.update(database=None, derandomize=True)
    return settings(max_examples=examples, deadline=None, print_blob=True, **options,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


# ---------------------------------------------------------------------------------------------------------------
# Small valid images, made in memory once; examples write them (and their mutations) into their own folder
# ---------------------------------------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _valid_images() -> dict[str, bytes]:
    base = Image.new("RGB", (40, 36), (30, 60, 90))
    draw = ImageDraw.Draw(base)
    draw.rectangle((4, 4, 30, 20), fill=(200, 30, 90))
    draw.ellipse((10, 10, 36, 33), fill=(20, 200, 90))
    frames = [base, base.rotate(90), base.rotate(180)]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: I008
    images = {
        "photo.jpg": _encode(base, "JPEG", quality=80),
        "progressive.jpg": _encode(base, "JPEG", progressive=True),
        "rotated.jpg": _encode(base, "JPEG", exif=exif),
        "cmyk.jpg": _encode(base.convert("CMYK"), "JPEG"),
        "rgb.png": _encode(base, "PNG"),
        "palette.png": _encode(base.convert("P"), "PNG", transparency=0),
        "deep16.png": _encode(base.convert("I;16"), "PNG"),
        "strip.png": _encode(Image.new("L", (400, 1)), "PNG"),
        "animated.png": _encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "lossy.webp": _encode(base, "WEBP", quality=70),
        "lossless.webp": _encode(base.convert("RGBA"), "WEBP", lossless=True),
        "animated.webp": _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50),
        "still.gif": _encode(base, "GIF"),
        "animated.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
    }
    return images


VALID_IMAGES = _valid_images()
MUTATION_BASES = sorted(VALID_IMAGES)  # the valid images that mutations start from
MUTANT_NAMES = ("m0.jpg", "m1.png", "m2.webp", "m3.gif", "m4.bin")  # written when the example draws a mutation
SPECIAL_FILES = ("empty.jpg", "text.png", "sub", "dangling.jpg", "loop.jpg", "link.png", "missing.jpg")
LOCAL_NAMES = tuple(VALID_IMAGES) + MUTANT_NAMES + SPECIAL_FILES
DIR = "@@EXAMPLE_DIR@@"  # replaced by the example folder's absolute path when the corpus is written


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A valid image with up to 4 byte-level mutations (flip, overwrite, insert, delete, truncate) at drawn positions,
    positions in the header (first 64 bytes) as likely as anywhere else."""
    data = bytearray(VALID_IMAGES[draw(st.sampled_from(MUTATION_BASES))])
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        position = draw(st.one_of(st.integers(0, min(63, len(data) - 1)), st.integers(0, len(data) - 1)))
        operation = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "overwrite":
            data[position] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]) | st.integers(0, 255))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 16))]
        else:
            del data[position:]
    return bytes(data)


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:image/{mime};base64," + base64.b64encode(payload).decode()


# ---------------------------------------------------------------------------------------------------------------
# Text, JSON values, image references and records
# ---------------------------------------------------------------------------------------------------------------

TOKENS = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
          "<image>", "<image>", "<video>", "<audio>", "<tool_call>", "</tool_response>", "\n", "\n\n", "\r\n", "\r",
          "\t", "\x00", "\x1b[31m", "\x7f", "\u0085", "\u2028", "\ufeff", "\u200b", "\U0001F600", "é", "中文", "ﷺ",
          "system", "user", "assistant", "tool", "human", "gpt", "images/photo.jpg", " ", "")
ROLE_NAMES = ("system", "user", "assistant", "tool", "human", "gpt", "function_call", "observation", "bot", "",
              "USER", "Assistant")
RAW_LINES = (
    b"", b" ", b"\t", b"\r", b"\x00", b"\x0c", b"NaN", b"-Infinity", b"Infinity", b"1e999999", b"-1e-999999",
    b"9" * 4000, b"0.1e", b"null", b"true", b"[]", b"{}", b'"text"', b"{", b"}", b"[{]}", b"{'single': 'quotes'}",
    b'{"messages": NaN}', b'{"messages": [], "images": Infinity}', b'{"messages": [{"role": "user"}]}',
    b'{"a": 1} {"b": 2}', b'{"a": 1}garbage', b'{"a": "\\x"}', b'{"dup": 1, "dup": 2}',
    b'{"messages": [{"role": "user", "content": "\\ud83d\\ude00<image>"}], "images": ["x.jpg"]}',
    b"\xef\xbb\xbf{}", b"\xef\xbb\xbf", b"\xef\xbb", b"\xff\xfe{\x00}\x00", b"\xc3\x28", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x1b[2J", b"\xe2\x80\xa8",
)
RAW_LINES += (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', b'{"id": "\\udfff"}',  # lone surrogates
              b"9" * 5000, b'{"messages": -' + b"1" * 4301 + b"}")  # integers over Python's digit limit
FIXED_REFS = ("missing.jpg", "/nonexistent/x.png", ".", "/", "", "~/x.jpg", "../../../../../etc/passwd", "sub/",
              "http://example.com/a.jpg", "https://example.com/b.png", "ftp://example.com/c.gif", "file://",
              "data:image/png;base64,!!!!", "data:text/plain;base64,aGVsbG8=", "data:image/png,raw",
              "data:image/jpeg;base64,", "data:;base64,", "data:image/gif;base64,R0lGODlh")


class Strategies:
    """The record and line strategies."""

    def __init__(self) -> None:
        chars = st.characters(exclude_categories=("Cs",))
        tokens = st.sampled_from(TOKENS)
        self.plain = plain = st.text(chars, max_size=16)
        # Mostly plain (if random) text, so that a fair share of records is clean and goes on to counting and Arrow.
        self.text = st.one_of(plain, plain, plain, st.lists(st.one_of(plain, tokens), max_size=6).map("".join))
        scalars = (st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | self.text)
        deep = st.tuples(st.integers(1, 120), st.booleans()).map(lambda spec: _nest(*spec))
        self.values = st.recursive(scalars | deep, lambda inner: st.lists(inner, max_size=3)
                                   | st.dictionaries(self.text, inner, max_size=3), max_leaves=6)
        local = st.sampled_from(LOCAL_NAMES)
        valid = st.sampled_from(sorted(VALID_IMAGES))
        self.refs = st.one_of(
            valid, valid, valid, valid, local, local, local.map(lambda name: f"{DIR}/{name}"),
            local.map(lambda name: f"file://{DIR}/{name}"), local.map(lambda name: f"./sub/../{name}"),
            st.sampled_from(FIXED_REFS),
            st.tuples(mutated_images(), st.sampled_from(["png", "jpeg", "gif", "webp"])).map(lambda a: data_uri(*a)),
            self.text)
        self.roles = st.one_of(st.sampled_from(ROLE_NAMES), self.text)
        records = st.one_of(self.swift_records(), self.sharegpt_records(), self.openai_records())
        structured = self.structured_records()
        self.records = st.one_of(records, records, records, structured, structured, corrupted(records, self.values),
                                 st.dictionaries(self.text, self.values, max_size=4))
        record_lines = self.records.flatmap(json_lines)
        self.lines = st.one_of(record_lines, record_lines, record_lines, self.values.flatmap(json_lines),
                               raw_lines(self.records))

    def extras(self) -> st.SearchStrategy[dict[str, Any]]:
        """Top-level keys besides the conversation and images: usually harmless ones, sometimes anything."""
        harmless = st.fixed_dictionaries({}, optional={"system": self.text, "id": st.integers() | self.plain})
        wild = st.fixed_dictionaries({}, optional={
            "system": self.values, "id": self.values, "videos": st.lists(self.refs, max_size=1),
            "audios": st.lists(self.refs, max_size=1), "tools": self.values, "unknown": self.values})
        return st.one_of(harmless, harmless, harmless, wild)

    @st.composite
    def conversation(draw: st.DrawFn, self: Strategies, images: int) -> list[tuple[Any, Any]]:
        """(role, text) turns: usually user/assistant alternation with the images' tags, sometimes anything."""
        shape = draw(st.integers(0, 7))
        if shape == 0:  # anything, valid roles or not
            roles = draw(st.lists(self.roles, min_size=1, max_size=5))
        elif shape <= 3:  # valid roles in any order: tool turns anywhere, repeated roles, system late
            roles = draw(st.lists(st.sampled_from(["system", "user", "assistant", "tool"]), min_size=1, max_size=6))
        else:
            roles = ["system"] * draw(st.integers(0, 1)) + ["user", "assistant"] * draw(st.integers(1, 2))
        text = self.plain if draw(st.booleans()) else self.text  # plain text throughout: a chance to be clean
        turns = [[role, draw(text)] for role in roles]
        users = ([turn for turn in turns if turn[0] == "user"] or [turn for turn in turns if turn[0] != "assistant"]
                 or turns)
        tags = images if draw(st.integers(0, 3)) else draw(st.integers(0, 3))
        for _ in range(tags):
            target = draw(st.sampled_from(users))
            target[1] = "<image>" + target[1] if draw(st.booleans()) else target[1] + "<image>"
        return [tuple(turn) for turn in turns]

    @st.composite
    def structured_records(draw: st.DrawFn, self: Strategies) -> dict[str, Any]:
        """Plain text and valid images, one tag each, in valid roles in any order: records that pass the checks and
        reach token counting and the cache with unusual turn structures."""
        roles = draw(st.lists(st.sampled_from(["system", "user", "assistant", "tool"]), min_size=1, max_size=6))
        turns = [{"role": role, "content": draw(self.plain)} for role in roles]
        images = draw(st.lists(st.sampled_from(sorted(VALID_IMAGES)), max_size=2))
        targets = [turn for turn in turns if turn["role"] != "assistant"] or turns
        for _ in images:
            target = draw(st.sampled_from(targets))
            target["content"] = "<image>" + target["content"]
        if draw(st.booleans()):
            return {"messages": turns, "images": images}
        speakers = {"user": "human", "assistant": "gpt", "tool": "observation"}
        return {"conversations": [{"from": speakers.get(turn["role"], turn["role"]), "value": turn["content"]}
                                  for turn in turns], "images": images}

    @st.composite
    def swift_records(draw: st.DrawFn, self: Strategies) -> dict[str, Any]:
        images = draw(st.lists(self.refs, max_size=3))
        record: dict[str, Any] = {"messages": [{"role": role, "content": content}
                                               for role, content in draw(self.conversation(len(images)))]}
        if images or draw(st.booleans()):
            record["images"] = images[0] if len(images) == 1 and draw(st.booleans()) else images
        return {**record, **draw(self.extras())}

    @st.composite
    def sharegpt_records(draw: st.DrawFn, self: Strategies) -> dict[str, Any]:
        images = draw(st.lists(self.refs, max_size=3))
        speakers = {"user": "human", "assistant": "gpt"}
        turns = [{"from": speakers.get(role, role) if draw(st.booleans()) else role, "value": value}
                 for role, value in draw(self.conversation(len(images)))]
        record: dict[str, Any] = {"conversations": turns}
        if images:
            key = draw(st.sampled_from(["image", "images"]))
            record[key] = images[0] if len(images) == 1 and draw(st.booleans()) else images
        return {**record, **draw(self.extras())}

    @st.composite
    def openai_records(draw: st.DrawFn, self: Strategies) -> dict[str, Any]:
        messages = []
        for role, text in draw(self.conversation(0)):
            if draw(st.integers(0, 2)) == 0:
                messages.append({"role": role, "content": text})
                continue
            parts: list[Any] = [{"type": "text", "text": text}]
            for _ in range(draw(st.integers(0, 2)) if role == "user" else 0):
                ref = draw(self.refs)
                part = draw(st.sampled_from([
                    {"type": "image", "image": ref}, {"type": "image_url", "image_url": {"url": ref}},
                    {"type": "image_url", "image_url": ref}, {"type": "image", "image": {"path": ref}},
                    {"type": "video", "video": ref}, {"type": "input_audio", "input_audio": ref},
                    {"type": "image"}, {"type": "unknown", "text": ref}, {"text": ref}, ref]))
                parts.insert(draw(st.integers(0, len(parts))), part)
            messages.append({"role": role, "content": parts})
        return {"messages": messages, **draw(self.extras())}


def _nest(depth: int, in_dict: bool) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if in_dict and level % 2 else [value]
    return value


@st.composite
def corrupted(draw: st.DrawFn, records: st.SearchStrategy[dict[str, Any]], values: st.SearchStrategy[Any]) -> Any:
    """A record with 1-3 slots anywhere in it deleted, replaced by a random JSON value, wrapped, or stringified."""
    record = draw(records)
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(record))
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["delete", "replace", "replace", "wrap", "stringify", "null"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(values)
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif action == "stringify":
            parent[key] = json.dumps(parent[key])
        else:
            parent[key] = None
    return record


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        for key, child in node.items():
            yield node, key
            yield from _slots(child)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield node, index
            yield from _slots(child)


@st.composite
def json_lines(draw: st.DrawFn, value: Any) -> bytes:
    """`value` serialized as one line, with or without ASCII escapes and spaces, sometimes padded."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([None, (",", ":")])))
    return draw(st.sampled_from(["", "", "", " ", "\t"])).encode() + text.encode("utf-8") + draw(
        st.sampled_from([b"", b"", b"", b"", b" ", b"\r", b"\x00"]))


@st.composite
def raw_lines(draw: st.DrawFn, records: st.SearchStrategy[Any]) -> bytes:
    """Lines that are not (only) JSON: fixed nasties, random bytes, a record line with bytes flipped or cut off."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.sampled_from(RAW_LINES))
    if kind == 1:
        return draw(st.binary(max_size=48)).replace(b"\n", b"")
    line = bytearray(json.dumps(draw(records), ensure_ascii=False).encode())
    position = draw(st.integers(0, len(line)))
    if draw(st.booleans()):
        del line[position:]
    else:
        line[position:position] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b'"', b"\\"]))
    return bytes(line).replace(b"\n", b"")


STRATEGIES = Strategies()


@dataclass
class Corpus:
    lines: list[bytes]
    mutants: dict[str, bytes]
    image_root: bool
    bom: bool
    newline: bytes
    trailing_newline: bool
    fast: bool
    max_length: int | None  # with --max-length, lint counts tokens as cache does (L001 for longer records)

    def data(self, folder: Path) -> bytes:
        body = self.newline.join(self.lines) + (self.newline if self.trailing_newline and self.lines else b"")
        return (b"\xef\xbb\xbf" if self.bom else b"") + body.replace(DIR.encode(), str(folder).encode())


@st.composite
def corpora(draw: st.DrawFn, max_lines: int = 12) -> Corpus:
    image_root = draw(st.integers(0, 3)) == 0
    return Corpus(
        lines=draw(st.lists(STRATEGIES.lines, max_size=max_lines)),
        mutants=draw(st.fixed_dictionaries({}, optional={name: mutated_images() for name in MUTANT_NAMES})),
        image_root=image_root,
        bom=draw(st.integers(0, 9)) == 0,
        newline=draw(st.sampled_from([b"\n", b"\n", b"\r\n"])),
        trailing_newline=draw(st.booleans()),
        fast=draw(st.integers(0, 3)) == 0,
        max_length=draw(st.sampled_from([None, None, 64, 100_000])),
    )


@pytest.fixture(scope="session")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@contextmanager
def written(corpus: Corpus, parent: Path) -> Iterator[tuple[Path, int, list[str]]]:
    """Write the corpus and its images into a fresh folder: (data file, its number of lines, extra CLI options)."""
    folder = Path(tempfile.mkdtemp(dir=parent))
    try:
        for name, payload in VALID_IMAGES.items():
            (folder / name).write_bytes(payload)
        for name, payload in corpus.mutants.items():
            (folder / name).write_bytes(payload)
        (folder / "empty.jpg").write_bytes(b"")
        (folder / "text.png").write_bytes(b"this is not a PNG\n")
        (folder / "sub").mkdir()
        (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
        (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
        (folder / "link.png").symlink_to(folder / "rgb.png")
        data = corpus.data(folder)
        bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
        if data[len(bom):].lstrip()[:1] == b"[":  # that would be a JSON array of records (tests/test_inputs.py)
            data = bom + b"{}\n" + data[len(bom):]
        path = folder / "data.jsonl"
        path.write_bytes(data)
        lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        options = ((["--image-root", str(folder)] if corpus.image_root else []) + (["--fast"] if corpus.fast else [])
                   + (["--max-length", str(corpus.max_length)] if corpus.max_length else []))
        yield path, lines, options
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------------


def assert_no_crash(result: Any) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output[-3000:]}")
    assert "Traceback" not in result.output, result.output[-3000:]


def lint_report(path: Path, options: list[str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["lint", str(path), "--format", "json", "-q", "--workers", "1", *options])
    assert_no_crash(result)
    assert result.exit_code in (0, 1), result.output[-3000:]
    report = json.loads(result.stdout)
    jsonschema.validate(report, LINT_SCHEMA)
    return result.exit_code, report


def check_lint_report(code: int, report: dict[str, Any], path: Path, lines: int) -> None:
    diagnostics = report["diagnostics"]
    summary = report["summary"]
    assert code == (1 if any(d["severity"] == "error" for d in diagnostics) else 0)
    assert summary["records"] == lines
    assert [(f["path"], f["lines"]) for f in summary["files"]] == ([(str(path), lines)] if lines else [])
    for diagnostic in diagnostics:
        assert diagnostic["file"] == str(path)
        assert 1 <= diagnostic["line"] <= lines, diagnostic
        rule = RULES[diagnostic["code"]]
        assert (diagnostic["name"], diagnostic["severity"]) == (rule.name, rule.severity.value)
    per_line = [d["line"] for d in diagnostics if not d["code"].startswith("F")]
    assert per_line == sorted(per_line), "diagnostics must come in input order"
    assert summary["counts"] == dict(Counter(d["code"] for d in diagnostics))
    severities = Counter(d["severity"] for d in diagnostics)
    assert summary["by_severity"] == {key: severities.get(key, 0) for key in ("error", "warning", "info")}
    assert summary["records_with_errors"] == len({d["line"] for d in diagnostics if d["severity"] == "error"})


@pytest.mark.fuzz
@fuzz_settings(EXAMPLES)
@given(corpus=corpora())
def test_lint_survives_anything_and_reports_every_line(corpus: Corpus, fuzz_dir: Path) -> None:
    with written(corpus, fuzz_dir) as (path, lines, options):
        code, report = lint_report(path, options)
        check_lint_report(code, report, path, lines)


@pytest.mark.fuzz
@fuzz_settings(CACHE_EXAMPLES)
@given(corpus=corpora(max_lines=6), val_ratio=st.sampled_from(["0", "0.5"]))
def test_cache_accounts_for_every_line_exactly_once(corpus: Corpus, val_ratio: str, fuzz_dir: Path) -> None:
    from datasets import load_from_disk

    with written(corpus, fuzz_dir) as (path, lines, options):
        out = path.parent / "arrow"
        result = runner.invoke(app, ["cache", str(path), "--out", str(out), "-q", "--verify", "0", "--workers", "1",
                                     "--val-ratio", val_ratio, *options])
        assert_no_crash(result)
        manifest = json.loads((out / "manifest.json").read_text())
        jsonschema.validate(manifest, MANIFEST_SCHEMA)
        counts = manifest["counts"]
        assert result.exit_code == (1 if counts["rejected"] else 0), result.output[-3000:]
        assert counts["train"] + counts["val"] + counts["rejected"] == counts["input_lines"] == lines

        seen: Counter[int] = Counter()
        for split in ("train", "val"):
            rows = load_from_disk(str(out / split))["vlprep_line"] if (out / split).exists() else []
            assert len(rows) == counts[split]
            seen.update(rows)
        # JSON Lines are split on "\n" only: str.splitlines() would also split inside strings at U+0085 or U+2028.
        rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").split("\n")
                   if line]
        assert len(rejects) == counts["rejected"]
        seen.update(entry["line"] for entry in rejects)
        assert seen == Counter(range(1, lines + 1)), "every input line in exactly one of train / val / rejects"

        # The cache rejects exactly the lines lint finds an error on (with those codes) and blank lines (no record).
        _, report = lint_report(path, options)
        codes: dict[int, set[str]] = defaultdict(set)
        errors: dict[int, set[str]] = defaultdict(set)
        for diagnostic in report["diagnostics"]:
            if not diagnostic["code"].startswith("F"):  # file-level: not a property of the line's record
                codes[diagnostic["line"]].add(diagnostic["code"])
            if diagnostic["severity"] == "error":
                errors[diagnostic["line"]].add(diagnostic["code"])
        expected = {line: errors[line] or codes[line] for line in range(1, lines + 1)
                    if errors[line] or "J005" in codes[line]}
        assert {entry["line"]: set(entry["codes"]) for entry in rejects} == expected


# ---------------------------------------------------------------------------------------------------------------
# Product bugs found by fuzzing, now fixed: their minimal reproductions
# ---------------------------------------------------------------------------------------------------------------

CLEAN = {"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A shape."}]}


def _lint_lines(tmp_path: Path, lines: list[bytes], *options: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    code, report = lint_report(path, list(options))
    check_lint_report(code, report, path, len(lines))


def test_truncated_animated_gif_is_reported_not_raised(tmp_path: Path) -> None:
    gif = VALID_IMAGES["animated.gif"]
    lines = []
    for size in range(100, len(gif), 3):
        (tmp_path / f"cut{size}.gif").write_bytes(gif[:size])
        lines.append(json.dumps({**CLEAN, "images": [f"cut{size}.gif"]}).encode())
    _lint_lines(tmp_path, lines, "--fast")


def test_integer_over_the_digit_limit_is_invalid_json_not_a_crash(tmp_path: Path) -> None:
    _lint_lines(tmp_path, [b'{"messages": ' + b"1" * 5000 + b"}", json.dumps(CLEAN).encode()])


def test_lone_surrogate_escape_is_reported_not_raised(tmp_path: Path) -> None:
    _lint_lines(tmp_path, [b'{"messages": [{"role": "user", "content": "hi \\ud800"}, '
                           b'{"role": "assistant", "content": "ok"}]}'])


def test_nul_in_image_path_with_image_root_is_reported_not_raised(tmp_path: Path) -> None:
    _lint_lines(tmp_path, [json.dumps({**CLEAN, "images": ["a\u0000b.jpg"]}).encode()], "--image-root", str(tmp_path))
