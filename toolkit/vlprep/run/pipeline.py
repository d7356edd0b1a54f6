"""One record through the pipeline: parse → normalize → check → (count). Runs inside worker processes."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlprep.checks.conversation import check_conversation, check_objects
from vlprep.checks.images import ImageCheck, ImageLimits, check_image
from vlprep.checks.videos import VideoCheck, check_video
from vlprep.records.diagnostics import Diagnostic, RecordResult
from vlprep.records.normalize import normalize
from vlprep.inputs.units import RawLine
from vlprep.counting.settings import UnencodableImage, VideoSettings
from vlprep.counting.video import UnencodableVideo
from vlprep.run.watchdog import Watchdog


@dataclass(frozen=True)
class PipelineOptions:
    image_root: Path | None = None
    limits: ImageLimits = field(default_factory=ImageLimits)
    max_images: int = 64
    max_depth: int = 64
    keep_records: bool = False  # keep the canonical record and original text (needed by `cache`)
    max_length: int | None = None
    image_timeout_s: float = 60.0
    video_timeout_s: float = 600.0
    video: VideoSettings = field(default_factory=VideoSettings)  # FPS_MIN_FRAMES for V010 when nothing is counted


class ImageCache:
    """Per-worker memo of image checks (datasets often reference one image from many records); image and video checks
    are guarded by the worker's watchdog when it has one."""

    def __init__(self, watchdog: Watchdog | None = None, capacity: int = 4096) -> None:
        self._entries: OrderedDict[tuple[str, str], ImageCheck] = OrderedDict()
        self._capacity = capacity
        self._watchdog = watchdog

    def check(self, ref: str, base_dir: Path, options: PipelineOptions, where: tuple[str, int]) -> ImageCheck:
        key = (str(base_dir), ref)
        hit = self._entries.get(key)
        if hit is not None and not ref.startswith("data:"):
            self._entries.move_to_end(key)
            return hit
        if self._watchdog is None:
            result = check_image(ref, base_dir, options.image_root, options.limits)
        else:
            with self._watchdog.guard(where[0], where[1], ref):
                result = check_image(ref, base_dir, options.image_root, options.limits)
        if not ref.startswith("data:"):
            self._entries[key] = result
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return result

    def check_video(self, ref: str, base_dir: Path, options: PipelineOptions, settings: VideoSettings,
                    where: tuple[str, int]) -> VideoCheck:
        """A video check (not memoized: a video is rarely shared), under the watchdog with --video-timeout."""
        guard = (self._watchdog.guard(where[0], where[1], ref, "video", options.video_timeout_s)
                 if self._watchdog is not None else nullcontext())
        with guard:
            return check_video(ref, base_dir, options.image_root, options.limits.full_decode, settings.fps_min_frames,
                               settings.frame_factor)


def process_line(raw: RawLine, file: Path, options: PipelineOptions, images: ImageCache, counter: Any = None
                 ) -> RecordResult:
    name = str(file)
    result = RecordResult(file=name, line=raw.line, text="", number=raw.number, index=raw.index)

    def report(code: str, message: str, column: int | None = None) -> None:
        result.diagnostics.append(Diagnostic(code, raw.line, message, name, column=column, index=raw.index))

    if raw.problem is not None:  # found by the reader (a truncated array, text after it, ...): nothing to parse
        report(*raw.problem)
        if options.keep_records and raw.data is not None:
            result.text = raw.data.decode("utf-8", errors="replace")
        return result
    if raw.data is None:
        report("J006", f"line is {raw.size:,} bytes, over the --max-line-bytes limit; not parsed")
        return result
    if raw.had_bom:
        report("J004", "UTF-8 byte-order mark at the start of the file")
    try:
        text = raw.data.decode("utf-8")
    except UnicodeDecodeError as error:
        report("J003", f"invalid UTF-8 at byte {error.start}: {raw.data[error.start:error.start + 4]!r}")
        result.text = raw.data.decode("utf-8", errors="replace") if options.keep_records else ""
        return result
    if options.keep_records:
        result.text = text
    if not text.strip():
        report("J005", "blank line")
        return result
    obj = _parse(text, raw.line, options.max_depth, report)
    if obj is None:
        return result
    try:
        canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    except UnicodeEncodeError as error:  # a lone surrogate escape such as "\ud800": valid JSON, not valid Unicode
        report("J003", f"a string holds a lone surrogate escape ({error.object[error.start]!r}): not valid Unicode")
        return result
    result.fingerprint = int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big")
    normalized = normalize(obj)
    result.input_format = normalized.input_format
    result.columns = normalized.columns
    for code, message in normalized.problems:
        report(code, message)
    if normalized.has_audio:
        report("M006", "the record has audio: Qwen3-VL takes no audio")
    record = normalized.record
    if record is None:
        return result
    result.text_fingerprint = _text_fingerprint(record)
    for code, message in check_conversation(record):
        report(code, message)
    _check_images(record["images"], file.parent, options, images, result, report)
    video_settings = counter.settings.video if counter is not None else options.video
    _check_videos(record.get("videos", []), file.parent, options, video_settings, images, result, report)
    for code, message in check_objects(record, result.images):
        report(code, message)
    if options.keep_records:
        result.record = record
    if counter is not None and not any(d.severity.value == "error" for d in result.diagnostics):
        try:
            result.counted = counter.count(record, result.images, tuple(result.videos))
        except UnencodableImage as error:
            report("I015", f"{error}: ms-swift cannot encode it")
            return result
        except UnencodableVideo as error:
            report("V013", f"{error}: ms-swift cannot encode it")
            return result
        if options.max_length is not None and result.counted.length > options.max_length:
            report("L001", f"{result.counted.length:,} tokens ({result.counted.image_tokens:,} image tokens) "
                           f"> --max-length {options.max_length:,}; "
                           + _fitting_hint(result, counter.settings, options.max_length))
    return result


