"""Source: one input in one format, and all that the commands and the worker engines need of it, whatever the format.

Every format (vlprep.inputs.jsonl, json_array, parquet, arrow) implements it; vlprep.inputs.formats.open_source tells
the formats apart by content and returns the right one. Callers never ask which format an input is.

A Source yields its units (inputs.units.RawLine) from a position, counts them, and cuts them into slices for the worker
engines: a slice is what one worker task holds (picklable), and `slice.units()` gives its units. A format that a worker
can read at a position (a plain JSONL file, a Parquet or Arrow file) makes slices the workers read themselves; any
other (a JSON array, a compressed input, stdin: read from the start only) is read here and its units are shipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from vlprep.inputs.streams import InputStream, open_input
from vlprep.inputs.units import RawLine


class Slice(Protocol):
    """A share of an input's units that one worker task holds: `units()` reads them (or has them already)."""

    def units(self) -> list[RawLine]: ...


@dataclass(frozen=True)
class Units:
    """Units read by the parent and shipped to a worker (an input that can only be read from its start)."""

    items: list[RawLine]

    def units(self) -> list[RawLine]:
        return self.items


class Source(ABC):
    label: ClassVar[str]  # the format, as messages name it

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"<{self.label}: {self.path}>"

    @abstractmethod
    def count(self) -> int:
        """The number of units `units()` yields, read exactly as they are (not for stdin: it is read once)."""

    @abstractmethod
    def units(self, skip: int = 0) -> Iterator[RawLine]:
        """Every unit after the first `skip` (how --resume goes on), in order."""

    def slices(self, skip: int, max_units: int, max_bytes: int) -> Iterator[Slice]:
        """The units after the first `skip`, in order, in slices of at most `max_units` units (and at most `max_bytes`
        bytes unless one unit is larger). Here: the units read in this process; formats a worker can read at a
        position override it."""
        chunk: list[RawLine] = []
        size = 0
        for raw in self.units(skip):
            chunk.append(raw)
            size += raw.size
            if len(chunk) >= max_units or size >= max_bytes:
                yield Units(chunk)
                chunk, size = [], 0
        if chunk:
            yield Units(chunk)


class TextSource(Source):
    """A text input (JSONL, a JSON array): a file, maybe compressed, or stdin, whose stream is already open (its
    first bytes were read to tell its format, and stdin can be opened once only)."""

    def __init__(self, path: Path, max_line_bytes: int, compression: str | None, held: InputStream | None = None
                 ) -> None:
        super().__init__(path)
        self.max_line_bytes = max_line_bytes
        self.compression = compression
        self._held = held

    def count(self) -> int:
        assert self._held is None, "stdin can be read once only"
        return sum(1 for _ in self.units())

    def _open(self) -> AbstractContextManager[InputStream]:
        return nullcontext(self._held) if self._held is not None else open_input(self.path)

    @property
    def seekable(self) -> bool:
        """Whether a worker can read its bytes at an offset: a plain (uncompressed) file."""
        return self._held is None and self.compression is None


class OneProblem(Source):
    """An input that is one unit: a problem found on opening it (the text it is cannot be read as records)."""

    label = "an input that cannot be read as records"

    def __init__(self, path: Path, unit: RawLine, read_error: bool = False) -> None:
        super().__init__(path)
        self._unit = unit
        self._read_error = read_error

    def count(self) -> int:
        return 1

    def units(self, skip: int = 0) -> Iterator[RawLine]:
        if skip == 0 or self._read_error:  # a read that fails ends the input whatever was skipped (until_read_error)
            yield self._unit
