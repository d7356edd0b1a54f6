"""`vlprep`: lint and pre-tokenize Qwen3-VL fine-tuning data for ms-swift.

Exit codes: 0 clean, 1 problems at or above --fail-on (lint) or rejected records (cache, with --strict), 2 usage errors.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlprep.checks.images import ImageLimits
from vlprep.engine import MAX_LINE_BYTES_DEFAULT, default_workers, run_on
from vlprep.lint import Tally, lint_results
from vlprep.output_formats import DocumentFormat
from vlprep.pipeline import PipelineOptions
from vlprep import __version__
from vlprep.inputs import is_stdin
from vlprep.image_staleness import ImagesMode
from vlprep.progress import StatusLine, with_progress
from vlprep.ray_engine import RayUnavailable, check_reachable, import_ray
from vlprep.reader import count_lines
from vlprep.report import make_writer
from vlprep.rules import RULES, Severity, select_codes
from vlprep.settings import FACTOR, CountSettings, VideoSettings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers are processes; no tokenizer threads across fork

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Find bad Qwen3-VL training records before the GPU does, and pre-tokenize the good ones.")
err = Console(stderr=True)


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


_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def refuse_flag_values(files: list[Path]) -> None:
    """`--fast true`: the flag takes no value, so `true` would be read as an input file; say so instead."""
    for file in files:
        if str(file).lower() in _BOOLEAN_WORDS and not file.exists():
            raise usage_error(f"{str(file)!r} was read as an input file: on/off options such as --fast, --quiet, "
                              f"--embed-images take no value (write --fast, not --fast {file})")


DATA_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst", ".parquet")
_LISTED_NAMES = 10


def saved_dataset_files(folder: Path) -> list[Path] | None:
    """The Arrow files of a `datasets` `save_to_disk` folder, in the dataset's order (None: not such a folder)."""
    splits = folder / "dataset_dict.json"
    if splits.is_file():
        try:
            names = json.loads(splits.read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError):
            names = []
        raise usage_error(f"{folder}: a `datasets` DatasetDict with splits {', '.join(map(str, names)) or '?'}; pass "
                          f"one split's folder (e.g. {folder / str(names[0] if names else 'train')})")
    state = folder / "state.json"
    if not state.is_file():
        return None
    try:
        names = [entry["filename"] for entry in json.loads(state.read_text())["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise usage_error(f"{state}: not a readable `datasets` state file ({error})") from None
    files = [folder / name for name in names]
    if missing := [str(file) for file in files if not file.is_file()]:
        raise usage_error(f"{folder}: a `datasets` folder whose data file(s) are missing: {', '.join(missing)}")
    return files


def check_inputs(files: list[Path], command: str) -> list[Path]:
    """The input files: each file as given, `-` for stdin (lint only), a folder for its data files (sorted by name and
    listed on stderr)."""
    inputs: list[Path] = []
    for file in files:
        if is_stdin(file):
            if command != "lint":
                why = ("it reads each input twice (first to count its records and fingerprint it for the manifest and "
                       "--resume, then to cache it)" if command == "cache" else "it reads files, not streams")
                raise usage_error(f"-: vlprep {command} cannot read stdin: {why}; save the data to a file and pass "
                                  "its path")
            if file in inputs:
                raise usage_error("-: stdin given twice")
            inputs.append(file)
        elif file.is_dir() and (saved := saved_dataset_files(file)) is not None:
            inputs.extend(saved)
        elif file.is_dir():
            found = sorted(path for path in file.iterdir() if path.is_file() and path.name.endswith(DATA_SUFFIXES))
            if not found:
                raise usage_error(f"{file}: a folder with no data files (vlprep reads "
                                  f"{', '.join('*' + suffix for suffix in DATA_SUFFIXES)} in it, not in subfolders)")
            names = ", ".join(path.name for path in found[:_LISTED_NAMES])
            more = f" and {len(found) - _LISTED_NAMES} more" if len(found) > _LISTED_NAMES else ""
            err.print(f"{file}: a folder; reading its {len(found)} data file(s) in name order: {names}{more}",
                      highlight=False)
            inputs.extend(found)
        elif not file.is_file():
            raise usage_error(f"{file}: no such file or folder")
        elif not os.access(file, os.R_OK):
            raise usage_error(f"{file}: not readable (permission denied)")
        else:
            inputs.append(file)
    return inputs


def active_rules(select: Optional[list[str]], ignore: Optional[list[str]]) -> frozenset[str]:
    split = lambda values: [code for value in values or [] for code in value.split(",") if code]  # noqa: E731
    try:
        return select_codes(split(select), split(ignore))
    except ValueError as error:
        raise usage_error(str(error)) from None


Files = Annotated[list[Path], typer.Argument(
    help="Data files: JSONL, or a JSON array of records; gzip or zstd compressed or not (detected from the content). "
         "Parquet and `datasets` save_to_disk folders too. A folder stands for its *.jsonl, *.json, *.jsonl.gz, "
         "*.jsonl.zst, *.parquet files.", show_default=False)]
ImageRoot = Annotated[Optional[Path], typer.Option(
    "--image-root", help="Resolve relative image paths here (default: each JSONL file's folder); "
                         "images resolving outside it (symlinks followed) are refused.")]
Fast = Annotated[bool, typer.Option("--fast", metavar="", help="Check images and videos from their headers only (no full decode).")]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, show_default=False,
                                      help="Worker processes (default: all cores).")]
