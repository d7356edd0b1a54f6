"""`vlprep report`: one self-contained HTML page about a cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from vlprep.cli.options import (BatchSize, Epochs, Gpus, GradAccum, PackingLength, PackingStrategy, Strategy,
                                Workers)
from vlprep.errors import UsageError
from vlprep.run.engine import default_workers


def report(
    cache_dir: Annotated[Path, typer.Argument(help="A folder made by `vlprep cache`.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")],
    samples: Annotated[int, typer.Option("--samples", min=0, help="Records shown with their token/label view.")] = 3,
    packing_length: PackingLength = None,
    packing_strategy: Strategy = PackingStrategy.binpack,
    batch_size: BatchSize = 1,
    grad_accum: GradAccum = 1,
    gpus: Gpus = 1,
    epochs: Epochs = 1.0,
    workers: Workers = default_workers(),
    run: Annotated[Optional[Path], typer.Option(
        "--run", help="A `vltrain fit` output folder: its curves.png (loss, learning rate, tokens/s) is embedded.")
                   ] = None,
) -> None:
    """One self-contained HTML page about a cache (inline CSS, images as data URIs, no network): the manifest,
    rejects by rule with examples, the plots, the packing plan, and sample records with thumbnails and tokens.

    Example: [bold]vlprep report arrow/ --out report.html[/]
    """
    from vlprep.insight.packing import TrainingShape
    from vlprep.insight.plots import render_png
    from vlprep.insight.report_html import render_report
    from vlprep.insight.show import locate_in_cache, record_view
    from vlprep.counting.counter import counter_for_manifest
    from vlprep.insight.stats import collect_cache, stats_document

    if not cache_dir.is_dir():
        raise UsageError(f"{cache_dir}: not a folder made by `vlprep cache`")
    curves = None
    if run is not None:
        if not (run / "curves.png").is_file():
            raise UsageError(f"--run {run}: no curves.png (a `vltrain fit` output folder writes one at each save)")
        curves = (run / "curves.png").read_bytes()
    collected = collect_cache(cache_dir, with_sizes=True, workers=workers)
    shape = TrainingShape(batch_size=batch_size, grad_accum=grad_accum, gpus=gpus, epochs=epochs)
    doc = stats_document(collected, packing_length, packing_strategy.value, shape)
    counter = counter_for_manifest(collected.manifest or {})
    shown = []
    for row in range(min(samples, len(collected.rows))):
        located, _ = locate_in_cache(cache_dir, row, "train")
        shown.append((record_view(counter, located), located.image_refs))
    page = render_report(str(cache_dir), collected.manifest or {}, doc, render_png(collected, doc), shown, curves)
    out.write_text(page, encoding="utf-8")
    Console(soft_wrap=True).print(f"{out}: {len(page) / 1024:,.0f} KiB, {len(shown)} sample record(s)")
