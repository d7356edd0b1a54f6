"""The options vlprep's commands share (one declaration each), their choices, and the checks that turn them into
settings; a bad value or combination is a UsageError."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from vlprep.checks.images import ImageLimits
from vlprep.counting.settings import CountSettings, VideoSettings
from vlprep.models.registry import DEFAULT_FAMILY, FAMILIES
from vlprep.errors import ProcessorError, UsageError
from vlprep.records.rules import select_codes
from vlprep.run.pipeline import PipelineOptions
from vlprep.run.ray_engine import check_reachable, import_ray


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"


_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def refuse_flag_values(files: list[Path]) -> None:
    """`--fast true`: the flag takes no value, so `true` would be read as an input file; say so instead."""
    for file in files:
        if str(file).lower() in _BOOLEAN_WORDS and not file.exists():
            raise UsageError(f"{str(file)!r} was read as an input file: on/off options such as --fast, --quiet, "
                              f"--embed-images take no value (write --fast, not --fast {file})")


def active_rules(select: Optional[list[str]], ignore: Optional[list[str]]) -> frozenset[str]:
    split = lambda values: [code for value in values or [] for code in value.split(",") if code]  # noqa: E731
    try:
        return select_codes(split(select), split(ignore))
    except ValueError as error:  # an unknown code: select_codes says which
        raise UsageError(str(error)) from None


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
NearDistance = Annotated[int, typer.Option(
    "--near-distance", min=0, max=15,
    help="Pictures whose 64-bit perceptual hashes differ in at most this many bits are near-duplicates (D002, D004, "
         "the cache's picture groups).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="No progress bar or status line.")]
ImageTimeout = Annotated[float, typer.Option("--image-timeout", min=0.01,
                                             help="Seconds one image check may take before it is reported (I014).")]
VideoTimeout = Annotated[float, typer.Option(
    "--video-timeout", min=0.01, help="Seconds one video check (header, and the full decode without --fast) may take "
                                      "before it is reported (V014).")]
Model = Annotated[Optional[str], typer.Option(
    "--model", help="Hub id or local directory of a Qwen3-VL model/processor (default: the embedded offline one).")]
Family = Annotated[Optional[str], typer.Option(
    "--family", help="Count with this model family's embedded offline processor: "
                     + ", ".join(family.name for family in FAMILIES) + " (instead of --model).")]
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", metavar="",
                                               help="Allow code shipped in the model directory to run (off by default).")]
ImageMaxTokens = Annotated[Optional[int], typer.Option(
    "--image-max-tokens", min=1,
    help=f"ms-swift IMAGE_MAX_TOKEN_NUM: most tokens per image. \\[default: {CountSettings.image_max_tokens}]")]
ImageMinTokens = Annotated[int, typer.Option("--image-min-tokens", min=1,
                                             help="ms-swift IMAGE_MIN_TOKEN_NUM: fewest tokens per image.")]
MaxPixels = Annotated[Optional[int], typer.Option(
    "--max-pixels", min=DEFAULT_FAMILY.pixels_per_token,
    help="Legacy ms-swift MAX_PIXELS (becomes MAX_PIXELS // 1024 tokens).")]
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
        raise UsageError(f"--video-max-tokens {video_max_tokens} is below --video-min-tokens {video_min_tokens}")
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
        raise UsageError("--ray-address needs --engine ray")
    if engine is Engine.ray:
        import_ray()
        if ray_address:
            check_reachable(ray_address)
    return engine.value, ray_address


MaxLength = Annotated[Optional[int], typer.Option("--max-length", min=1,
                                                  help="Records with more tokens (image tokens included) are too long (L001).")]


def embedded_fallback(error: ProcessorError, model: Optional[str]) -> UsageError:
    """A processor that cannot be had: vlprep (not training) can always fall back on the embedded one."""
    fallback = " Or leave out --model to use the embedded Qwen3-VL processor." if model else ""
    return UsageError(f"{error}{fallback}", error.fix)


def count_settings(image_max_tokens: Optional[int], image_min_tokens: int, max_pixels: Optional[int],
                   max_ratio: float, video: VideoSettings = VideoSettings()) -> CountSettings:
    if image_max_tokens is not None and max_pixels is not None:
        raise UsageError("give --image-max-tokens or its legacy spelling --max-pixels, not both")
    # the legacy pixel limit in tokens of the default family: the options are read before any model folder is
    max_tokens = image_max_tokens or (max_pixels // DEFAULT_FAMILY.pixels_per_token if max_pixels
                                      else CountSettings.image_max_tokens)
    if max_tokens < image_min_tokens:
        raise UsageError(f"--image-max-tokens {max_tokens} is below --image-min-tokens {image_min_tokens}")
    return CountSettings(image_max_tokens=max_tokens, image_min_tokens=image_min_tokens, max_ratio=int(max_ratio),
                         video=video)


def pipeline_options(image_root: Optional[Path], fast: bool, max_image_pixels: int, max_ratio: float,
                     max_images: int, image_timeout: float, video: VideoSettings, video_timeout: float,
                     **extra: object) -> PipelineOptions:
    if image_root is not None and not image_root.is_dir():
        raise UsageError(f"--image-root {image_root}: not a directory")
    limits = ImageLimits(max_pixels=max_image_pixels, max_ratio=max_ratio, full_decode=not fast)
    return PipelineOptions(image_root=image_root.resolve() if image_root else None, limits=limits,
                           max_images=max_images, image_timeout_s=image_timeout, video=video,
                           video_timeout_s=video_timeout, **extra)  # type: ignore[arg-type]


def parse_verify(value: str) -> int | None:
    if value == "all":
        return None
    if value.isdigit():
        return int(value)
    raise UsageError(f"--verify {value!r}: a number of records or 'all'")


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
        raise UsageError(f"--image-max-tokens {value!r}: comma-separated whole numbers") from None
    if not values or min(values) < 1:
        raise UsageError(f"--image-max-tokens {value!r}: positive numbers")
    return values


def model_or_family(model: Optional[str], family: Optional[str]) -> Optional[str]:
    """`--family NAME` is the family's embedded processor (vlprep.counting.processor takes the name as --model)."""
    if family is None:
        return model
    if model is not None:
        raise UsageError("--model and --family name two processors; pass one (--family picks an embedded processor)")
    if family not in {known.name for known in FAMILIES}:
        raise UsageError(f"--family {family!r} is not a model family vlprep counts for; choose one of "
                         + ", ".join(known.name for known in FAMILIES))
    return family
