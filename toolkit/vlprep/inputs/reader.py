"""Read: stream an input's records as numbered raw units, never holding the whole input (or an over-long record) in
memory.

An input is a file or stdin (`-`), plain or gzip/zstd-compressed (vlprep.inputs.streams: recognized by magic bytes, decompressed
while streaming). Its content, not its name, decides how it is split:
- first non-blank byte `[`: a JSON array of records, split element by element (vlprep.inputs.json_array);
- a top-level object whose first key (not one a record has) holds an array of objects (`{"data": [...]}`): the records
  wrapped in an object; reported as such (J009) with the fix, and not read further;
- anything else: JSONL, one record per line.
A Parquet file or an Arrow file (a `datasets` `save_to_disk` folder's data) is read by vlprep.inputs.columnar instead, one
unit per row (not from stdin: it needs random access).

Each unit is a RawLine: the line it starts on, its bytes, its `number` (1-based, among the input's units: the line
number for JSONL; for an array its records, plus any stretch that is no record, such as text after the array) and, for
array elements, its index in the array. `count_lines` counts units exactly as `iter_records` yields them, so
`train + val + rejected = input records` holds for every kind of input.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from vlprep.inputs.streams import READ_ERRORS, Source, is_stdin, open_input
from vlprep.inputs.json_array import ArraySplitter
from vlprep.records.canonical import RECORD_KEYS
from vlprep.inputs.units import RawLine

BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 1 << 20
_HEAD_BYTES = 1 << 16
_WRAPPER = re.compile(rb'\s*\{\s*"((?:[^"\\]|\\.){1,200})"\s*:\s*\[\s*\{')
_CONVERSATION_KEY = re.compile(r'"(?:messages|conversations)"\s*:')


def iter_records(path: Path, max_line_bytes: int, skip: int = 0) -> Iterator[RawLine]:
    """Yield every unit of the input after the first `skip` (see the module docstring)."""
    from vlprep.inputs import columnar  # lazy: pyarrow stays off the JSONL path

    if not is_stdin(path) and (kind := columnar.columnar_kind(path)) is not None:
        yield from columnar.iter_rows(path, kind, skip)
        return
    with open_input(path) as source:
        yield from _until_read_error(_units(source, path, max_line_bytes, skip), source)


def _head(stream: BinaryIO) -> tuple[bytes, bool]:
    """The first bytes of the stream (without consuming them), after a byte-order mark, and whether there was one."""
    head = stream.peek(_HEAD_BYTES)  # type: ignore[attr-defined]
    return (head[len(BOM):], True) if head.startswith(BOM) else (head, False)


def _units(source: Source, path: Path, max_line_bytes: int, skip: int) -> Iterator[RawLine]:
    stream = source.stream
    head, had_bom = _head(stream)
    if head.startswith(b"PAR1"):  # a file path goes to vlprep.inputs.columnar; this is stdin
        if skip == 0:
            yield RawLine(1, None, 1, problem=("J011", "Parquet cannot be read from stdin (it is read from its end): "
                                                       "pass the file's path"))
        return
    if head.lstrip()[:1] == b"[":
        stream.read(len(BOM) if had_bom else 0)
        yield from islice(_array_units(stream, max_line_bytes, had_bom), skip, None)
    elif (key := _wrapper_key(head)) is not None:
        if skip == 0:
            yield RawLine(1, None, 1, had_bom=had_bom, problem=("J009", _wrapped_message(key, path)))
    else:
        yield from _jsonl_units(stream, max_line_bytes, skip)


def _wrapper_key(head: bytes) -> str | None:
    """The key of `{"KEY": [{...` when the input is one object wrapping an array of records, not a JSONL record: the
    key is none a record has, the array's first element has a conversation, and the first line is not a whole JSON
    value (or it is the only line)."""
    found = _WRAPPER.match(head)
    if found is None:
        return None
    try:
        key = json.loads(b'"' + found.group(1) + b'"')
    except ValueError:
        return None
    if key.lower() in RECORD_KEYS or not _starts_with_a_record(head, found.end() - 1):
        return None
    newline = head.find(b"\n")
    if newline >= 0 and head[newline:].strip():
        try:
            json.loads(head[:newline])
            return None  # a complete first line with more after it: JSONL
        except ValueError:
            pass
    return key


def _starts_with_a_record(head: bytes, start: int) -> bool:
    """Whether the object at `start` has a `messages` or `conversations` key (looked for in its text when the object
    goes on beyond the head)."""
    text = head[start:].decode("utf-8", errors="replace")
    try:
        element, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return _CONVERSATION_KEY.search(text) is not None
    return isinstance(element, dict) and ("messages" in element or "conversations" in element)


def _wrapped_message(key: str, path: Path) -> str:
    selector = f".{key}" if key.isidentifier() else f".{json.dumps(key)}"
    file = shlex.quote(str(path))
    return (f"the file is one JSON object whose {key!r} holds the records in an array; vlprep and ms-swift read a "
            f"top-level array or JSONL: extract it, e.g. `jq {shlex.quote(selector)} {file} > records.json` "
            f"(or `jq -c {shlex.quote(selector + '[]')} {file} > records.jsonl`)")


def _array_units(stream: BinaryIO, max_line_bytes: int, had_bom: bool) -> Iterator[RawLine]:
    for number, span in enumerate(ArraySplitter(stream, max_line_bytes).spans(), start=1):
        yield RawLine(span.line, span.data, number, had_bom=had_bom and number == 1, size=span.size, index=span.index,
                      problem=span.problem)


def _jsonl_units(stream: BinaryIO, max_line_bytes: int, skip: int, first_number: int = 1) -> Iterator[RawLine]:
    """Every line (numbered from `first_number`), without its line terminator, after the first `skip` lines. A line
    longer than `max_line_bytes` is skipped in chunks and yielded with `data=None`, so one 100 MB line never sits in
    memory whole."""
    number = first_number - 1
    while number - first_number + 1 < skip and _skip_rest_of_line(stream):
        number += 1
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            size = len(chunk) + _skip_rest_of_line(stream)
            yield RawLine(number, None, number, size=size)
            continue
        data = chunk.rstrip(b"\r\n")
        had_bom = number == 1 and data.startswith(BOM)
        if had_bom:
            data = data[len(BOM):]
        yield RawLine(number, data, number, had_bom=had_bom, size=len(chunk))


def is_plain_jsonl(path: Path) -> bool:
    """Whether the input is uncompressed JSONL, which can be cut into byte ranges read independently."""
    if is_stdin(path):
        return False
    from vlprep.inputs import columnar

    if columnar.columnar_kind(path) is not None:
        return False
    with open_input(path) as source:
        if source.compression is not None:
            return False
        head, _ = _head(source.stream)
        return not head.startswith(b"PAR1") and head.lstrip()[:1] != b"[" and _wrapper_key(head) is None


@dataclass(frozen=True)
class LineRange:
    """Bytes [start, end) of a plain JSONL file: whole lines, the first of them line `first_number`."""

    start: int
    end: int
    first_number: int
    lines: int


def line_ranges(path: Path, skip: int, max_lines: int, max_bytes: int) -> Iterator[LineRange]:
    """Cut a plain JSONL file, after its first `skip` lines, into ranges of whole lines (at most `max_lines` lines, and
    at most `max_bytes` bytes unless one line is longer). Reads the file once, counting newlines."""
    with open(path, "rb", buffering=0) as handle:
        offset, number = 0, 0
        start, first, lines = 0, 1, 0
        last = b"\n"
        while block := handle.read(1 << 22):
            position = 0
            while (newline := block.find(b"\n", position)) >= 0:
                position = newline + 1
                number += 1
                if number <= skip:
                    start, first = offset + position, number + 1
                    continue
                lines += 1
                end = offset + position
                if lines >= max_lines or end - start >= max_bytes:
                    yield LineRange(start, end, first, lines)
                    start, first, lines = end, number + 1, 0
            offset += len(block)
            last = block[-1:]
        if last != b"\n" and number + 1 > skip:  # a last line without a newline
            lines += 1
        if lines:
            yield LineRange(start, offset, first, lines)


def iter_line_range(path: Path, lines: LineRange, max_line_bytes: int) -> Iterator[RawLine]:
    """The units of one range: the same ones `iter_records` yields for those lines."""
    with open(path, "rb", buffering=0) as handle:
        handle.seek(lines.start)
        stream = io.BufferedReader(_Bounded(handle, lines.end - lines.start), 1 << 20)
        yield from _jsonl_units(stream, max_line_bytes, 0, lines.first_number)  # type: ignore[arg-type]


class _Bounded(io.RawIOBase):
    """At most `size` bytes of a file, from its current position."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        super().__init__()
        self._handle, self._left = handle, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self._left <= 0:
            return 0
        data = self._handle.read(min(len(buffer), self._left))
        buffer[:len(data)] = data
        self._left -= len(data)
        return len(data)


