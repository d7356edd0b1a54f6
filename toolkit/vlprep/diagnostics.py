"""What one record produces when it goes through the pipeline: its diagnostics and, for caching, its counted form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlprep.rules import RULES, Severity


@dataclass(frozen=True)
class Diagnostic:
    code: str
    line: int
    message: str
    file: str = ""

    @property
    def severity(self) -> Severity:
        return RULES[self.code].severity

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": RULES[self.code].name,
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }


@dataclass(frozen=True)
class ImageInfo:
    """What the header (and, in full mode, the decoder) said about one image."""

    width: int
    height: int
    format: str
    mode: str
    path: str  # absolute path, or "" for data URIs / embedded bytes


@dataclass
class RecordResult:
    """The outcome for one input line. `record` is the canonical form, kept only when it is to be cached."""

    file: str
    line: int
    text: str
    input_format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # keys ms-swift maps to a column (vlprep.normalize)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    fingerprint: int | None = None  # 64-bit hash of the parsed record with sorted keys
    record: dict[str, Any] | None = None
    images: list[ImageInfo] = field(default_factory=list)
    counted: Any = None  # vlprep.tokens.CountedRecord when counting was asked for

    def has_errors(self, active: frozenset[str]) -> bool:
        return any(d.severity is Severity.ERROR and d.code in active for d in self.diagnostics)
