"""`vlprep show`: one record as training sees it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from vlprep.checks.images import ImageLimits
from vlprep.cli.errors import announce
from vlprep.cli.formats import DocumentFormat
from vlprep.cli.options import (ImageMaxTokens, ImageMinTokens, ImageRoot, MaxRatio, Family, Model, TrustRemoteCode,
                                count_settings, model_or_family)
from vlprep.counting.settings import CountSettings
from vlprep.errors import UsageError
from vlprep.inputs.discovery import check_inputs


def show(
    target: Annotated[str, typer.Argument(help="A cache folder (with --row), or FILE.jsonl:LINE.", show_default=False)],
    row: Annotated[int, typer.Option("--row", min=0, help="Row of the cache split (from 0).")] = 0,
    split: Annotated[str, typer.Option("--split", help="Cache split: train or val.")] = "train",
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json (ids, labels, spans).")
                             ] = DocumentFormat.text,
    model: Model = None,
    family: Family = None,
    trust_remote_code: TrustRemoteCode = False,
    image_min_tokens: ImageMinTokens = CountSettings.image_min_tokens,
    image_max_tokens: ImageMaxTokens = None,
    max_ratio: MaxRatio = ImageLimits.max_ratio,
    image_root: ImageRoot = None,
) -> None:
    """One record as training sees it: every token decoded, trained tokens (label != -100) marked, each image one
    marker with its token count and grid, tokens per turn. The labels are ms-swift's template labels.

    A cache row is counted with the cache's settings; a JSONL line with the pixel-limit options.

    Example: [bold]vlprep show arrow/ --row 3[/]   [bold]vlprep show data.jsonl:17 --format json[/]
    """
    model = model_or_family(model, family)
    from vlprep.insight.show import locate_in_cache, locate_in_jsonl, parse_target, print_view, record_view
    from vlprep.counting.counter import counter_for_manifest, counter_for_model

    path, line = parse_target(target)
    if path.is_dir():
        if split not in ("train", "val"):
            raise UsageError(f"--split {split!r}: train or val")
        located, manifest = locate_in_cache(path, row, split)
        counter = counter_for_manifest(manifest)
    else:
        if row:
            raise UsageError("--row selects a row of a cache folder; for a JSONL file give FILE:LINE")
        file = check_inputs([path], "show", announce)[0]
        settings = count_settings(image_max_tokens, image_min_tokens, None, max_ratio)
        counter = counter_for_model(model, trust_remote_code, settings)
        located = locate_in_jsonl(file, line or 1, counter, image_root.resolve() if image_root else None)
    view = record_view(counter, located)
    if output_format is DocumentFormat.json:
        sys.stdout.write(json.dumps(view) + "\n")
        return
    print_view(view, Console(soft_wrap=True), counter.settings.family)
