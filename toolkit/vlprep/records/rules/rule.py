"""What one rule is: a stable code, a name, a default severity, a one-line summary and its explanation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


@dataclass(frozen=True)
class Rule:
    """One rule, explained as `vlprep rules CODE` prints it (and docs/rules.md shows it).

    `example` is a failing record as written in the JSONL (or the relevant part of one); `retired`, when set, says why
    a published code is no longer reported (its code stays reserved: codes never change meaning)."""

    code: str
    name: str
    severity: Severity
    summary: str
    why: str
    example: str
    fix: str
    retired: str = ""


ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
