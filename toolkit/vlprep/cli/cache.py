"""`vlprep cache`: the Arrow cache ms-swift's --cached_dataset reads, every input line accounted for."""

from __future__ import annotations

import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from vlprep.cache.manifest import partial_dir
from vlprep.cache.split import describe_split
from vlprep.checks.images import ImageLimits
from vlprep.cli.errors import announce, err
from vlprep.cli.formats import DocumentFormat
from vlprep.cli.options import (Engine, EngineOption, Fast, Files, Fps, FpsMaxFrames, FpsMinFrames, ImageMaxTokens,
                                ImageMinTokens, ImageRoot, ImageTimeout, MaxImagePixels, MaxImages, MaxLength,
                                MaxLineBytes, MaxPixels, MaxRatio, Family, Model, NearDistance, Quiet, RayAddress,
                                TrustRemoteCode, VideoMaxTokens, VideoMinTokens, VideoTimeout, Workers, count_settings,
                                embedded_fallback, engine_choice, parse_verify, pipeline_options, refuse_flag_values,
                                video_settings, model_or_family)
from vlprep.counting.settings import CountSettings, VideoSettings
from vlprep.errors import EXIT_INTERRUPTED, ProblemsFound, ProcessorError, Terminated, UsageError, machine_fault
from vlprep.inputs.discovery import check_inputs
from vlprep.lint.pictures import DEFAULT_NEAR_DISTANCE
from vlprep.records.rules import RULES
from vlprep.run.engine import MAX_LINE_BYTES_DEFAULT, default_workers
from vlprep.run.pipeline import PipelineOptions
from vlprep.run.progress import StatusLine, with_progress


class SplitBy(str, Enum):
    picture = "picture"
    record = "record"


