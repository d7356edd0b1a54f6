"""The `--format` choices of commands that print one document, shared by vlprep and vltrain."""

from __future__ import annotations

from enum import Enum


class DocumentFormat(str, Enum):
    """Commands that print one document (a manifest, the rule catalog, a training summary): no per-line annotations."""

    text = "text"
    json = "json"
