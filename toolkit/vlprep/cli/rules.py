"""`vlprep rules`: the rule catalog."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vlprep.cli.formats import DocumentFormat
from vlprep.records.rules import RULES


def rules(
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json.")] = DocumentFormat.text,
) -> None:
    """List every rule: code, name, default severity and what it means."""
    if output_format is DocumentFormat.json:
        rows = [{"code": r.code, "name": r.name, "severity": r.severity.value, "summary": r.summary}
                for r in RULES.values()]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(show_lines=False)
    for column in ("code", "name", "severity", "summary"):
        table.add_column(column)
    for rule in RULES.values():
        table.add_row(rule.code, rule.name, rule.severity.value, rule.summary)
    Console().print(table)
