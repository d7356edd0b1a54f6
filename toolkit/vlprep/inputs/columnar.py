"""Read columnar inputs: Parquet files and the Arrow files of a `datasets` `save_to_disk` folder, row by row, as the
same JSON records a JSONL line holds.

Recognized by content (Parquet: `PAR1`; Arrow IPC: the `ARROW1` file magic or a stream's `ffffffff` continuation
marker), never by name. A Parquet file is read one row group at a time (pyarrow, in batches of BATCH_ROWS rows), an
Arrow file one record batch at a time through a memory map: never the whole file.

Each row becomes one unit (reader.RawLine) whose `number` and `line` are both its 1-based row number in the file, so a
finding prints `file.parquet:ROW` (row 1 is the first row: `datasets`' `ds[ROW - 1]`). The row is converted to the JSON
text of a record:
- top-level null columns are dropped (a column of the file's schema that this row does not use);
- an image struct `{bytes, path}` becomes a `data:image/...;base64,` URI when it holds bytes (the bytes are the image;
  the path is then often just a name), else its path; a bare binary value becomes a data URI too. The pipeline checks
  and counts a data URI like a file (header-only in --fast), and the cache keeps it as written;
- anything else JSON has no type for (dates, decimals) is written as its text.

A file pyarrow cannot open is one unit (J011). A row group (record batch) that cannot be read makes each of its rows a
J011 unit and reading goes on with the next, so `count_rows` (from the metadata) and the units read always agree.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from vlprep.inputs.units import RawLine

PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"
BATCH_ROWS = 256
_IMAGE_TYPES = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"GIF8": "gif", b"BM": "bmp", b"II*\x00": "tiff",
                b"MM\x00*": "tiff"}


def columnar_kind(path: Path) -> str | None:
    """"parquet", "arrow" (an IPC file), "arrow-stream" (what `save_to_disk` writes), or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return None
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(ARROW_FILE_MAGIC):
        return "arrow"
    if head.startswith(ARROW_STREAM_MAGIC):
        return "arrow-stream"
    return None


def count_rows(path: Path, kind: str) -> int:
    """The units `iter_rows` yields: the rows (1 when the file cannot be opened at all)."""
    try:
        if kind == "parquet":
            return pq.ParquetFile(path).metadata.num_rows
        return sum(size for size in _batch_sizes(path, kind))
    except (pa.ArrowException, OSError):
        return 1


def iter_rows(path: Path, kind: str, skip: int = 0) -> Iterator[RawLine]:
    """Every row after the first `skip`, as RawLine units (see the module docstring)."""
    try:
        sizes, readers = _groups(path, kind)
    except (pa.ArrowException, OSError) as error:
        if skip == 0:
            yield _unopenable(kind, error)
        return
    first = 0
    for size, read in zip(sizes, readers):
        if first + size > skip:
            yield from _group_units(kind, read, first, size, max(0, skip - first))
        first += size


def group_sizes(path: Path, kind: str) -> list[int] | None:
    """Rows in each row group (record batch); None when the file cannot be opened (it is then one J011 unit)."""
    try:
        return _groups(path, kind)[0]
    except (pa.ArrowException, OSError):
        return None


@dataclass(frozen=True)
class RowSlice:
    """Rows [start, stop) of row group (record batch) `group`, whose first row is row `first + 1` of the file: a share
    of a columnar file that a worker reads on its own."""

    kind: str
    group: int
    first: int
    start: int
    stop: int

    def units(self, path: Path) -> list[RawLine]:
        return list(iter_group(path, self.kind, self.group, self.first, self.start, self.stop))


def row_slices(path: Path, kind: str, skip: int, rows: int) -> Iterator[RowSlice]:
    """The file's rows after the first `skip`, in slices of at most `rows` rows within a row group (a file that
    cannot be opened: one slice, its J011 unit)."""
    sizes = group_sizes(path, kind)
    first = 0
    for group, size in enumerate(sizes if sizes is not None else [1]):
        for start in range(max(0, skip - first), size, rows):
            yield RowSlice(kind, group, first, start, min(size, start + rows))
        first += size


def iter_group(path: Path, kind: str, group: int, first: int, start: int = 0, stop: int | None = None
               ) -> Iterator[RawLine]:
    """Rows [start, stop) of one row group (record batch) whose first row is row `first + 1`: the same units
    `iter_rows` yields for them. A file that cannot be opened is its J011 unit (group 0, from its start)."""
    try:
        sizes, readers = _groups(path, kind)
    except (pa.ArrowException, OSError) as error:
        if group == 0 and start == 0:
            yield _unopenable(kind, error)
        return
    yield from _group_units(kind, readers[group], first, sizes[group], start, stop)


def _unopenable(kind: str, error: Exception) -> RawLine:
    return RawLine(1, None, 1, problem=("J011", f"cannot be read as {_label(kind)}: {error}"))


def _group_units(kind: str, read: Any, first: int, size: int, start: int, stop: int | None = None
                 ) -> Iterator[RawLine]:
    """Rows [start, stop) of a row group of `size` rows; a group that fails while read is one J011 unit per row left."""
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
                "J011", f"this row's {_part(kind)} (rows {first + 1:,}-{first + size:,}) cannot be read: {error}"))


def _groups(path: Path, kind: str) -> tuple[list[int], list[Any]]:
    return _parquet_groups(path) if kind == "parquet" else _arrow_groups(path, kind)


def _label(kind: str) -> str:
    return "Parquet" if kind == "parquet" else "an Arrow file"


def _part(kind: str) -> str:
    return "row group" if kind == "parquet" else "record batch"


def _parquet_groups(path: Path) -> tuple[list[int], list[Any]]:
    parquet = pq.ParquetFile(path)
    sizes = [parquet.metadata.row_group(group).num_rows for group in range(parquet.num_row_groups)]
    readers = [lambda group=group: parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])
               for group in range(parquet.num_row_groups)]
    return sizes, readers


def _open_arrow(path: Path, kind: str) -> Any:
    source = pa.memory_map(str(path))
    return ipc.open_file(source) if kind == "arrow" else ipc.open_stream(source)


def _batch_sizes(path: Path, kind: str) -> Iterator[int]:
    reader = _open_arrow(path, kind)
    if kind == "arrow":
        for index in range(reader.num_record_batches):
            yield reader.get_batch(index).num_rows
    else:
        for batch in reader:
            yield batch.num_rows


def _arrow_groups(path: Path, kind: str) -> tuple[list[int], list[Any]]:
    sizes = list(_batch_sizes(path, kind))
    batches = _BatchCursor(_open_arrow(path, kind), kind)
    return sizes, [lambda index=index: [batches.at(index)] for index in range(len(sizes))]


class _BatchCursor:
    """Record batch `index` of an Arrow file (random access) or stream (read forward, batches before it skipped)."""

    def __init__(self, reader: Any, kind: str) -> None:
        self._reader = reader
        self._kind = kind
        self._next = 0

    def at(self, index: int) -> pa.RecordBatch:
        if self._kind == "arrow":
            return self._reader.get_batch(index)
        while True:
            batch = self._reader.read_next_batch()
            self._next += 1
            if self._next - 1 == index:
                return batch


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