MaxImagePixels = Annotated[int, typer.Option("--max-image-pixels", min=1,
                                             help="Larger images are reported (I005) and never decoded.")]
MaxRatio = Annotated[int, typer.Option(
    "--max-ratio", min=1, max=200,
    help="Largest aspect ratio (ms-swift's MAX_RATIO), an integer as ms-swift reads it. At most 200: qwen-vl-utils' "
         "smart_resize, which vlprep counts with, refuses larger ratios.")]
MaxImages = Annotated[int, typer.Option("--max-images", min=1, help="Most images per record (L002).")]
MaxLineBytes = Annotated[int, typer.Option("--max-line-bytes", min=1024, help="Longer lines are rejected unread (J006).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="No progress bar or status line.")]
ImageTimeout = Annotated[float, typer.Option("--image-timeout", min=0.01,
                                             help="Seconds one image check may take before it is reported (I014).")]
VideoTimeout = Annotated[float, typer.Option(
    "--video-timeout", min=0.01, help="Seconds one video check (header, and the full decode without --fast) may take "
                                      "before it is reported (V014).")]
Model = Annotated[Optional[str], typer.Option(
    "--model", help="Hub id or local directory of a Qwen3-VL model/processor (default: the embedded offline one).")]
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", metavar="",
                                               help="Allow code shipped in the model directory to run (off by default).")]
ImageMaxTokens = Annotated[Optional[int], typer.Option(
    "--image-max-tokens", min=1,
    help=f"ms-swift IMAGE_MAX_TOKEN_NUM: most tokens per image. \\[default: {CountSettings.image_max_tokens}]")]
ImageMinTokens = Annotated[int, typer.Option("--image-min-tokens", min=1,
                                             help="ms-swift IMAGE_MIN_TOKEN_NUM: fewest tokens per image.")]
MaxPixels = Annotated[Optional[int], typer.Option(
    "--max-pixels", min=FACTOR * FACTOR, help="Legacy ms-swift MAX_PIXELS (becomes MAX_PIXELS // 1024 tokens).")]
Fps = Annotated[float, typer.Option("--fps", min=0.001, help="ms-swift FPS: video frames sampled per second.")]
FpsMinFrames = Annotated[int, typer.Option("--fps-min-frames", min=1,
                                           help="ms-swift FPS_MIN_FRAMES: fewest frames sampled per video.")]
FpsMaxFrames = Annotated[int, typer.Option("--fps-max-frames", min=VideoSettings.frame_factor,
                                           help="ms-swift FPS_MAX_FRAMES: most frames sampled per video.")]
VideoMinTokens = Annotated[int, typer.Option("--video-min-tokens", min=1,
                                             help="ms-swift VIDEO_MIN_TOKEN_NUM: fewest tokens per pair of frames.")]
VideoMaxTokens = Annotated[int, typer.Option("--video-max-tokens", min=1,
                                             help="ms-swift VIDEO_MAX_TOKEN_NUM: most tokens per pair of frames.")]


def video_settings(fps: float, fps_min_frames: int, fps_max_frames: int, video_min_tokens: int,
                   video_max_tokens: int) -> VideoSettings:
    if video_max_tokens < video_min_tokens:
        raise usage_error(f"--video-max-tokens {video_max_tokens} is below --video-min-tokens {video_min_tokens}")
    return VideoSettings(fps=fps, fps_min_frames=fps_min_frames, fps_max_frames=fps_max_frames,
                         video_min_tokens=video_min_tokens, video_max_tokens=video_max_tokens)


