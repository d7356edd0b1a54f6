"""`vlprep rules`: the rule catalog, or the named rules explained (like `ruff rule`)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from vlprep.cli.formats import DocumentFormat
from vlprep.errors import UsageError
from vlprep.records.rules import RULES, Rule, expand
from vlprep.records.rules.doc import explain, severity_label


def rules(
    codes: Annotated[Optional[list[str]], typer.Argument(
        help="Rule codes or prefixes to explain (I004, S01, T); none lists every rule.", show_default=False)] = None,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json.")] = DocumentFormat.text,
) -> None:
    """List every rule (code, name, default severity, summary), or explain the named ones: why each matters, a
    failing example and the fix.

    Example: [bold]vlprep rules I004[/]"""
    try:
        named = [code for value in codes or [] for code in value.split(",") if code]  # as --select takes them
        chosen = [RULES[code] for code in expand(named)] if named else list(RULES.values())
    except ValueError as error:  # expand names the unknown prefix and the closest code
        raise UsageError(str(error)) from None
    if output_format is DocumentFormat.json:
        sys.stdout.write(json.dumps([_row(rule) for rule in chosen], indent=2) + "\n")
    elif named:
        sys.stdout.write("\n".join(explain(rule) for rule in chosen))
    else:
        table = Table(show_lines=False)
        for column in ("code", "name", "severity", "summary"):
            table.add_column(column)
        for rule in chosen:
            table.add_row(rule.code, rule.name, severity_label(rule), rule.summary)
        Console().print(table)


def _row(rule: Rule) -> dict[str, Any]:
    return {**asdict(rule), "severity": rule.severity.value, "retired": rule.retired or None}
