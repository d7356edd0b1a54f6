"""`vlprep stats`: what training will get, from a cache or from input files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from vlprep.checks.images import ImageLimits
from vlprep.cli.errors import announce
from vlprep.cli.formats import DocumentFormat
from vlprep.cli.options import (BatchSize, Epochs, Fps, FpsMaxFrames, FpsMinFrames, Gpus, GradAccum, ImageMinTokens,
                                ImageRoot, MaxRatio, Family, Model, PackingLength, PackingNumProc, PackingStrategy, Strategy,
                                TrustRemoteCode, VideoMaxTokens, VideoMinTokens, WhatIf, Workers, count_settings,
                                parse_what_if, video_settings, model_or_family)
from vlprep.counting.settings import CountSettings, VideoSettings
from vlprep.inputs.discovery import check_inputs
from vlprep.insight.mixture import collect_mixture, is_mixture
from vlprep.run.engine import default_workers


def collect_for_stats(target: list[Path], model: Optional[str], trust_remote_code: bool, settings: CountSettings,
                      max_length: Optional[int], workers: int, image_root: Optional[Path], with_sizes: bool):  # type: ignore[no-untyped-def]
    """A cache folder (its train split) or JSONL files (header-only counting)."""
    from vlprep.counting.counter import counter_for_model
    from vlprep.insight.stats import collect_cache, collect_jsonl

    if len(target) == 1 and target[0].is_dir():
        collected = collect_cache(target[0], with_sizes, workers)
        if max_length is not None:
            collected.max_length = max_length
        return collected
    files = check_inputs(target, "stats", announce)
    counter = counter_for_model(model, trust_remote_code, settings)
    collected = collect_jsonl(files, counter, workers, image_root.resolve() if image_root else None)
    collected.max_length = max_length
    return collected


def stats(
    target: Annotated[list[Path], typer.Argument(help="A cache folder (made by `vlprep cache`), several (a mixture, "
                                                      "each DIR or DIR#N for N rows, as ms-swift samples them) or "
                                                      "JSONL file(s).", show_default=False)],
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json.")] = DocumentFormat.text,
    packing_length: PackingLength = None,
    packing_strategy: Strategy = PackingStrategy.binpack,
    packing_num_proc: PackingNumProc = 1,
    batch_size: BatchSize = 1,
    grad_accum: GradAccum = 1,
    gpus: Gpus = 1,
    epochs: Epochs = 1.0,
    data_seed: Annotated[int, typer.Option("--data-seed", help="ms-swift's data_seed: the random state a mixture's "
                                                               "DIR#N sources are sampled with (vltrain fit passes "
                                                               "its --seed).")] = 42,
    max_length: Annotated[Optional[int], typer.Option(
        "--max-length", min=1, help="Rows longer are dropped before packing (ms-swift's truncation_strategy delete) "
                                    "[default: the cache's].")] = None,
    image_max_tokens: WhatIf = None,
    image_min_tokens: ImageMinTokens = CountSettings.image_min_tokens,
    max_ratio: MaxRatio = ImageLimits.max_ratio,
    fps: Fps = VideoSettings.fps,
    fps_min_frames: FpsMinFrames = VideoSettings.fps_min_frames,
    fps_max_frames: FpsMaxFrames = VideoSettings.fps_max_frames,
    video_min_tokens: VideoMinTokens = VideoSettings.video_min_tokens,
    video_max_tokens: VideoMaxTokens = VideoSettings.video_max_tokens,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the plots (lengths, pack fill, pixel-limit "
                                                               "what-if) to this PNG.")] = None,
    model: Model = None,
    family: Family = None,
    trust_remote_code: TrustRemoteCode = False,
    image_root: ImageRoot = None,
    workers: Workers = default_workers(),
) -> None:
    """What training will get: tokens, lengths, image/text/trained shares, turns, rejects, and ms-swift's exact
    packing plan (computed by ms-swift's own packing code), with steps per epoch.

    On a cache it reads the train split (counted with the cache's settings); on JSONL it counts from image headers and
    writes nothing (default pixel limits). --image-max-tokens adds a what-if column per value.

    Example: [bold]vlprep stats arrow/ --batch-size 2 --grad-accum 8 --gpus 8 --image-max-tokens 1024,4096,16384[/]
    """
    model = model_or_family(model, family)
    from vlprep.insight.packing import TrainingShape
    from vlprep.insight.stats import stats_document

    what_if_values = parse_what_if(image_max_tokens)
    settings = count_settings(None, image_min_tokens, None, max_ratio,
                              video_settings(fps, fps_min_frames, fps_max_frames, video_min_tokens, video_max_tokens))
    with_sizes = bool(what_if_values) or plot is not None
    sources = None
    if is_mixture(target):  # several caches: the rows ms-swift draws from each, concatenated in order
        collected, sources = collect_mixture(target, with_sizes, workers, max_length, data_seed)
    else:
        collected = collect_for_stats(target, model, trust_remote_code, settings, max_length, workers, image_root,
                                      with_sizes)
    shape = TrainingShape(batch_size=batch_size, grad_accum=grad_accum, gpus=gpus, epochs=epochs)
    doc = stats_document(collected, packing_length, packing_strategy.value, shape, packing_num_proc, what_if_values)
    if sources is not None:
        doc["mixture"] = {"data_seed": data_seed, "sources": sources}
        doc["packing"]["dropped_over_max_length"] = sum(item["dropped_over_max_length"] for item in sources)
    if plot is not None:
        from vlprep.insight.plots import write_plots

        write_plots(collected, doc, plot)
    if output_format is DocumentFormat.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from vlprep.insight.stats_text import print_stats

    print_stats(doc, Console(soft_wrap=True))
    if plot is not None:
        Console(soft_wrap=True).print(f"plots: {plot}")