class Engine(str, Enum):
    local = "local"
    ray = "ray"


EngineOption = Annotated[Engine, typer.Option(
    "--engine", help="local: worker processes on this machine; ray: Ray tasks, on a local Ray instance sized to "
                     "--workers or on the cluster at --ray-address (pip install 'vlprep\\[ray]').")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address", help="With --engine ray: join this running Ray cluster (HOST:6379, or auto) instead of starting "
                          "a local instance. Inputs and images must be at the same paths on every node.")]


def engine_choice(engine: Engine, ray_address: Optional[str]) -> tuple[str, Optional[str]]:
    if ray_address and engine is not Engine.ray:
        raise usage_error("--ray-address needs --engine ray")
    if engine is Engine.ray:
        try:
            import_ray()
            if ray_address:
                check_reachable(ray_address)
        except RayUnavailable as error:
            raise usage_error(str(error)) from None
    return engine.value, ray_address


MaxLength = Annotated[Optional[int], typer.Option("--max-length", min=1,
                                                  help="Records with more tokens (image tokens included) are too long (L001).")]


def processor_error(error: Exception, model: Optional[str]) -> typer.Exit:
    """A processor that cannot be had: vlprep (not training) can always fall back on the embedded one."""
    fallback = " Or leave out --model to use the embedded Qwen3-VL processor." if model else ""
    return usage_error(f"{error}{fallback}")


