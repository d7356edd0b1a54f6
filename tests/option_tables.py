"""docs/cli.md, the command reference, generated from the CLIs themselves: every command of the `vlprep` and `vltrain`
Typer apps (enumerated from the apps, so a new command appears when the file is regenerated), with its help text, its
arguments and one row per option.

`python tests/option_tables.py --write` rewrites docs/cli.md; tests/test_first_hour.py fails when it differs from what
this generates.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
_TRAILING_BRACKET = re.compile(r"\s*\\?\[([^\[\]]*)\]\s*$")
_BOLD = re.compile(r"\[bold\](.*?)\[/\]")
_HEADER = """# Command reference

Generated from each command's `--help` by `python tests/option_tables.py --write`; a test fails when this file
differs from what the commands say (`tests/test_first_hour.py`). Exit codes are the same for every command: see the
README.
"""


def commands() -> Iterator[tuple[str, str, Any]]:
    """(tool, command name, the click command typer builds) for every command of both apps, in registration order
    (typer vendors its own click: duck-typed here)."""
    from vlprep.cli.app import app as vlprep_app
    from vltrain.cli import app as vltrain_app

    for tool, app in (("vlprep", vlprep_app), ("vltrain", vltrain_app)):
        for name, found in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
            yield tool, name, found


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


def _markdown(text: str) -> str:
    """Help text as Markdown prose: `*` outside code spans is escaped (`*.jsonl, *.json` is no emphasis)."""
    return "`".join(part if inside % 2 else part.replace("*", "\\*") for inside, part in enumerate(text.split("`")))


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _description(help_text: str) -> str:
    """The command's docstring as Markdown paragraphs: rich's [bold]...[/] becomes code, wrapped lines are joined."""
    paragraphs = [" ".join(paragraph.split()) for paragraph in (help_text or "").split("\n\n") if paragraph.strip()]
    return "\n\n".join(_BOLD.sub(lambda match: f"`{match.group(1)}`", paragraph) for paragraph in paragraphs)


def table(found: Any, name: str) -> str:
    """The arguments, then one row per option, from the help records `--help` prints: the option and its value, the
    default, the help."""
    context = found.make_context(name, [], resilient_parsing=True)
    arguments, options = [], ["| option | default | meaning |", "|---|---|---|"]
    for param in found.params:
        if param.param_type_name == "argument":
            spelled, help_text = param.get_help_record(context)
            meaning, _, accepted = _split_help(help_text)
            arguments.append(f"- `{spelled}`: {_markdown(meaning)}" + (f" ({accepted})" if accepted else ""))
        elif param.param_type_name == "option" and param.name != "help":
            spelled, help_text = param.get_help_record(context)
            meaning, default, accepted = _split_help(help_text)
            if accepted:
                meaning = f"{meaning} ({accepted})".lstrip()
            options.append(_row([f"`{spelled}`", default, _markdown(meaning)]))
    parts = ["Arguments:", "", *arguments, ""] if arguments else []
    parts += options if len(options) > 2 else ["No options."]
    return "\n".join(parts) + "\n"


def render() -> str:
    """The whole of docs/cli.md."""
    found_commands = list(commands())
    contents = [f"- [`{tool} {name}`](#{tool}-{name})" for tool, name, _ in found_commands]
    sections = [_HEADER, "\n".join(contents) + "\n"]
    for tool, name, found in found_commands:
        sections.append(f"## {tool} {name}\n\n{_description(found.help)}\n\n{table(found, name)}")
    return "\n".join(sections)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/option_tables.py --write")
    CLI_DOC.write_text(render())
