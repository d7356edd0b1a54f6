"""RawLine: one unit of an input (a JSONL line, a JSON array element, a Parquet/Arrow row), as every format's Source
(vlprep.inputs.source) yields it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawLine:
    line: int  # the line the unit starts on (an array element: the line of its opening brace)
    data: bytes | None  # None when the unit was over the size limit (its bytes were skipped, not read into memory)
    number: int  # 1-based position among the input's units (== line for JSONL)
    had_bom: bool = False
    size: int = 0
    index: int | None = None  # its index in a JSON array (0-based); None for JSONL lines
    problem: tuple[str, str] | None = None  # (rule code, message) found while reading: reported instead of parsing
