"""Arrow IPC files, as a `datasets` `save_to_disk` folder holds them (vlprep.inputs.discovery lists them in order):
one unit per row (vlprep.inputs.columnar), read one record batch at a time through a memory map.

Recognized by content: the `ARROW1` file magic (random access to its batches) or a stream's `ffffffff` continuation
marker (what `save_to_disk` writes: read forward).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from vlprep.inputs.columnar import ColumnarSource, Groups


class ArrowSource(ColumnarSource):
    label = "an Arrow file"
    part = "record batch"

    def __init__(self, path: Path, stream: bool) -> None:
        super().__init__(path)
        self.stream = stream  # an IPC stream (read forward), not an IPC file (random access)

    def _open(self) -> Any:
        source = pa.memory_map(str(self.path))
        return ipc.open_stream(source) if self.stream else ipc.open_file(source)

    def _sizes(self) -> list[int]:
        reader = self._open()
        if self.stream:
            return [batch.num_rows for batch in reader]
        return [reader.get_batch(index).num_rows for index in range(reader.num_record_batches)]

    def _groups(self) -> Groups:
        sizes = self._sizes()
        batches = _BatchCursor(self._open(), self.stream)
        return sizes, [lambda index=index: [batches.at(index)] for index in range(len(sizes))]


class _BatchCursor:
    """Record batch `index` of an Arrow file (random access) or stream (read forward, batches before it skipped)."""

    def __init__(self, reader: Any, stream: bool) -> None:
        self._reader = reader
        self._stream = stream
        self._next = 0

    def at(self, index: int) -> pa.RecordBatch:
        if not self._stream:
            return self._reader.get_batch(index)
        while True:
            batch = self._reader.read_next_batch()
            self._next += 1
            if self._next - 1 == index:
                return batch
