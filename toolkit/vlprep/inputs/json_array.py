"""A JSON array of records (first non-blank byte `[`): split into element spans while streaming, with each element's
line and index.

Each unit is an element (or a stretch of the input that is no element, such as text after the array): its `line` is
the line of its opening brace, `index` its index in the array, `number` its 1-based position among the units.

Why a splitter of our own rather than ijson (the well-kept streaming JSON parser, with a C backend): ijson yields parse
events without byte offsets or line numbers, and stops at the first syntax error. vlprep needs, for every element, the
line of its opening brace and its index, the element's own bytes (to dispatch to worker processes exactly like a JSONL
line, where `json.loads` parses it and reports its errors), and to carry on after a malformed element. So this module
only cuts spans: it tracks strings (with escapes), nesting depth and newlines with precompiled regular expressions over
a bounded buffer (the current element plus one read block), and never parses values itself.

Recovery ("resynchronizing"):
- a malformed element whose brackets balance (a missing comma or quote inside, a trailing comma, NaN...) is cut at its
  closing bracket like any other; its parse error is reported with its index, and the next element is unaffected;
- a raw newline inside a string (never valid JSON) ends the string there, so an unterminated string swallows one line
  at most;
- in a pretty-printed array (elements opening on their own line, their content indented deeper), a closing bracket at
  the elements' indentation ends the element, an opening bracket at that indentation starts the next one, and no other
  closing bracket ends it, whatever the depth count says, so an element with a missing or extra bracket costs that
  element only;
- anything else unbalanced runs to the end of the file and is reported as the array cut short there.

Memory stays flat: an element over `max_bytes` is scanned to its end without being kept (`data=None`); a stretch of
whitespace, or the text after the array, is read block by block. The cuts do not depend on `max_bytes` or the read size
(for `max_bytes` of 32 or more: the element's first line break and the next line's indentation are read before its
bytes are let go), so counting the units and reading them agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import BinaryIO

from vlprep.inputs.source import TextSource
from vlprep.inputs.streams import BOM, read_head, until_read_error
from vlprep.inputs.units import RawLine

READ_BYTES = 1 << 20
_STRUCTURE = re.compile(rb'[{}\[\]",]')
_STRING_BODY = re.compile(rb'[^"\\\n]*(?:\\[^\n][^"\\\n]*)*')  # the rest of a string after its opening quote
_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_BODY_INDENT = re.compile(rb"[{\[][ \t]*\r?\n([ \t]*)")
_LOOKBEHIND = 256  # bytes before the scan position kept (and looked at) to tell what precedes a bracket on its line
_TRAILING_PREVIEW = 4096
_QUOTE, _BACKSLASH, _OPENERS, _CLOSERS = 0x22, 0x5C, (0x7B, 0x5B), (0x7D, 0x5D)


class JsonArraySource(TextSource):
    label = "a JSON array"

    def units(self, skip: int = 0) -> Iterator[RawLine]:
        with self._open() as opened:
            yield from until_read_error(islice(_array_units(opened.stream, self.max_line_bytes), skip, None),
                                        opened.compression)


def _array_units(stream: BinaryIO, max_line_bytes: int) -> Iterator[RawLine]:
    _, had_bom = read_head(stream)
    stream.read(len(BOM) if had_bom else 0)
    for number, span in enumerate(ArraySplitter(stream, max_line_bytes).spans(), start=1):
        yield RawLine(span.line, span.data, number, had_bom=had_bom and number == 1, size=span.size, index=span.index,
                      problem=span.problem)


@dataclass(frozen=True)
class Span:
    """One element of the array, or a stretch of the input that is not an element (`index` None, with a problem)."""

    line: int
    index: int | None
    data: bytes | None  # None when over max_bytes (scanned to its end, not kept)
    size: int
    problem: tuple[str, str] | None = None  # (rule code, message) found by the splitter itself


@dataclass
class _Element:
    start: int  # its first byte in the buffer, while its bytes are kept
    line: int
    indent: bytes | None  # the blanks before it on its line when it opens a line
    body_indent: bytes | None = None  # its content's indentation, when deeper than `indent` (pretty-printed)
    body_indent_known: bool = False
    dropped_at: int = -1  # absolute offset of its first byte once its bytes are no longer kept


class ArraySplitter:
    """`spans()` yields the array's elements (and any stretch that is no element) from a stream whose first non-blank
    byte is the array's `[`."""

    def __init__(self, stream: BinaryIO, max_bytes: int, read_bytes: int = READ_BYTES) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._read_bytes = read_bytes
        self._buf = bytearray()
        self._base = 0  # absolute offset of self._buf[0]
        self._line = 1  # line number at buffer position self._counted
        self._counted = 0

    # --- the buffer --------------------------------------------------------------------------------------------
    def _fill(self) -> bool:
        block = self._stream.read(self._read_bytes)
        self._buf += block
        return bool(block)

    def _line_at(self, position: int) -> int:
        if position > self._counted:
            self._line += self._buf.count(b"\n", self._counted, position)
            self._counted = position
        return self._line

    def _discard(self, position: int) -> None:
        """Forget the buffer before `position`: later positions shift down by `position`."""
        self._line_at(position)
        del self._buf[:position]
        self._base += position
        self._counted -= position

    def _next_non_space(self, position: int) -> int | None:
        """Discard the buffer before `position`, then find the next non-blank byte (None at the end of the input).
        The blanks before it stay in the buffer (the last _LOOKBEHIND of a long run), so its indentation can be seen."""
        self._discard(position)
        position = 0
        while (found := _NON_SPACE.search(self._buf, position)) is None:
            self._discard(max(0, len(self._buf) - _LOOKBEHIND))
            position = len(self._buf)
            if not self._fill():
                return None
        return found.start()

    # --- the array ---------------------------------------------------------------------------------------------
    def spans(self) -> Iterator[Span]:
        position = self._next_non_space(0)
        assert position is not None and self._buf[position] == 0x5B, "the caller checked that the input starts with ["
        position += 1
        index = 0
        expect_element, after_comma = True, False  # after '[' or ',' an element is expected
        while True:
            position = self._next_non_space(position)
            if position is None:
                yield self._cut_short(index)
                return
            byte = self._buf[position]
            if byte == 0x5D:  # ]
                if after_comma:
                    last = f" (#{index - 1})" if index else ""
                    yield Span(self._line_at(position), None, b",]", 2,
                               ("J001", f"invalid JSON: a comma after the last element{last} before ']'"))
                yield from self._after_array(position + 1)
                return
            if byte == 0x2C:  # ,
                if expect_element:
                    yield Span(self._line_at(position), None, b",", 1,
                               ("J001", f"invalid JSON: no element between two commas (before element #{index})"))
                position += 1
                expect_element, after_comma = True, True
                continue
            is_element = expect_element or byte in _OPENERS
            span, position, resynced = self._value(position, index, is_element)
            if span.problem is None and not is_element:
                span = Span(span.line, None, span.data, span.size,
                            ("J001", f"invalid JSON: unexpected text after element #{index - 1}"))
            elif span.problem is None and not expect_element:
                span = Span(span.line, span.index, span.data, span.size,
                            ("J001", f"invalid JSON: no comma between element #{index - 1} and this element #{index}"))
            yield span
            if position is None:
                return
            index += is_element
            expect_element, after_comma = resynced, False

    def _cut_short(self, index: int) -> Span:
        line = self._line_at(len(self._buf))
        return Span(line, None, None, 0, ("J008", f"the file ends at line {line} before the array's closing ']': it is "
                                                  f"cut short after {index:,} record(s)"))

    def _after_array(self, position: int) -> Iterator[Span]:
        start = self._next_non_space(position)
        if start is None:
            return
        line = self._line_at(start)
        self._discard(start)
        preview = bytes(self._buf[:_TRAILING_PREVIEW])
        size = len(self._buf)
        self._discard(size)
        while self._fill():  # measured, not kept
            size += len(self._buf)
            self._discard(len(self._buf))
        hint = " (another JSON value follows: files concatenated?)" if preview[:1] in (b"[", b"{") else ""
        yield Span(line, None, preview, size, ("J010", f"{size:,} byte(s) after the array's closing ']'{hint}: JSON "
                                                       "loaders, ms-swift's included, refuse the whole file"))

    def _value(self, start: int, records_before: int, is_element: bool) -> tuple[Span, int | None, bool]:
        """Scan the value at `start` (element #records_before, or text that is no element); return its span, the
        position after it (None at the end of the input), and whether it was cut where the next element opens a line
        (so that one needs no comma before it)."""
        index = records_before if is_element else None
        gap = self._buf[:start]
        newline = gap.rfind(b"\n")
        indent = bytes(gap[newline + 1:]) if newline >= 0 and len(gap) - newline < _LOOKBEHIND else None
        self._discard(start)
        element = _Element(0, self._line_at(0), indent)
        end, resynced = self._scan(element)
        first = element.dropped_at if element.dropped_at >= 0 else self._base + element.start
        kept = element.dropped_at < 0
        if end is None:
            what = f"element #{index}" if index is not None else "a value"
            message = (f"the file ends inside {what} (opened at line {element.line}): the array is cut short, or "
                       f"this element is missing a closing bracket; {records_before:,} record(s) before it")
            size = self._base + len(self._buf) - first
            return Span(element.line, index, bytes(self._buf[element.start:]) if kept else None, size,
                        ("J008", message)), None, False
        size = self._base + end - first
        if not kept or size > self._max_bytes:
            problem = ("J006", f"element is {size:,} bytes, over the --max-line-bytes limit; not parsed")
            return Span(element.line, index, None, size, problem), end, resynced
        return Span(element.line, index, bytes(self._buf[element.start:end]).rstrip(), size), end, resynced

    def _scan(self, element: _Element) -> tuple[int | None, bool]:
        """Find the end of the value starting at element.start: (position after it or None at EOF, resynced)."""
        buf = self._buf
        depth = 0
        position = element.start
        in_string = False
        while True:
            if in_string:
                stop = _STRING_BODY.match(buf, position).end()  # type: ignore[union-attr]
                if stop < len(buf) and buf[stop] == _QUOTE:
                    position, in_string = stop + 1, False
                elif stop == len(buf) or (stop == len(buf) - 1 and buf[stop] == _BACKSLASH):
                    position = self._more(element, stop)
                    if position is None:
                        return None, False
                else:  # a raw newline (never valid in a JSON string) ends the broken string here
                    position, in_string = stop, False
                continue
            found = _STRUCTURE.search(buf, position)
            if found is None:
                position = self._more(element, len(buf))
                if position is None:
                    return None, False
                continue
            at = found.start()
            byte = buf[at]
            position = at + 1
            if byte == _QUOTE:
                in_string = True
            elif byte in _OPENERS:
                if depth >= 1 and self._at_element_indent(element, at):
                    return at - len(element.indent or b"") - 1, True  # the next element opens here
                depth += 1
            elif byte in _CLOSERS:
                if depth == 0:  # ends a value that is not bracketed; a stray closing bracket is a value of its own
                    return (at + 1 if at == element.start else at), False
                at_indent = self._at_element_indent(element, at)
                if depth > 1 and at_indent:
                    depth = 1  # the closing bracket at the elements' indentation ends this element
                elif depth == 1 and not at_indent and element.body_indent is not None and self._opens_line(at):
                    continue  # a pretty-printed element closes at its own indentation only: this bracket is extra
                depth -= 1
                if depth == 0:
                    return at + 1, False
            elif depth == 0:  # a comma after a value that is not bracketed
                return at, False

    def _more(self, element: _Element, position: int) -> int | None:
        """Read more input; the scan resumes at the returned position (None at the end of the input). Past max_bytes
        the element's bytes stop being kept: only what the indentation check looks back at stays."""
        if element.dropped_at < 0 and len(self._buf) - element.start > self._max_bytes:
            self._learn_body_indent(element)
            element.dropped_at = self._base + element.start
        if element.dropped_at >= 0:
            keep = max(0, position - _LOOKBEHIND)
            self._discard(keep)
            position -= keep
        return position if self._fill() else None

    def _learn_body_indent(self, element: _Element) -> None:
        if element.body_indent_known:
            return
        element.body_indent_known = True
        if element.indent is None:
            return
        found = _BODY_INDENT.match(self._buf, element.start)
        body = bytes(found.group(1)) if found else b""
        if len(body) > len(element.indent) and body.startswith(element.indent):
            element.body_indent = body

    def _opens_line(self, at: int) -> bool:
        """Whether only blanks precede the byte at `at` on its line (looking back _LOOKBEHIND bytes at most)."""
        newline = self._buf.rfind(b"\n", max(0, at - _LOOKBEHIND), at)
        return newline >= 0 and not self._buf[newline + 1:at].strip()

    def _at_element_indent(self, element: _Element, at: int) -> bool:
        """Whether the bracket at `at` is the first thing on its line, at the indentation the elements open at, in a
        pretty-printed array (where nothing inside an element sits at that indentation)."""
        if element.indent is None:
            return False
        self._learn_body_indent(element)
        if element.body_indent is None:
            return False
        line_start = at - len(element.indent)
        return line_start >= 1 and self._buf[line_start - 1] == 0x0A and self._buf[line_start:at] == element.indent
