"""JSONL: one record per line, never holding the whole input (or an over-long line) in memory.

Each line is a unit whose `number` and `line` are its 1-based line number; its bytes are the line without its line
terminator (and without a byte-order mark on line 1, noted in `had_bom`). A line over `max_line_bytes` is skipped in
chunks and yielded with `data=None`. A plain (uncompressed) file is cut into byte ranges of whole lines that the
workers read on their own; a compressed file, or stdin, is read from its start only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vlprep.inputs.source import Slice, TextSource, Units
from vlprep.inputs.streams import BOM, READ_ERRORS, read_error_unit, until_read_error
from vlprep.inputs.units import RawLine

_SKIP_CHUNK = 1 << 20
_COUNT_BLOCK = 1 << 22


class JsonlSource(TextSource):
    label = "JSONL"

    def units(self, skip: int = 0) -> Iterator[RawLine]:
        with self._open() as opened:
            yield from until_read_error(_jsonl_units(opened.stream, self.max_line_bytes, skip), opened.compression)

    def count(self) -> int:
        """The lines (a last line without a newline counts): newlines counted in a plain file, else the units read."""
        if not self.seekable:
            return super().count()
        with self._open() as opened:
            lines = 0
            last = b"\n"
            while block := opened.stream.read(_COUNT_BLOCK):
                lines += block.count(b"\n")
                last = block[-1:]
            return lines + (last != b"\n")

    def slices(self, skip: int, max_units: int, max_bytes: int) -> Iterator[Slice]:
        if self.seekable:
            yield from _line_ranges(self.path, self.max_line_bytes, skip, max_units, max_bytes)
        else:
            yield from super().slices(skip, max_units, max_bytes)


@dataclass(frozen=True)
class LineRange:
    """Bytes [start, end) of a plain JSONL file: whole lines, the first of them line `first_number`; a worker reads
    them on its own."""

    path: Path
    max_line_bytes: int
    start: int
    end: int
    first_number: int
    lines: int

    def units(self) -> list[RawLine]:
        """The same units the whole file's reading yields for these lines."""
        with open(self.path, "rb", buffering=0) as handle:
            handle.seek(self.start)
            stream = io.BufferedReader(_Bounded(handle, self.end - self.start), 1 << 20)
            units = _jsonl_units(stream, self.max_line_bytes, 0, self.first_number)  # type: ignore[arg-type]
            return list(until_read_error(units, None, self.first_number - 1))


def _line_ranges(path: Path, max_line_bytes: int, skip: int, max_lines: int, max_bytes: int) -> Iterator[Slice]:
    """Cut a plain JSONL file, after its first `skip` lines, into ranges of whole lines (at most `max_lines` lines, and
    at most `max_bytes` bytes unless one line is longer). Reads the file once, counting newlines; a read that fails
    ends the file with its J011 unit, as reading it line by line does."""
    with open(path, "rb", buffering=0) as handle:
        offset, number = 0, 0
        start, end, first, lines = 0, 0, 1, 0
        last = b"\n"
        while True:
            try:
                block = handle.read(_COUNT_BLOCK)
            except READ_ERRORS as error:
                if lines:
                    yield LineRange(path, max_line_bytes, start, end, first, lines)
                yield Units([read_error_unit(error, None, before=number)])
                return
            if not block:
                break
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
                    yield LineRange(path, max_line_bytes, start, end, first, lines)
                    start, first, lines = end, number + 1, 0
            offset += len(block)
            last = block[-1:]
        if last != b"\n" and number + 1 > skip:  # a last line without a newline
            lines += 1
        if lines:
            yield LineRange(path, max_line_bytes, start, offset, first, lines)


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
