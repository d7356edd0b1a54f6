"""Parquet files (magic `PAR1`), one unit per row (vlprep.inputs.columnar), read one row group at a time in batches of
BATCH_ROWS rows. Not from stdin: a Parquet file is read from its end (its metadata)."""

from __future__ import annotations

import pyarrow.parquet as pq

from vlprep.inputs.columnar import BATCH_ROWS, ColumnarSource, Groups


class ParquetSource(ColumnarSource):
    label = "Parquet"
    part = "row group"

    def _sizes(self) -> list[int]:
        return _sizes(pq.ParquetFile(self.path))

    def _groups(self) -> Groups:
        parquet = pq.ParquetFile(self.path)
        readers = [lambda group=group: parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])
                   for group in range(parquet.num_row_groups)]
        return _sizes(parquet), readers


def _sizes(parquet: pq.ParquetFile) -> list[int]:
    return [parquet.metadata.row_group(group).num_rows for group in range(parquet.num_row_groups)]
