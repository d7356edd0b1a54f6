"""Read: stream a JSONL file as numbered raw lines, never holding the whole file (or an over-long line) in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 1 << 20


@dataclass(frozen=True)
class RawLine:
    line: int
    data: bytes | None  # None when the line was over the size limit (its bytes were skipped, not read into memory)
    had_bom: bool = False
    size: int = 0


def iter_raw_lines(path: Path, max_line_bytes: int, skip: int = 0) -> Iterator[RawLine]:
    """Yield every line of `path` (1-based numbers), without its line terminator, after the first `skip` lines.

    A line longer than `max_line_bytes` is skipped in chunks and yielded with `data=None`, so one 100 MB line never sits in
    memory whole.
    """
    with open(path, "rb") as handle:
        number = 0
        while number < skip and _skip_rest_of_line(handle):
            number += 1
        while True:
            chunk = handle.readline(max_line_bytes + 1)
            if not chunk:
                return
            number += 1
            if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
                size = len(chunk) + _skip_rest_of_line(handle)
                yield RawLine(number, None, size=size)
                continue
            data = chunk.rstrip(b"\r\n")
            had_bom = number == 1 and data.startswith(BOM)
            if had_bom:
                data = data[len(BOM):]
            yield RawLine(number, data, had_bom=had_bom, size=len(chunk))


def _skip_rest_of_line(handle) -> int:  # type: ignore[no-untyped-def]
    skipped = 0
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def count_lines(path: Path) -> int:
    """Number of lines as iter_raw_lines counts them (a last line without a newline counts)."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")
