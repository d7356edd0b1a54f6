"""Open an input for reading: a file, or stdin (`-`), decompressed while streaming when it is gzip or zstd.

Compression is recognized by its magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), not by the file's name. A stream that
ends before its end-of-stream marker (a file cut short) or whose data is corrupt raises one of `READ_ERRORS` while it is
read; `until_read_error` turns that into the input's last unit (J011). zstd is decompressed frame by frame through a
decompression object because zstandard's stream reader ends silently on a frame cut short.
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from vlprep.inputs.units import RawLine

STDIN = Path("-")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BUFFER_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"
_HEAD_BYTES = 1 << 16
_ZSTD_INPUT_BYTES = 1 << 16  # compressed bytes fed at a time: bounds the decompressed bytes held at once


class TruncatedStream(EOFError):
    """The compressed stream ends before its end-of-stream marker."""


READ_ERRORS = (OSError, EOFError, zlib.error, zstandard.ZstdError)  # gzip.BadGzipFile is an OSError


@dataclass(frozen=True)
class InputStream:
    stream: BinaryIO  # decompressed bytes, buffered (peek works)
    compression: str | None  # "gzip", "zstd" or None


def is_stdin(path: Path) -> bool:
    return path == STDIN


@contextmanager
def open_input(path: Path) -> Iterator[InputStream]:
    """The input's decompressed bytes; stdin is read as it comes and is not closed."""
    handle: BinaryIO = io.BufferedReader(sys.stdin.buffer, BUFFER_BYTES) if is_stdin(path) else \
        open(path, "rb", buffering=BUFFER_BYTES)  # type: ignore[assignment]
    try:
        magic = handle.peek(4)[:4]  # type: ignore[attr-defined]
        if magic.startswith(GZIP_MAGIC):
            stream = io.BufferedReader(gzip.GzipFile(fileobj=handle, mode="rb"), BUFFER_BYTES)  # type: ignore[arg-type]
            yield InputStream(stream, "gzip")  # type: ignore[arg-type]
        elif magic.startswith(ZSTD_MAGIC):
            yield InputStream(io.BufferedReader(_ZstdReader(handle), BUFFER_BYTES), "zstd")  # type: ignore[arg-type]
        else:
            yield InputStream(handle, None)
    finally:
        if not is_stdin(path):
            handle.close()


def read_head(stream: BinaryIO) -> tuple[bytes, bool]:
    """The first bytes of the stream (without consuming them), after a byte-order mark, and whether there was one."""
    head = stream.peek(_HEAD_BYTES)  # type: ignore[attr-defined]
    return (head[len(BOM):], True) if head.startswith(BOM) else (head, False)


def until_read_error(units: Iterator[RawLine], compression: str | None, before: int = 0) -> Iterator[RawLine]:
    """A compressed stream (or stdin) can fail while it is read: the failure becomes the input's last unit (J011).
    `before`: the units before the first of `units` (a JSONL line range that starts inside the file)."""
    last: RawLine | None = None
    try:
        for last in units:
            yield last
    except READ_ERRORS as error:
        yield read_error_unit(error, compression, last, before)


def read_error_unit(error: BaseException, compression: str | None, last: RawLine | None = None, before: int = 0
                    ) -> RawLine:
    """The J011 unit of a read that failed after the unit `last` (None: before any unit)."""
    what = f"the {compression} stream" if compression else "the input"
    records = last.number if last else before
    line = last.line + 1 if last else before + 1
    return RawLine(line, None, records + 1, problem=(
        "J011", f"{what} cannot be read past this point ({error or type(error).__name__}); "
                f"{records:,} record(s) before it were read"))


class _ZstdReader(io.RawIOBase):
    """Decompresses concatenated zstd frames; raises TruncatedStream when the input ends inside a frame."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._in_frame = False
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        while not self._pending:
            compressed = self._source.read(_ZSTD_INPUT_BYTES)
            if not compressed:
                if self._in_frame:
                    raise TruncatedStream("the zstd stream ends inside a frame (file cut short)")
                return 0
            self._pending = memoryview(self._decompress(compressed))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decompress(self, compressed: bytes) -> bytes:
        out = [self._frame.decompress(compressed)]
        self._in_frame = not self._frame.eof
        while self._frame.eof and (rest := self._frame.unused_data):
            self._frame = self._decompressor.decompressobj()
            out.append(self._frame.decompress(rest))
            self._in_frame = not self._frame.eof
        if self._frame.eof:  # the next chunk starts a new frame
            self._frame = self._decompressor.decompressobj()
        return b"".join(out)
