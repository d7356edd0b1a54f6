"""open_source: the Source of an input, its format told by content, never by name.

An input is a file or stdin (`-`), plain or gzip/zstd-compressed (vlprep.inputs.streams: recognized by magic bytes,
decompressed while streaming). Its format:
- a file starting with `PAR1`: Parquet (vlprep.inputs.parquet); with `ARROW1` or an IPC stream's `ffffffff`: an Arrow
  file (vlprep.inputs.arrow). Not from stdin: they need random access;
- first non-blank byte `[`: a JSON array of records, split element by element (vlprep.inputs.json_array);
- a top-level object whose first key (not one a record has) holds an array of objects (`{"data": [...]}`): the records
  wrapped in an object; reported as such (J009) with the fix, and not read further;
- anything else: JSONL, one record per line (vlprep.inputs.jsonl).
`count()` counts units exactly as `units()` yields them, so `train + val + rejected = input records` holds for every
kind of input.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from vlprep.inputs.json_array import JsonArraySource
from vlprep.inputs.jsonl import JsonlSource
from vlprep.inputs.source import OneProblem, Slice, Source
from vlprep.inputs.streams import READ_ERRORS, is_stdin, open_input, read_error_unit, read_head
from vlprep.inputs.units import RawLine
from vlprep.records.canonical import RECORD_KEYS

SLICE_UNITS = 128  # what one worker task holds: enough to amortize sending it, few enough to keep every worker busy
SLICE_BYTES = 4 << 20
_PARQUET, _ARROW_FILE, _ARROW_STREAM = b"PAR1", b"ARROW1", b"\xff\xff\xff\xff"
_WRAPPER = re.compile(rb'\s*\{\s*"((?:[^"\\]|\\.){1,200})"\s*:\s*\[\s*\{')
_CONVERSATION_KEY = re.compile(r'"(?:messages|conversations)"\s*:')


def open_source(path: Path, max_line_bytes: int) -> Source:
    """The input's Source. Stdin is opened here, once: the bytes read to tell its format are not read again."""
    if not is_stdin(path) and (columnar := _columnar(path)) is not None:
        return columnar
    with open_input(path) as opened:  # stdin is not closed on leaving: its Source reads on
        try:
            head, had_bom = read_head(opened.stream)
        except READ_ERRORS as error:
            return OneProblem(path, read_error_unit(error, opened.compression), read_error=True)
        held = opened if is_stdin(path) else None
        if head.startswith(_PARQUET):  # a file path went to Parquet above: this is stdin (or compressed)
            return OneProblem(path, RawLine(1, None, 1, problem=(
                "J011", "Parquet cannot be read from stdin (it is read from its end): pass the file's path")))
        if head.lstrip()[:1] == b"[":
            return JsonArraySource(path, max_line_bytes, opened.compression, held)
        if (key := _wrapper_key(head)) is not None:
            return OneProblem(path, RawLine(1, None, 1, had_bom=had_bom, problem=("J009", _wrapped_message(key, path))))
        return JsonlSource(path, max_line_bytes, opened.compression, held)


def input_slices(files: list[Path], max_line_bytes: int, start: tuple[int, int]) -> Iterator[tuple[Path, Slice]]:
    """The slices of every unit of `files` from `start` = (file index, units of it to skip), in input order: what the
    worker engines hand their workers."""
    first_file, skip_units = start
    for index, file in enumerate(files[first_file:], start=first_file):
        skip = skip_units if index == first_file else 0
        for part in open_source(file, max_line_bytes).slices(skip, SLICE_UNITS, SLICE_BYTES):
            yield file, part


def _columnar(path: Path) -> Source | None:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError:
        return None
    if not magic.startswith((_PARQUET, _ARROW_FILE, _ARROW_STREAM)):
        return None
    # lazy: pyarrow (a second to import) stays off the JSONL path
    from vlprep.inputs.arrow import ArrowSource
    from vlprep.inputs.parquet import ParquetSource

    if magic.startswith(_PARQUET):
        return ParquetSource(path)
    return ArrowSource(path, stream=magic.startswith(_ARROW_STREAM))


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