def cache(
    files: Files,
    out: Annotated[Path, typer.Option("--out", "-o", help="Cache folder to create (train/, val/, rejects.jsonl, manifest.json).")],
    val: Annotated[Optional[list[Path]], typer.Option("--val", help="Validation JSONL file(s) (instead of --val-ratio).")] = None,
    val_ratio: Annotated[float, typer.Option("--val-ratio", min=0.0, max=1.0, help="Fraction of records for val.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the val split and the verification sample.")] = 42,
    split_by: Annotated[SplitBy, typer.Option(
        "--split-by", help="picture: records sharing a picture group (near-duplicate pictures, transitively) land on "
                           "one side of --val-ratio's split; record: each record on its own (the old split).")
                        ] = SplitBy.picture,
    near_distance: NearDistance = DEFAULT_NEAR_DISTANCE,
    model: Model = None,
    family: Family = None,
    trust_remote_code: TrustRemoteCode = False,
    image_max_tokens: ImageMaxTokens = None,
    image_min_tokens: ImageMinTokens = CountSettings.image_min_tokens,
    max_pixels: MaxPixels = None,
    max_ratio: MaxRatio = ImageLimits.max_ratio,
    fps: Fps = VideoSettings.fps,
    fps_min_frames: FpsMinFrames = VideoSettings.fps_min_frames,
    fps_max_frames: FpsMaxFrames = VideoSettings.fps_max_frames,
    video_min_tokens: VideoMinTokens = VideoSettings.video_min_tokens,
    video_max_tokens: VideoMaxTokens = VideoSettings.video_max_tokens,
    max_length: MaxLength = None,
    embed_images: Annotated[bool, typer.Option("--embed-images", metavar="", help="Store image bytes in the cache (portable).")] = False,
    verify: Annotated[str, typer.Option(
        "--verify", help="Records ms-swift re-encodes from their original lines: N at random plus the cheapest record of "
                         "every record shape the random ones miss; 0 for none, or all.")] = "16",
    image_root: ImageRoot = None,
    fast: Fast = False,
    workers: Workers = default_workers(),
    max_image_pixels: MaxImagePixels = ImageLimits.max_pixels,
    max_images: MaxImages = 64,
    max_line_bytes: MaxLineBytes = MAX_LINE_BYTES_DEFAULT,
    image_timeout: ImageTimeout = PipelineOptions.image_timeout_s,
    video_timeout: VideoTimeout = PipelineOptions.video_timeout_s,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Replace an existing vlprep cache at --out.")
                     ] = False,
    resume: Annotated[bool, typer.Option("--resume", metavar="", help="Continue an interrupted build (same command) from its "
                                                          "last complete shard.")] = False,
    shard_lines: Annotated[int, typer.Option("--shard-lines", min=1, help="Input lines per shard (resume granularity).")
                           ] = 10_000,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json (the manifest).")
                             ] = DocumentFormat.text,
    engine: EngineOption = Engine.local,
    ray_address: RayAddress = None,
    quiet: Quiet = False,
) -> None:
    """Lint, pre-tokenize and write an Arrow cache for ms-swift's --cached_dataset (DIR/train, DIR/val).

    Records with errors never enter the cache: DIR/rejects.jsonl holds each rejected line with its rule codes.
    Exit 0 when every line was cached, 1 when some were rejected or verification failed, 2 on usage errors.

    Example: [bold]vlprep cache data.jsonl --out arrow/ --val-ratio 0.02 --max-length 4096[/]
    """
    model = model_or_family(model, family)
    from vlprep.cache.build import ENCODER_LOG, CacheRequest, build_cache  # lazy: see vlprep.cli.app
    from vlprep.cache.swift_oracle import OracleExited

    refuse_flag_values(files)
    files = check_inputs(files, "cache", announce)
    val_files = check_inputs(val or [], "cache", announce)
    engine_name, ray_address = engine_choice(engine, ray_address)
    if val_files and val_ratio:
        raise UsageError("give --val FILE or --val-ratio, not both")
    video = video_settings(fps, fps_min_frames, fps_max_frames, video_min_tokens, video_max_tokens)
    settings = count_settings(image_max_tokens, image_min_tokens, max_pixels, max_ratio, video)
    request = CacheRequest(
        train_files=files, val_files=val_files, out=out, val_ratio=val_ratio, seed=seed, split_by=split_by.value,
        near_distance=near_distance, model=model,
        trust_remote_code=trust_remote_code, settings=settings,
        pipeline=pipeline_options(image_root, fast, max_image_pixels, max_ratio, max_images, image_timeout, video,
                                  video_timeout),
        max_length=max_length, embed_images=embed_images, verify=parse_verify(verify), workers=workers, force=force,
        resume=resume, shard_lines=shard_lines, max_line_bytes=max_line_bytes, engine=engine_name,
        ray_address=ray_address)
    status = StatusLine(enabled=not quiet, plain=output_format is DocumentFormat.text)

    def progress(items: Any, total: int, done: int) -> Any:
        status.stop()  # the bar takes over the line
        return with_progress(items, total, "cache", completed=done, enabled=not quiet)

    try:
        outcome = build_cache(request, progress, status)
    except ProcessorError as error:
        raise embedded_fallback(error, model) from None
    except OracleExited as exited:
        log = partial_dir(out) / ENCODER_LOG
        raise ProblemsFound(f"the ms-swift encoder that verifies the sample exited with code {exited.code}: "
                            f"{exited.cause}\n  Its full output: {log}. No cache was written to {out}; the records "
                            "checked so far are kept: after fixing the cause, run the same command again with "
                            "--resume.") from None
    except KeyboardInterrupt as stopped:  # Ctrl-C, or SIGTERM/SIGHUP (vlprep.cli.errors.stop_signals_as_interrupts)
        how = f"stopped by {signal.Signals(stopped.signum).name}" if isinstance(stopped, Terminated) else "interrupted"
        err.print(f"[yellow]{how}: no cache was written to {out}. " + _how_to_continue(out) + "[/]", highlight=False)
        raise typer.Exit(128 + stopped.signum if isinstance(stopped, Terminated) else EXIT_INTERRUPTED) from None
    except OSError as error:  # a fault of the machine: the partial build stays (vlprep.cache.build)
        raise machine_fault(error, f"No cache was written to {out}. {_how_to_continue(out, 'after that')}") from None
    finally:
        status.stop()
    manifest = outcome.manifest
    counts = manifest["counts"]
    if output_format is DocumentFormat.json:
        sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
    else:
        console = Console(soft_wrap=True)
        console.print(f"[bold]{out}[/]: {counts['train']:,} train, {counts['val']:,} val, "
                      f"{counts['rejected']:,} rejected = {counts['input_lines']:,} input lines")
        if (split_line := describe_split(manifest["split"])) and request.val_ratio:
            console.print(f"  {split_line}")
        for split, stats in manifest["lengths"].items():
            if stats["records"]:
                console.print(f"  {split} lengths: min {stats['min']:,}, mean {stats['mean']:,}, p95 {stats['p95']:,}, "
                              f"max {stats['max']:,} ({stats['tokens']:,} tokens)")
        checked = manifest["verification"]["ms_swift_template"]["records_checked"]
        console.print(f"  verified: image-pad counts for every record; {checked} record(s) re-encoded by ms-swift, "
                      "0 mismatches")
        for code, count in manifest["rejects_by_code"].items():
            console.print(f"  rejected {code} {RULES[code].name}: {count:,}  (see {out / 'rejects.jsonl'})")
        print_cached_notes(console, manifest)
    raise typer.Exit(1 if counts["rejected"] else 0)


def _how_to_continue(out: Path, when: str = "") -> str:
    """Whether --resume continues the build at `out`: it does once the build saved its first state."""
    if (partial_dir(out) / "state.pkl").is_file():
        return (f"To continue from the last complete shard, {when + ', ' if when else ''}run the same command again "
                "with --resume.")
    return f"It stopped before the build began; {when + ', ' if when else ''}run the same command again."


def print_cached_notes(console: Console, manifest: dict[str, Any]) -> None:
    """What was cached but deserves a look: records with warnings, and (without --max-length) very long ones."""
    warned = manifest["cached_with_warnings"]
    if warned:
        console.print("  cached with warnings: " + ", ".join(f"{code} {RULES[code].name} {count:,}"
                                                            for code, count in warned.items())
                      + " record(s)  (their lines: `vlprep lint` on the input)")
    long = manifest["long_records"]
    if long and long["count"]:
        longest = long["longest"]
        console.print(f"  long records: {long['count']:,} over {long['over']:,} tokens; the longest is "
                      f"{longest['length']:,} tokens at {escape(longest['file'])}:{longest['line']}  (no --max-length "
                      "was given: training keeps them; --max-length N or a smaller --image-max-tokens bounds them)",
                      highlight=False)
