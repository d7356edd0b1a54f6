"""Columnar inputs, the part Parquet files (vlprep.inputs.parquet) and the Arrow files of a `datasets` `save_to_disk`
folder (vlprep.inputs.arrow) share: read row group by row group (record batch by record batch), never the whole file,
as the same JSON records a JSONL line holds.

Each row becomes one unit (RawLine) whose `number` and `line` are both its 1-based row number in the file, so a
finding prints `file.parquet:ROW` (row 1 is the first row: `datasets`' `ds[ROW - 1]`). The row is converted to the JSON
text of a record:
- top-level null columns are dropped (a column of the file's schema that this row does not use);
- an image struct `{bytes, path}` becomes a `data:image/...;base64,` URI when it holds bytes (the bytes are the image;
  the path is then often just a name), else its path; a bare binary value becomes a data URI too. The pipeline checks
  and counts a data URI like a file (header-only in --fast), and the cache keeps it as written;
- anything else JSON has no type for (dates, decimals) is written as its text.

A file pyarrow cannot open is one unit (J011). A row group (record batch) that cannot be read makes each of its rows a
J011 unit and reading goes on with the next, so `count` and the units read always agree. The worker engines get slices
of row groups, which the workers read themselves: converting rows (images to base64) is the costly part.
"""

from __future__ import annotations

import base64
import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from vlprep.inputs.source import Slice, Source
from vlprep.inputs.units import RawLine

BATCH_ROWS = 256
_IMAGE_TYPES = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"GIF8": "gif", b"BM": "bmp", b"II*\x00": "tiff",
                b"MM\x00*": "tiff"}

Groups = tuple[list[int], list[Callable[[], Iterable[pa.RecordBatch]]]]  # rows in each group, and a reader of each


class ColumnarSource(Source):
    part: ClassVar[str]  # what the file's groups of rows are called: "row group", "record batch"

    @abstractmethod
    def _sizes(self) -> list[int]:
        """Rows in each group; raises pyarrow's or the OS's error when the file cannot be opened."""

    @abstractmethod
    def _groups(self) -> Groups:
        """The sizes and a reader of each group (the same errors)."""

    def count(self) -> int:
        """The rows (1 when the file cannot be opened at all: its J011 unit)."""
        try:
            return sum(self._sizes())
        except (pa.ArrowException, OSError):
            return 1

    def units(self, skip: int = 0) -> Iterator[RawLine]:
        try:
            sizes, readers = self._groups()
        except (pa.ArrowException, OSError) as error:
            if skip == 0:
                yield self._unopenable(error)
            return
        first = 0
        for size, read in zip(sizes, readers):
            if first + size > skip:
                yield from self._group_units(read, first, size, max(0, skip - first))
            first += size

    def slices(self, skip: int, max_units: int, max_bytes: int) -> Iterator[Slice]:
        """Slices of at most `max_units` rows within a row group (a file that cannot be opened: one slice, its J011
        unit); `max_bytes` does not apply, the rows are read by the workers."""
        try:
            sizes = self._sizes()
        except (pa.ArrowException, OSError):
            sizes = [1]
        first = 0
        for group, size in enumerate(sizes):
            for start in range(max(0, skip - first), size, max_units):
                yield RowSlice(self, group, first, start, min(size, start + max_units))
            first += size

    def group_units(self, group: int, first: int, start: int, stop: int) -> Iterator[RawLine]:
        """Rows [start, stop) of group `group`, whose first row is row `first + 1`: the same units `units` yields for
        them. A file that cannot be opened is its J011 unit (group 0, from its start)."""
        try:
            sizes, readers = self._groups()
        except (pa.ArrowException, OSError) as error:
            if group == 0 and start == 0:
                yield self._unopenable(error)
            return
        yield from self._group_units(readers[group], first, sizes[group], start, stop)

    def _unopenable(self, error: Exception) -> RawLine:
        return RawLine(1, None, 1, problem=("J011", f"cannot be read as {self.label}: {error}"))

    def _group_units(self, read: Callable[[], Iterable[pa.RecordBatch]], first: int, size: int, start: int,
                     stop: int | None = None) -> Iterator[RawLine]:
        """Rows [start, stop) of a group of `size` rows; a group that fails while read is one J011 unit per row
        left."""
        end = first + (size if stop is None else min(stop, size))
        row = first
        try:
            for batch in read():
                if row + batch.num_rows <= first + start:  # wholly before the slice: not converted
                    row += batch.num_rows
                    continue
                for record in batch.to_pylist():
                    row += 1
                    if row > end:
                        return
                    if row > first + start:
                        yield _unit(row, record)
                if row >= end:
                    return
        except (pa.ArrowException, OSError) as error:
            for lost in range(max(row, first + start) + 1, end + 1):
                yield RawLine(lost, None, lost, problem=(
                    "J011", f"this row's {self.part} (rows {first + 1:,}-{first + size:,}) cannot be read: {error}"))


@dataclass(frozen=True)
class RowSlice:
    """Rows [start, stop) of group `group`, whose first row is row `first + 1` of the file: a share of a columnar file
    that a worker reads on its own."""

    source: ColumnarSource
    group: int
    first: int
    start: int
    stop: int

    def units(self) -> list[RawLine]:
        return list(self.source.group_units(self.group, self.first, self.start, self.stop))


def _unit(row: int, record: dict[str, Any]) -> RawLine:
    data = json.dumps({key: _jsonable(value) for key, value in record.items() if value is not None},
                      ensure_ascii=False, default=str).encode()
    return RawLine(row, data, row, size=len(data))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if "bytes" in value and set(value) <= {"bytes", "path"}:
            return data_uri(value["bytes"]) if value["bytes"] is not None else value.get("path")
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return data_uri(bytes(value))
    return value


def data_uri(data: bytes) -> str:
    """Embedded image bytes as a data URI, its type named from its magic bytes (`webp` checked in the RIFF header)."""
    kind = next((name for magic, name in _IMAGE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        kind = "webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "octet-stream"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"
