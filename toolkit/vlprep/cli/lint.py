"""`vlprep lint`: every record checked, each problem with its rule code and position."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from vlprep.checks.images import ImageLimits
from vlprep.cli.errors import announce
from vlprep.cli.options import (Engine, EngineOption, FailOn, Fast, Files, Fps, FpsMaxFrames, FpsMinFrames, ImageMaxTokens,
                                ImageMinTokens, ImageRoot, ImageTimeout, MaxImagePixels, MaxImages, MaxLength,
                                MaxLineBytes, MaxPixels, MaxRatio, Family, Model, NearDistance, OutputFormat, Quiet, RayAddress,
                                TrustRemoteCode, VideoMaxTokens, VideoMinTokens, VideoTimeout, Workers, active_rules,
                                count_settings, embedded_fallback, engine_choice, pipeline_options, refuse_flag_values,
                                video_settings, model_or_family)
from vlprep.counting.settings import CountSettings, VideoSettings
from vlprep.errors import ProcessorError
from vlprep.inputs.discovery import check_inputs
from vlprep.inputs.formats import open_source
from vlprep.inputs.streams import is_stdin
from vlprep.lint.report import make_writer
from vlprep.lint.pictures import DEFAULT_NEAR_DISTANCE, PictureIndex
from vlprep.lint.tally import Tally, lint_results
from vlprep.records.rules import Severity
from vlprep.run.engine import MAX_LINE_BYTES_DEFAULT, default_workers, run_on
from vlprep.run.pipeline import PipelineOptions
from vlprep.run.progress import with_progress

if TYPE_CHECKING:  # the tokenizers load only when lint counts (--max-length)
    from vlprep.counting.tokens import TokenCounter


def lint(
    files: Files,
    image_root: ImageRoot = None,
    fast: Fast = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.text,
    select: Annotated[Optional[list[str]], typer.Option(help="Only these rule codes or prefixes (e.g. I,M001).")] = None,
    ignore: Annotated[Optional[list[str]], typer.Option(help="Skip these rule codes or prefixes.")] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Exit 1 when a problem this severe is found.")
                       ] = FailOn.error,
    show_all: Annotated[bool, typer.Option("--show-all", metavar="", help="Text output: every problem, not the first "
                                                                          "5 per rule (all are kept in memory).")
                        ] = False,
    workers: Workers = default_workers(),
    max_image_pixels: MaxImagePixels = ImageLimits.max_pixels,
    max_ratio: MaxRatio = ImageLimits.max_ratio,
    max_images: MaxImages = 64,
    max_line_bytes: MaxLineBytes = MAX_LINE_BYTES_DEFAULT,
    image_timeout: ImageTimeout = PipelineOptions.image_timeout_s,
    video_timeout: VideoTimeout = PipelineOptions.video_timeout_s,
    near_distance: NearDistance = DEFAULT_NEAR_DISTANCE,
    max_length: MaxLength = None,
    model: Model = None,
    family: Family = None,
    trust_remote_code: TrustRemoteCode = False,
    image_max_tokens: ImageMaxTokens = None,
    image_min_tokens: ImageMinTokens = CountSettings.image_min_tokens,
    max_pixels: MaxPixels = None,
    fps: Fps = VideoSettings.fps,
    fps_min_frames: FpsMinFrames = VideoSettings.fps_min_frames,
    fps_max_frames: FpsMaxFrames = VideoSettings.fps_max_frames,
    video_min_tokens: VideoMinTokens = VideoSettings.video_min_tokens,
    video_max_tokens: VideoMaxTokens = VideoSettings.video_max_tokens,
    engine: EngineOption = Engine.local,
    ray_address: RayAddress = None,
    quiet: Quiet = False,
) -> None:
    """Check every record: JSON, structure, roles, media tags, control tokens, images (decoded), duplicates, and with
    --max-length the token length training will see (image tokens included).

    Example: [bold]vlprep lint data.jsonl --max-length 4096 --format json > report.json[/]
    """
    model = model_or_family(model, family)
    refuse_flag_values(files)
    files = check_inputs(files, "lint", announce)
    engine_name, ray_address = engine_choice(engine, ray_address)
    active = active_rules(select, ignore)
    video = video_settings(fps, fps_min_frames, fps_max_frames, video_min_tokens, video_max_tokens)
    settings = count_settings(image_max_tokens, image_min_tokens, max_pixels, max_ratio, video)
    options = pipeline_options(image_root, fast, max_image_pixels, max_ratio, max_images, image_timeout, video,
                               video_timeout, max_length=max_length)
    counter = load_counter(model, trust_remote_code, settings) if max_length else None
    reads_stdin = any(is_stdin(file) for file in files)  # read once, as it comes: no total for the progress bar
    total = None if reads_stdin else sum(open_source(file, max_line_bytes).count() for file in files)
    started = time.perf_counter()
    tally = Tally(active, pictures=PictureIndex(near_distance))
    writer = make_writer(output_format.value, show_all)
    stream = run_on(engine_name, ray_address, files, options, workers, max_line_bytes,
                    counter_factory=(lambda: counter) if counter else None)
    results = with_progress(stream, total, "lint", enabled=not quiet)
    for diagnostic in lint_results(results, tally):
        writer.add(diagnostic)
    writer.finish(tally, time.perf_counter() - started)
    raise typer.Exit(1 if tally.fails(Severity(fail_on.value)) else 0)


def load_counter(model: Optional[str], trust_remote_code: bool, settings: CountSettings) -> TokenCounter:
    """The counter, imported lazily: plain lint counts nothing (vlprep.counting.counter imports the tokenizers)."""
    from vlprep.counting.counter import counter_for_model

    try:
        return counter_for_model(model, trust_remote_code, settings)
    except ProcessorError as error:
        raise embedded_fallback(error, model) from None
