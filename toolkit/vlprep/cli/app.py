"""`vlprep`: lint and pre-tokenize Qwen3-VL fine-tuning data for ms-swift.

One module per command (vlprep.cli.lint, .cache, ...); this one assembles them. Every command runs through
vlprep.cli.errors.reported, the one place errors become messages and exit codes (vlprep.errors documents the codes).
Commands import their heavy parts (the cache build, stats) inside the function, so `vlprep lint --fast` never loads them.
"""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.console import Console

from vlprep import __version__
from vlprep.cli import cache, inspect, lint, report, rules, show, stats
from vlprep.cli.errors import reported

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers are processes; no tokenizer threads across fork

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Find bad Qwen3-VL training records before the GPU does, and pre-tokenize the good ones.")


def show_version(value: bool) -> None:
    if value:
        Console().print(f"vlprep {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[Optional[bool], typer.Option("--version", callback=show_version, is_eager=True, metavar="",
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Find bad Qwen3-VL training records before the GPU does, and pre-tokenize the good ones."""


for command in (lint.lint, cache.cache, inspect.inspect, rules.rules, stats.stats, show.show, report.report):
    app.command()(reported(command))


def main() -> None:
    app()
