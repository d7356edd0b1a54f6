"""Cross-record checks and the tally of a run: duplicates (D001; near-duplicate pictures D002-D004 in
vlprep.lint.pictures), mixed formats per file (F001), counts per rule.

Records arrive in input order from the engine; everything here runs in the parent process and keeps O(1) state per
record (a 64-bit fingerprint and the packed position of its first occurrence, about 100 bytes per distinct record in a
Python dict) plus a few line numbers per file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from vlprep.lint.pictures import PictureIndex
from vlprep.records.diagnostics import Diagnostic, RecordResult, position
from vlprep.records.canonical import FORMAT_FAMILY
from vlprep.records.rules import RULES, Severity

_EXAMPLE_LINES = 5


@dataclass
class FileTally:
    path: str
    lines: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    first_lines: dict[str, list[int]] = field(default_factory=dict)
    # (format family, column) -> key as written -> first line; across families the records are dropped anyway (F001)
    column_keys: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def observe(self, result: RecordResult) -> None:
        self.lines += 1
        for key, column in result.columns.items():
            family = FORMAT_FAMILY.get(result.input_format or "", "")
            self.column_keys.setdefault((family, column), {}).setdefault(key, result.line)
        if result.input_format:
            self.formats[result.input_format] += 1
            family = FORMAT_FAMILY[result.input_format]
            firsts = self.first_lines.setdefault(family, [])
            if len(firsts) < _EXAMPLE_LINES:
                firsts.append(result.line)

    def alias_collision_diagnostics(self) -> list[Diagnostic]:
        """ms-swift's loader renames a key to its column only when no other key of the file maps to that column."""
        found = []
        for (_, column), keys in self.column_keys.items():
            if len(keys) < 2:
                continue
            dropped = {key: line for key, line in keys.items() if key != column}
            named = ", ".join(f"`{key}` (first at line {line})" for key, line in sorted(keys.items(),
                                                                                        key=lambda item: item[1]))
            message = (f"the file uses {named} for ms-swift's `{column}` column: its loader then renames none of them "
                       f"and drops the values of {', '.join(f'`{key}`' for key in dropped)} (vlprep reads each record "
                       f"on its own); use one name per file")
            found.append(Diagnostic("F003", min(dropped.values()), message, self.path))
        return found

    def mixed_format_diagnostic(self) -> Diagnostic | None:
        families = Counter()
        for name, count in self.formats.items():
            families[FORMAT_FAMILY[name]] += count
        if len(families) < 2:
            return None
        (major, _), (minor, minor_count) = families.most_common(2)
        lines = self.first_lines[minor]
        message = (f"{minor_count} record(s) in {minor!r} format among {families[major]} in {major!r} format "
                   f"(first at lines {', '.join(map(str, lines))}): ms-swift would drop the {minor!r} ones")
        return Diagnostic("F001", lines[0], message, self.path)


@dataclass
class Tally:
    """Counts of a whole run; `observe` returns the record's diagnostics restricted to the active rules."""

    active: frozenset[str]
    counts: Counter[str] = field(default_factory=Counter)
    records: int = 0
    records_with_errors: int = 0
    files: list[FileTally] = field(default_factory=list)
    # fingerprint -> file index << 80 | (array index + 1, or 0 for JSONL) << 40 | line
    _seen: dict[int, int] = field(default_factory=dict)
    pictures: PictureIndex = field(default_factory=PictureIndex)

    def observe(self, result: RecordResult) -> list[Diagnostic]:
        if not self.files or self.files[-1].path != result.file:
            self.files.append(FileTally(result.file))
        self.files[-1].observe(result)
        self.records += 1
        exact = False
        if result.fingerprint is not None:
            index = 0 if result.index is None else result.index + 1
            here = (len(self.files) - 1) << 80 | index << 40 | result.line
            first = self._seen.setdefault(result.fingerprint, here)
            if first != here:
                exact = True
                mask = (1 << 40) - 1
                first_index = (first >> 40 & mask) - 1
                where = position(self.files[first >> 80].path, first & mask, None if first_index < 0 else first_index)
                result.diagnostics.append(Diagnostic("D001", result.line, f"identical to {where}", result.file,
                                                     index=result.index))
        where = position(result.file, result.line, result.index)
        for code, message in self.pictures.observe(self.records - 1, where, result.images, result.text_fingerprint,
                                                   exact):
            result.diagnostics.append(Diagnostic(code, result.line, message, result.file, index=result.index))
        active = [d for d in result.diagnostics if d.code in self.active]
        self.counts.update(d.code for d in active)
        if any(d.severity is Severity.ERROR for d in active):
            self.records_with_errors += 1
        return active

    def file_diagnostics(self) -> list[Diagnostic]:
        found = [d for tally in self.files if (d := tally.mixed_format_diagnostic())]
        found += [d for tally in self.files for d in tally.alias_collision_diagnostics()]
        active = [d for d in found if d.code in self.active]
        self.counts.update(d.code for d in active)
        return active

    def worst(self) -> Severity | None:
        severities = [RULES[code].severity for code in self.counts]
        return max(severities, key=lambda s: s.rank) if severities else None

    def fails(self, fail_on: Severity) -> bool:
        worst = self.worst()
        return worst is not None and worst.rank >= fail_on.rank


def lint_results(results: Iterable[RecordResult], tally: Tally) -> Iterator[Diagnostic]:
    """Stream the active diagnostics of every record, then the file-level ones."""
    for result in results:
        yield from tally.observe(result)
    yield from tally.file_diagnostics()