def _skip_rest_of_line(stream: BinaryIO) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _until_read_error(units: Iterator[RawLine], source: Source) -> Iterator[RawLine]:
    """A compressed stream (or stdin) can fail while it is read: the failure becomes the input's last unit (J011)."""
    last: RawLine | None = None
    try:
        for last in units:
            yield last
    except READ_ERRORS as error:
        what = f"the {source.compression} stream" if source.compression else "the input"
        records = last.number if last else 0
        line = last.line + 1 if last else 1
        yield RawLine(line, None, records + 1, problem=(
            "J011", f"{what} cannot be read past this point ({error or type(error).__name__}); "
                    f"{records:,} record(s) before it were read"))


def count_lines(path: Path, max_line_bytes: int) -> int:
    """Number of units as iter_records yields them: lines of JSONL (a last line without a newline counts), records of
    an array (plus any stretch that is no record). Reads the input: not for stdin."""
    assert not is_stdin(path), "stdin can be read once only"
    from vlprep.inputs import columnar

    if (kind := columnar.columnar_kind(path)) is not None:
        return columnar.count_rows(path, kind)
    with open_input(path) as source:
        if source.compression is None:
            head, _ = _head(source.stream)
            if head.lstrip()[:1] != b"[" and _wrapper_key(head) is None:
                return _count_newlines(source.stream)
    return sum(1 for _ in iter_records(path, max_line_bytes))


def _count_newlines(stream: BinaryIO) -> int:
    lines = 0
    last = b"\n"
    while block := stream.read(1 << 22):
        lines += block.count(b"\n")
        last = block[-1:]
    return lines + (last != b"\n")
