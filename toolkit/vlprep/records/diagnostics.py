"""What one record produces when it goes through the pipeline: its diagnostics and, for caching, its counted form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlprep.records.rules import RULES, Severity


@dataclass(frozen=True)
class Diagnostic:
    code: str
    line: int
    message: str
    file: str = ""
    column: int | None = None  # 1-based, where the rule knows it (J001)
    index: int | None = None  # the record's index in a JSON array; None for a JSONL line

    @property
    def severity(self) -> Severity:
        return RULES[self.code].severity

    @property
    def where(self) -> str:
        return position(self.file, self.line, self.index)

    def to_json(self) -> dict[str, Any]:
        out = {
            "code": self.code,
            "name": RULES[self.code].name,
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            **({"column": self.column} if self.column is not None else {}),
        }
        if self.index is not None:
            out["index"] = self.index
        return out


def position(file: str, line: int, index: int | None = None) -> str:
    """How a record's position is printed: `file:LINE`, plus ` [#INDEX]` for an element of a JSON array."""
    return f"{file}:{line}" if index is None else f"{file}:{line} [#{index}]"


@dataclass(frozen=True)
class ImageInfo:
    """What the header (and, in full mode, the decoder) said about one image."""

    width: int
    height: int
    format: str
    mode: str
    path: str  # absolute path, or "" for data URIs / embedded bytes
    phash: int | None = None  # perceptual fingerprint (vlprep.checks.fingerprint); None when the pixels did not decode
    digest: int | None = None  # 64-bit hash of the file's bytes (exact duplicates under another path)


@dataclass
class RecordResult:
    """The outcome for one input unit (a JSONL line, an array element). `record` is the canonical form, kept only when
    it is to be cached."""

    file: str
    line: int
    text: str
    number: int  # 1-based position among the file's units (inputs.units.RawLine.number)
    index: int | None = None  # index in a JSON array
    input_format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # keys ms-swift maps to a column (vlprep.records.canonical)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    fingerprint: int | None = None  # 64-bit hash of the parsed record with sorted keys
    text_fingerprint: int | None = None  # 64-bit hash of the normalized record without its images (D004)
    record: dict[str, Any] | None = None
    images: list[ImageInfo] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)  # vlprep.counting.video.VideoHeader of each video, in order
    counted: Any = None  # vlprep.counting.tokens.CountedRecord when counting was asked for

    def has_errors(self, active: frozenset[str]) -> bool:
        return any(d.severity is Severity.ERROR and d.code in active for d in self.diagnostics)