def _text_fingerprint(record: dict[str, Any]) -> int | None:
    """64-bit hash of everything but the images (D004: the text repeats an earlier record's, the pictures nearly)."""
    if not record.get("images"):
        return None
    text = json.dumps({key: value for key, value in record.items() if key != "images"}, sort_keys=True,
                      ensure_ascii=False).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _fitting_hint(result: RecordResult, settings: Any, max_length: int) -> str:
    """Which --image-max-tokens would make the record fit, computed with the counting code, or why none would."""
    from vlprep.counting.tokens import largest_fitting_image_max_tokens

    counted = result.counted
    text_tokens = counted.length - counted.image_tokens
    if not result.images:
        return f"it has no images: its text alone is {text_tokens:,} tokens"
    limit = largest_fitting_image_max_tokens(counted, result.images, settings, max_length)
    if limit is None:
        return (f"no --image-max-tokens makes it fit: even at --image-min-tokens {settings.image_min_tokens} per "
                f"image it is over (text alone: {text_tokens:,} tokens)")
    return f"--image-max-tokens {limit} (or less) would make it fit"


def _parse(text: str, first_line: int, max_depth: int, report: Any) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:  # a JSON array's element may span lines: name the file's line then
        where = f"line {first_line + error.lineno - 1}, column" if error.lineno > 1 else "column"
        report("J001", f"invalid JSON: {error.msg} at {where} {error.colno}", error.colno)
        return None
    except RecursionError:
        report("J007", f"JSON nests deeper than Python's parser allows (limit {max_depth})")
        return None
    except ValueError as error:  # e.g. an integer literal over Python's digit limit
        report("J001", f"invalid JSON: {error}")
        return None
    if text.count("[") + text.count("{") > max_depth and _depth(obj) > max_depth:
        report("J007", f"JSON nests deeper than {max_depth} levels")
        return None
    if not isinstance(obj, dict):
        report("J002", f"line is a JSON {type(obj).__name__}, not an object")
        return None
    return obj


def _depth(obj: Any) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _check_images(refs: list[str], base_dir: Path, options: PipelineOptions, images: ImageCache,
                  result: RecordResult, report: Any) -> None:
    if len(refs) > options.max_images:
        report("L002", f"{len(refs)} images > --max-images {options.max_images}; images not checked")
        return
    for index, ref in enumerate(refs):
        checked = images.check(ref, base_dir, options, (result.file, result.number))
        for code, message in checked.problems:
            report(code, f"images[{index}]: {message}")
        if checked.info is not None:
            result.images.append(checked.info)


def _check_videos(refs: list[str], base_dir: Path, options: PipelineOptions, settings: VideoSettings,
                  images: ImageCache, result: RecordResult, report: Any) -> None:
    for index, ref in enumerate(refs):
        checked = images.check_video(ref, base_dir, options, settings, (result.file, result.number))
        for code, message in checked.problems:
            report(code, f"videos[{index}]: {message}")
        if checked.header is not None:
            result.videos.append(checked.header)