def count_settings(image_max_tokens: Optional[int], image_min_tokens: int, max_pixels: Optional[int],
                   max_ratio: float, video: VideoSettings = VideoSettings()) -> CountSettings:
    if image_max_tokens is not None and max_pixels is not None:
        raise usage_error("give --image-max-tokens or its legacy spelling --max-pixels, not both")
    max_tokens = image_max_tokens or (max_pixels // (FACTOR * FACTOR) if max_pixels else CountSettings.image_max_tokens)
    if max_tokens < image_min_tokens:
        raise usage_error(f"--image-max-tokens {max_tokens} is below --image-min-tokens {image_min_tokens}")
    return CountSettings(image_max_tokens=max_tokens, image_min_tokens=image_min_tokens, max_ratio=int(max_ratio),
                         video=video)


def pipeline_options(image_root: Optional[Path], fast: bool, max_image_pixels: int, max_ratio: float,
                     max_images: int, image_timeout: float, video: VideoSettings, video_timeout: float,
                     **extra: object) -> PipelineOptions:
    if image_root is not None and not image_root.is_dir():
        raise usage_error(f"--image-root {image_root}: not a directory")
    limits = ImageLimits(max_pixels=max_image_pixels, max_ratio=max_ratio, full_decode=not fast)
    return PipelineOptions(image_root=image_root.resolve() if image_root else None, limits=limits,
                           max_images=max_images, image_timeout_s=image_timeout, video=video,
                           video_timeout_s=video_timeout, **extra)  # type: ignore[arg-type]


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
    max_length: MaxLength = None,
    model: Model = None,
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
    refuse_flag_values(files)
    files = check_inputs(files, "lint")
    engine_name, ray_address = engine_choice(engine, ray_address)
    active = active_rules(select, ignore)
    video = video_settings(fps, fps_min_frames, fps_max_frames, video_min_tokens, video_max_tokens)
    settings = count_settings(image_max_tokens, image_min_tokens, max_pixels, max_ratio, video)
    options = pipeline_options(image_root, fast, max_image_pixels, max_ratio, max_images, image_timeout, video,
                               video_timeout, max_length=max_length)
    counter = None
    if max_length:
        from vlprep.tokens import TokenCounter

        counter = TokenCounter(load_counting_tokenizer(model, trust_remote_code), settings)
    reads_stdin = any(is_stdin(file) for file in files)  # read once, as it comes: no total for the progress bar
    total = None if reads_stdin else sum(count_lines(file, max_line_bytes) for file in files)
    started = time.perf_counter()
    tally = Tally(active)
    writer = make_writer(output_format.value, show_all)
    stream = run_on(engine_name, ray_address, files, options, workers, max_line_bytes,
                    counter_factory=(lambda: counter) if counter else None)
    results = with_progress(stream, total, "lint", enabled=not quiet)
    try:
        for diagnostic in lint_results(results, tally):
            writer.add(diagnostic)
    except RayUnavailable as error:
        raise usage_error(str(error)) from None
    writer.finish(tally, time.perf_counter() - started)
    raise typer.Exit(1 if tally.fails(Severity(fail_on.value)) else 0)


def load_counting_tokenizer(model: Optional[str], trust_remote_code: bool):  # type: ignore[no-untyped-def]
    """The tokenizer to count with, imported lazily: plain lint needs none (vlprep.processor_memo)."""
    from vlprep.processor import ProcessorError, resolve_model_dir
    from vlprep.processor_memo import counting_tokenizer, processor_facts

    try:
        model_dir = resolve_model_dir(model, trust_remote_code)
        return counting_tokenizer(model_dir, trust_remote_code, processor_facts(model_dir, trust_remote_code))
    except ProcessorError as error:
        raise processor_error(error, model) from None


def parse_verify(value: str) -> int | None:
    if value == "all":
        return None
    if value.isdigit():
        return int(value)
    raise usage_error(f"--verify {value!r}: a number of records or 'all'")


@app.command()
def cache(
    files: Files,
    out: Annotated[Path, typer.Option("--out", "-o", help="Cache folder to create (train/, val/, rejects.jsonl, manifest.json).")],
    val: Annotated[Optional[list[Path]], typer.Option("--val", help="Validation JSONL file(s) (instead of --val-ratio).")] = None,
    val_ratio: Annotated[float, typer.Option("--val-ratio", min=0.0, max=1.0, help="Fraction of records for val.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the val split and the verification sample.")] = 42,
    model: Model = None,
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
    from vlprep.cache import ENCODER_LOG, CacheError, CacheRequest, build_cache, partial_dir
    from vlprep.processor import ProcessorError
    from vlprep.swift_oracle import OracleExited
    from vlprep.verify import VerificationError

    refuse_flag_values(files)
    files = check_inputs(files, "cache")
    val_files = check_inputs(val or [], "cache")
    engine_name, ray_address = engine_choice(engine, ray_address)
    if val_files and val_ratio:
        raise usage_error("give --val FILE or --val-ratio, not both")
    video = video_settings(fps, fps_min_frames, fps_max_frames, video_min_tokens, video_max_tokens)
    settings = count_settings(image_max_tokens, image_min_tokens, max_pixels, max_ratio, video)
    request = CacheRequest(
        train_files=files, val_files=val_files, out=out, val_ratio=val_ratio, seed=seed, model=model,
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
    except (CacheError, RayUnavailable) as error:
        raise usage_error(str(error)) from None
    except ProcessorError as error:
        raise processor_error(error, model) from None
    except VerificationError as error:
        err.print(f"[red]verification failed, no cache written:[/] {error}")
        raise typer.Exit(1) from None
    except OracleExited as exited:
        log = partial_dir(out) / ENCODER_LOG
        err.print(f"[red]error:[/] the ms-swift encoder that verifies the sample exited with code {exited.code}: "
                  f"{escape(exited.cause)}\n  Its full output: {log}. No cache was written to {out}; the records "
                  "checked so far are kept: after fixing the cause, run the same command again with --resume.")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        resumable = (partial_dir(out) / "state.pkl").is_file()
        err.print(f"[yellow]interrupted: no cache was written to {out}. "
                  + ("To continue from the last complete shard, run the same command again with --resume.[/]"
                     if resumable else "It stopped before the build began; run the same command again.[/]"))
        raise typer.Exit(130) from None
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


@app.command()
def inspect(
    cache_dir: Annotated[Path, typer.Argument(help="A folder made by `vlprep cache`.")],
    verify_images: Annotated[ImagesMode, typer.Option(
        "--verify-images", help="Image files checked against the cache: a sample of 64, all, or none (also off); one "
                                "whose size/mtime moved is compared by content (the same check as `vltrain fit`).")
                             ] = ImagesMode.sample,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json (the manifest, with an "
                                                                           "`inspection` entry).")
                             ] = DocumentFormat.text,
) -> None:
    """Verify a cache (manifest, checksums of its files, its image files) and summarize it; exit 1 if it was modified
    or its images are missing or changed.

    Example: [bold]vlprep inspect arrow/[/]
    """
    from vlprep.manifest import ManifestError, load_manifest

    from vlprep.image_staleness import StaleCheckError, check_cached_images

    try:
        manifest = load_manifest(cache_dir)
        images = check_cached_images(cache_dir, manifest, "none" if verify_images is ImagesMode.off
                                     else verify_images.value)
    except (ManifestError, StaleCheckError) as error:
        err.print(f"[red]refused:[/] {error}")
        raise typer.Exit(1) from None
    if output_format is DocumentFormat.json:
        inspection = {"checksums": "verified", "images": images.to_json()}
        sys.stdout.write(json.dumps({**manifest, "inspection": inspection}, indent=2) + "\n")
        raise typer.Exit(0 if images.ok else 1)
    counts, counting = manifest["counts"], manifest["counting"]
    console = Console(soft_wrap=True)
    console.print(f"[bold]{cache_dir}[/]: vlprep cache built {manifest['created']} by vlprep {manifest['tool']['vlprep']}"
                  f"; checksums of {len(manifest['data_files'])} file(s) verified")
    console.print(f"  {counts['train']:,} train, {counts['val']:,} val, {counts['rejected']:,} rejected = "
                  f"{counts['input_lines']:,} input lines")
    console.print(f"  processor {manifest['processor']['model']} ({manifest['processor']['fingerprint'][:12]}), "
                  f"IMAGE_MAX_TOKEN_NUM={counting['image_max_tokens']}, IMAGE_MIN_TOKEN_NUM={counting['image_min_tokens']}, "
                  f"MAX_RATIO={counting['max_ratio']}, max_length {manifest['max_length']}")
    mark = "[green]images:[/]" if images.ok else "[red]images:[/]"
    console.print(f"  {mark} {escape(images.describe())}", highlight=False)
    if not images.ok:
        console.print(f"  fix: {escape(images.fix())}", highlight=False)
        raise typer.Exit(1)


@app.command()
def rules(
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json.")] = DocumentFormat.text,
) -> None:
    """List every rule: code, name, default severity and what it means."""
    if output_format is DocumentFormat.json:
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


# ---- stats, show, report: what training will get (vlprep.stats, vlprep.packing, vlprep.show, vlprep.report_html) ----

class PackingStrategy(str, Enum):
    binpack = "binpack"
    sequential = "sequential"


PackingLength = Annotated[Optional[int], typer.Option(
    "--packing-length", min=1, help="Tokens per pack [default: the cache's max_length, else --max-length, else 8192].")]
Strategy = Annotated[PackingStrategy, typer.Option("--packing-strategy", help="ms-swift's --packing_strategy.")]
PackingNumProc = Annotated[int, typer.Option("--packing-num-proc", min=1, help="ms-swift's --packing_num_proc.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Rows (packs) per device batch.")]
GradAccum = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps.")]
Gpus = Annotated[int, typer.Option("--gpus", min=1, help="Data-parallel processes.")]
Epochs = Annotated[float, typer.Option("--epochs", min=0.0, help="Training epochs.")]
WhatIf = Annotated[Optional[str], typer.Option(
    "--image-max-tokens", help="What-if IMAGE_MAX_TOKEN_NUM values, comma-separated (e.g. 1024,4096,16384): one "
                               "column each, from one pass over the image headers.")]


def parse_what_if(value: Optional[str]) -> list[int]:
    if not value:
        return []
    try:
        values = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise usage_error(f"--image-max-tokens {value!r}: comma-separated whole numbers") from None
    if not values or min(values) < 1:
        raise usage_error(f"--image-max-tokens {value!r}: positive numbers")
    return values


def collect_for_stats(target: list[Path], model: Optional[str], trust_remote_code: bool, settings: CountSettings,
                      max_length: Optional[int], workers: int, image_root: Optional[Path], with_sizes: bool):  # type: ignore[no-untyped-def]
    """A cache folder (its train split) or JSONL files (header-only counting)."""
    from vlprep.stats import StatsError, collect_cache, collect_jsonl, make_counter

    if len(target) == 1 and target[0].is_dir():
        try:
            collected = collect_cache(target[0], with_sizes, workers)
        except StatsError as error:
            raise usage_error(str(error)) from None
        if max_length is not None:
            collected.max_length = max_length
        return collected
    files = check_inputs(target, "stats")
    from vlprep.processor import ProcessorError

    try:
        counter = make_counter(model, trust_remote_code, settings)
    except ProcessorError as error:
        raise usage_error(str(error)) from None
    collected = collect_jsonl(files, counter, workers, image_root.resolve() if image_root else None)
    collected.max_length = max_length
    return collected


@app.command()
def stats(
    target: Annotated[list[Path], typer.Argument(help="A cache folder (made by `vlprep cache`) or JSONL file(s).",
                                                 show_default=False)],
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json.")] = DocumentFormat.text,
    packing_length: PackingLength = None,
    packing_strategy: Strategy = PackingStrategy.binpack,
    packing_num_proc: PackingNumProc = 1,
    batch_size: BatchSize = 1,
    grad_accum: GradAccum = 1,
    gpus: Gpus = 1,
    epochs: Epochs = 1.0,
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
    from vlprep.packing import TrainingShape
    from vlprep.stats import stats_document

    what_if_values = parse_what_if(image_max_tokens)
    settings = count_settings(None, image_min_tokens, None, max_ratio,
                              video_settings(fps, fps_min_frames, fps_max_frames, video_min_tokens, video_max_tokens))
    collected = collect_for_stats(target, model, trust_remote_code, settings, max_length, workers, image_root,
                                  with_sizes=bool(what_if_values) or plot is not None)
    shape = TrainingShape(batch_size=batch_size, grad_accum=grad_accum, gpus=gpus, epochs=epochs)
    doc = stats_document(collected, packing_length, packing_strategy.value, shape, packing_num_proc, what_if_values)
    if plot is not None:
        from vlprep.plots import write_plots

        write_plots(collected, doc, plot)
    if output_format is DocumentFormat.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from vlprep.stats_text import print_stats

    print_stats(doc, Console(soft_wrap=True))
    if plot is not None:
        Console(soft_wrap=True).print(f"plots: {plot}")


@app.command()
def show(
    target: Annotated[str, typer.Argument(help="A cache folder (with --row), or FILE.jsonl:LINE.", show_default=False)],
    row: Annotated[int, typer.Option("--row", min=0, help="Row of the cache split (from 0).")] = 0,
    split: Annotated[str, typer.Option("--split", help="Cache split: train or val.")] = "train",
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json (ids, labels, spans).")
                             ] = DocumentFormat.text,
    model: Model = None,
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
    from vlprep.show import ShowError, locate_in_cache, locate_in_jsonl, parse_target, print_view, record_view
    from vlprep.stats import StatsError, cache_counter, make_counter

    try:
        path, line = parse_target(target)
        if path.is_dir():
            if split not in ("train", "val"):
                raise usage_error(f"--split {split!r}: train or val")
            located, manifest = locate_in_cache(path, row, split)
            counter = cache_counter(manifest)
        else:
            if row:
                raise usage_error("--row selects a row of a cache folder; for a JSONL file give FILE:LINE")
            file = check_inputs([path], "show")[0]
            settings = count_settings(image_max_tokens, image_min_tokens, None, max_ratio)
            counter = make_counter(model, trust_remote_code, settings)
            located = locate_in_jsonl(file, line or 1, counter, image_root.resolve() if image_root else None)
    except (ShowError, StatsError) as error:
        raise usage_error(str(error)) from None
    view = record_view(counter, located)
    if output_format is DocumentFormat.json:
        sys.stdout.write(json.dumps(view) + "\n")
        return
    print_view(view, Console(soft_wrap=True))


@app.command()
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
    from vlprep.packing import TrainingShape
    from vlprep.plots import render_png
    from vlprep.report_html import render_report
    from vlprep.show import locate_in_cache, record_view
    from vlprep.stats import StatsError, cache_counter, collect_cache, stats_document

    if not cache_dir.is_dir():
        raise usage_error(f"{cache_dir}: not a folder made by `vlprep cache`")
    curves = None
    if run is not None:
        if not (run / "curves.png").is_file():
            raise usage_error(f"--run {run}: no curves.png (a `vltrain fit` output folder writes one at each save)")
        curves = (run / "curves.png").read_bytes()
    try:
        collected = collect_cache(cache_dir, with_sizes=True, workers=workers)
    except StatsError as error:
        raise usage_error(str(error)) from None
    shape = TrainingShape(batch_size=batch_size, grad_accum=grad_accum, gpus=gpus, epochs=epochs)
    doc = stats_document(collected, packing_length, packing_strategy.value, shape)
    counter = cache_counter(collected.manifest or {})
    shown = []
    for row in range(min(samples, len(collected.rows))):
        located, _ = locate_in_cache(cache_dir, row, "train")
        shown.append((record_view(counter, located), located.image_refs))
    page = render_report(str(cache_dir), collected.manifest or {}, doc, render_png(collected, doc), shown, curves)
    out.write_text(page, encoding="utf-8")
    Console(soft_wrap=True).print(f"{out}: {len(page) / 1024:,.0f} KiB, {len(shown)} sample record(s)")
