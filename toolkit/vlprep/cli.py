"""`vlprep`: lint and pre-tokenize Qwen3-VL fine-tuning data for ms-swift.

Exit codes: 0 clean, 1 problems at or above --fail-on (lint) or rejected records (cache, with --strict), 2 usage errors.
"""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from vlprep.checks.images import ImageLimits
from vlprep.engine import MAX_LINE_BYTES_DEFAULT, default_workers, run
from vlprep.lint import Tally, lint_results
from vlprep.pipeline import PipelineOptions
from vlprep.progress import with_progress
from vlprep.reader import count_lines
from vlprep.report import make_writer
from vlprep.rules import RULES, Severity, select_codes

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Find bad Qwen3-VL training records before the GPU does, and pre-tokenize the good ones.")
err = Console(stderr=True)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"


def usage_error(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def check_inputs(files: list[Path]) -> list[Path]:
    for file in files:
        if not file.is_file():
            raise usage_error(f"{file}: no such file")
    return files


def active_rules(select: Optional[list[str]], ignore: Optional[list[str]]) -> frozenset[str]:
    split = lambda values: [code for value in values or [] for code in value.split(",") if code]  # noqa: E731
    try:
        return select_codes(split(select), split(ignore))
    except ValueError as error:
        raise usage_error(str(error)) from None


Files = Annotated[list[Path], typer.Argument(help="JSONL files (one record per line).", show_default=False)]
ImageRoot = Annotated[Optional[Path], typer.Option(
    "--image-root", help="Resolve relative image paths here (default: each JSONL file's folder); "
                         "images resolving outside it (symlinks followed) are refused.")]
Fast = Annotated[bool, typer.Option("--fast", help="Check images from their headers only (no full decode).")]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes (default: all cores).")]
MaxImagePixels = Annotated[int, typer.Option("--max-image-pixels", min=1,
                                             help="Larger images are reported (I005) and never decoded.")]
MaxRatio = Annotated[float, typer.Option("--max-ratio", min=1.0, help="Largest aspect ratio (ms-swift's MAX_RATIO).")]
MaxImages = Annotated[int, typer.Option("--max-images", min=1, help="Most images per record (L002).")]
MaxLineBytes = Annotated[int, typer.Option("--max-line-bytes", min=1024, help="Longer lines are rejected unread (J006).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def pipeline_options(image_root: Optional[Path], fast: bool, max_image_pixels: int, max_ratio: float,
                     max_images: int, **extra: object) -> PipelineOptions:
    if image_root is not None and not image_root.is_dir():
        raise usage_error(f"--image-root {image_root}: not a directory")
    limits = ImageLimits(max_pixels=max_image_pixels, max_ratio=max_ratio, full_decode=not fast)
    return PipelineOptions(image_root=image_root.resolve() if image_root else None, limits=limits,
                           max_images=max_images, **extra)  # type: ignore[arg-type]


@app.command()
def lint(
    files: Files,
    image_root: ImageRoot = None,
    fast: Fast = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
    select: Annotated[Optional[list[str]], typer.Option(help="Only these rule codes or prefixes (e.g. I,M001).")] = None,
    ignore: Annotated[Optional[list[str]], typer.Option(help="Skip these rule codes or prefixes.")] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Exit 1 when a problem this severe is found.")
                       ] = FailOn.error,
    workers: Workers = default_workers(),
    max_image_pixels: MaxImagePixels = ImageLimits.max_pixels,
    max_ratio: MaxRatio = ImageLimits.max_ratio,
    max_images: MaxImages = 64,
    max_line_bytes: MaxLineBytes = MAX_LINE_BYTES_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Check every record: JSON, structure, roles, media tags, control tokens, images (decoded), duplicates.

    Example: [bold]vlprep lint data.jsonl --format json > report.json[/]
    """
    files = check_inputs(files)
    active = active_rules(select, ignore)
    options = pipeline_options(image_root, fast, max_image_pixels, max_ratio, max_images)
    total = sum(count_lines(file) for file in files)
    started = time.perf_counter()
    tally = Tally(active)
    writer = make_writer(output_format.value)
    results = with_progress(run(files, options, workers, max_line_bytes), total, "lint", enabled=not quiet)
    for diagnostic in lint_results(results, tally):
        writer.add(diagnostic)
    writer.finish(tally, time.perf_counter() - started)
    raise typer.Exit(1 if tally.fails(Severity(fail_on.value)) else 0)


@app.command()
def rules(
    output_format: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = OutputFormat.text,
) -> None:
    """List every rule: code, name, default severity and what it means."""
    if output_format is OutputFormat.json:
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


def main() -> None:
    app()
