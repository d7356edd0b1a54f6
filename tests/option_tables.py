"""The README's option tables of `vlprep lint`, `vlprep cache` and `vltrain fit`, generated from the CLIs themselves.

`python tests/option_tables.py --write` rewrites the tables between the `<!-- options: TOOL COMMAND -->` and
`<!-- /options -->` markers of README.md; tests/test_first_hour.py fails when they differ from what this generates.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typing import Any

import typer

README = Path(__file__).resolve().parent.parent / "README.md"
TABLES = (("vlprep", "lint"), ("vlprep", "cache"), ("vltrain", "fit"))
_MARKER = re.compile(r"(<!-- options: (\w+) ([\w-]+) -->\n)(.*?)(<!-- /options -->)", re.S)
_TRAILING_BRACKET = re.compile(r"\s*\\?\[([^\[\]]*)\]\s*$")


def command(tool: str, name: str) -> Any:
    """The click command typer builds (typer vendors its own click: duck-typed here)."""
    if tool == "vlprep":
        from vlprep.cli.app import app
    else:
        from vltrain.cli import app
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def _split_help(help_text: str) -> tuple[str, str, str]:
    """(meaning, default, accepted range) from a help record ending in `[default: X; RANGE]` / `[RANGE]` brackets."""
    default, ranges = "", []
    while match := _TRAILING_BRACKET.search(help_text):
        content = match.group(1)
        if content.startswith("default: "):
            default, *rest = content[len("default: "):].split("; ")
            ranges = rest + ranges
        else:
            ranges.insert(0, content)
        help_text = help_text[:match.start()]
    return help_text.strip(), default, ", ".join(ranges)


def table(tool: str, name: str) -> str:
    """One row per option, from the help record `--help` prints: the option and its value, the default, the help."""
    found = command(tool, name)
    context = found.make_context(name, [], resilient_parsing=True)
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for param in found.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        spelled, help_text = param.get_help_record(context)
        meaning, default, accepted = _split_help(help_text)
        if accepted:
            meaning = f"{meaning} ({accepted})".lstrip()
        cells = [f"`{spelled}`", default, meaning]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def render(readme: str) -> str:
    return _MARKER.sub(lambda match: match.group(1) + table(match.group(2), match.group(3)) + match.group(5), readme)


def marked_tables(readme: str) -> set[tuple[str, str]]:
    return {(match.group(2), match.group(3)) for match in _MARKER.finditer(readme)}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/option_tables.py --write")
    README.write_text(render(README.read_text()))
