"""Write a lint run's diagnostics: `text` (rich summary), `json` (the whole report, streamed), `github` (annotations).

Each writer receives diagnostics one at a time as they are found and the tally at the end, so memory stays bounded:
the text writer keeps only the first few examples per rule, the others write as they go.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlprep import __version__
from vlprep.records.diagnostics import Diagnostic
from vlprep.lint.tally import Tally
from vlprep.records.rules import RULES

REPORT_VERSION = 1
_EXAMPLES_PER_RULE = 5


class ReportWriter(Protocol):
    def add(self, diagnostic: Diagnostic) -> None: ...

    def finish(self, tally: Tally, elapsed_s: float) -> None: ...


def summary_json(tally: Tally, elapsed_s: float) -> dict[str, Any]:
    by_severity: dict[str, int] = defaultdict(int)
    for code, count in tally.counts.items():
        by_severity[RULES[code].severity.value] += count
    return {
        "records": tally.records,
        "records_with_errors": tally.records_with_errors,
        "elapsed_s": round(elapsed_s, 3),
        "by_severity": {key: by_severity.get(key, 0) for key in ("error", "warning", "info")},
        "counts": dict(sorted(tally.counts.items())),
        "files": [{"path": f.path, "lines": f.lines, "formats": dict(f.formats)} for f in tally.files],
        "pictures": tally.pictures.summary(),
    }


class JsonWriter:
    """Streams `{"version", "tool", "diagnostics": [...], "summary": {...}}` (schemas/lint-report.schema.json)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out = out or sys.stdout
        self._count = 0
        out.write(f'{{"version": {REPORT_VERSION}, "tool": "vlprep {__version__}", "diagnostics": [')

    def add(self, diagnostic: Diagnostic) -> None:
        self._out.write(("," if self._count else "") + "\n  " + json.dumps(diagnostic.to_json(), ensure_ascii=False))
        self._count += 1

    def finish(self, tally: Tally, elapsed_s: float) -> None:
        self._out.write(f'\n], "summary": {json.dumps(summary_json(tally, elapsed_s))}}}\n')
        self._out.flush()


class GithubWriter:
    """GitHub Actions workflow commands: one `::error file=…,line=…,title=…::message` per diagnostic."""

    _LEVEL = {"error": "error", "warning": "warning", "info": "notice"}

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def add(self, diagnostic: Diagnostic) -> None:
        level = self._LEVEL[diagnostic.severity.value]
        message = diagnostic.message if diagnostic.index is None else f"[#{diagnostic.index}] {diagnostic.message}"
        message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        title = f"{diagnostic.code} {RULES[diagnostic.code].name}"
        column = f",col={diagnostic.column}" if diagnostic.column is not None else ""
        self._out.write(f"::{level} file={diagnostic.file},line={diagnostic.line}{column},title={title}::{message}\n")

    def finish(self, tally: Tally, elapsed_s: float) -> None:
        self._out.flush()


class TextWriter:
    """A rich summary: counts per rule, then the first examples of each rule as `file:line: CODE message` (`file:line
    [#index]: ...` for an element of a JSON array)."""

    def __init__(self, console: Console | None = None, show_all: bool = False) -> None:
        self._console = console or Console(soft_wrap=True)
        self._examples: dict[str, list[Diagnostic]] = defaultdict(list)
        self._show_all = show_all  # every diagnostic kept in memory: for files whose problems fit on a screen

    def add(self, diagnostic: Diagnostic) -> None:
        examples = self._examples[diagnostic.code]
        if self._show_all or len(examples) < _EXAMPLES_PER_RULE:
            examples.append(diagnostic)

    def finish(self, tally: Tally, elapsed_s: float) -> None:
        console = self._console
        rate = tally.records / elapsed_s if elapsed_s > 0 else 0.0
        console.print(f"[bold]{tally.records:,}[/] records in {len(tally.files)} file(s), {elapsed_s:.2f} s "
                      f"({rate:,.0f} records/s); {tally.records_with_errors:,} with errors")
        for file in tally.files:
            formats = ", ".join(f"{name} {count:,}" for name, count in file.formats.most_common()) or "none"
            console.print(f"  {escape(file.path)}: {file.lines:,} lines; formats detected: {formats}")
        _print_pictures(console, tally.pictures.summary())
        if not tally.counts:
            console.print("[green]No problems found.[/]")
            return
        table = Table(title="Problems by rule", show_lines=False)
        for column in ("code", "name", "severity", "count"):
            table.add_column(column, justify="right" if column == "count" else "left")
        for code, count in sorted(tally.counts.items()):
            rule = RULES[code]
            color = {"error": "red", "warning": "yellow", "info": "cyan"}[rule.severity.value]
            table.add_row(code, rule.name, f"[{color}]{rule.severity.value}[/]", f"{count:,}")
        console.print(table)
        for code in sorted(self._examples):
            for diagnostic in self._examples[code]:
                console.print(f"{escape(diagnostic.where)}: [bold]{code}[/] {escape(diagnostic.message)}",
                              highlight=False)
            remaining = tally.counts[code] - len(self._examples[code])
            if remaining > 0:
                console.print(f"  … and {remaining:,} more {code} (all of them: --show-all, or --format json)")


def _print_pictures(console: Console, pictures: dict[str, Any]) -> None:
    if not pictures["distinct_pictures"]:
        return
    console.print(f"  pictures: {pictures['distinct_pictures']:,} distinct, {pictures['groups']:,} group(s) "
                  f"(near-duplicates within {pictures['near_distance']} bits joined); "
                  f"{pictures['grouped_records']:,} records share a picture group")
    for group in pictures["largest"]:
        console.print(f"    {group['records']:,} records in the group first seen at {escape(group['first'])}",
                      highlight=False)


def make_writer(fmt: str, show_all: bool = False) -> ReportWriter:
    return TextWriter(show_all=show_all) if fmt == "text" else {"json": JsonWriter, "github": GithubWriter}[fmt]()
