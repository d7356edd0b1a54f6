"""Check one video reference: resolve it, read its container header (PyAV's demuxer: no frame decoded), and in full mode
decode every frame, as the training reader would need to.

The header gives what ms-swift's pinned reader (decord) uses: the stream's frame count, its average frame rate and the
frame size. Header-only mode finds missing files, containers that do not open, audio-only files, zero or absurd
frame rates and durations, rotation metadata and variable frame rate; full mode also finds corrupt or truncated frame
data and a frame count that the header overstates.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vlprep.checks.images import resolve_path
from vlprep.counting.video import VideoHeader

Problem = tuple[str, str]
MAX_FPS = 1000.0  # above this a header's frame rate is a timebase artefact, not a frame rate
MAX_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class VideoCheck:
    header: VideoHeader | None
    problems: tuple[Problem, ...]


def check_video(ref: str, base_dir: Path, image_root: Path | None, full_decode: bool,
                min_frames: int = 4, frame_factor: int = 2) -> VideoCheck:
    if ref.startswith(("http://", "https://", "data:")):
        return VideoCheck(None, (("V012", f"video {ref[:120]} is remote or inline: vlprep reads local video files "
                                          "only"),))
    path, escape = resolve_path(ref, base_dir, image_root)
    if escape:
        return VideoCheck(None, (("I002", escape[1]),))
    assert path is not None
    if not path.exists():
        return VideoCheck(None, (("V001", f"video not found: {path}"),))
    try:
        return _inspect(path, full_decode, min_frames, frame_factor)
    except Exception as error:  # noqa: BLE001 - a demuxer bug on a hostile file is a bad video, never a crash
        return VideoCheck(None, (("V002", f"{path}: unreadable: {type(error).__name__}: {error}"),))


def _inspect(path: Path, full_decode: bool, min_frames: int, frame_factor: int) -> VideoCheck:
    import av

    problems: list[Problem] = []
    try:  # skip_frame=all: ffmpeg's stream probing opens the decoder, which then drops every frame undecoded
        container = av.open(str(path), metadata_errors="ignore", options={"skip_frame": "all"})
    except av.FFmpegError as error:
        return VideoCheck(None, (("V002", f"{path}: not a container ffmpeg can open: {error}"),))
    with container:
        if not container.streams.video:
            return VideoCheck(None, (("V003", f"{path}: no video stream ({len(container.streams.audio)} audio)"),))
        stream = container.streams.video[0]
        rate = stream.average_rate
        header = VideoHeader(frames=int(stream.frames), fps=float(rate) if rate else 0.0,
                             width=int(stream.codec_context.width), height=int(stream.codec_context.height),
                             path=str(path))
        if header.frames <= 0:
            return VideoCheck(None, (("V011", f"{path}: the header gives no frame count: the training reader "
                                              "estimates it, so its token count cannot be known exactly"),))
        seconds = header.frames / header.fps if header.fps > 0 else 0.0
        if not 0 < header.fps <= MAX_FPS or not 0 < seconds <= MAX_SECONDS or header.width <= 0 or header.height <= 0:
            return VideoCheck(None, (("V004", f"{path}: {header.frames} frames at {header.fps:g} fps "
                                              f"({seconds:g} s), {header.width}x{header.height}"),))
        if header.frames < frame_factor:
            return VideoCheck(None, (("V009", f"{path}: {header.frames} frame(s): ms-swift samples at least "
                                              f"{frame_factor}"),))
        if header.frames < min_frames:
            problems.append(("V010", f"{path}: {header.frames} frames, fewer than FPS_MIN_FRAMES {min_frames}"))
        rotation = _rotation(path)
        if rotation:
            problems.append(("V005", f"{path}: rotation metadata ({rotation}°): the pinned reader rotates the frames "
                                     "(90°/270°: decord fails and ms-swift cannot encode the video)"))
        guessed = stream.guessed_rate
        if guessed and rate and abs(float(guessed) - float(rate)) > 0.01 * float(rate):
            problems.append(("V006", f"{path}: variable frame rate (average {float(rate):g} fps, nominal "
                                     f"{float(guessed):g} fps): frame times in the prompt are approximate"))
    if full_decode:
        problems += _decode_all(path, header)
    return VideoCheck(header, tuple(problems))


def _rotation(path: Path) -> int:
    """Degrees of rotation in an MP4/MOV video track's display matrix (tkhd), read from the box tree: PyAV exposes it
    only on decoded frames. 0 for other containers or when the boxes cannot be walked."""
    try:
        with open(path, "rb") as handle:
            moov = _child(handle, 0, os.path.getsize(path), b"moov")
            if moov is None:
                return 0
            start, end = moov
            for trak in _children(handle, start, end, b"trak"):
                mdia = _child(handle, *trak, b"mdia")
                hdlr = _child(handle, *mdia, b"hdlr") if mdia else None
                tkhd = _child(handle, *trak, b"tkhd")
                if hdlr is None or tkhd is None:
                    continue
                handle.seek(hdlr[0] + 8)
                if handle.read(4) != b"vide":
                    continue
                handle.seek(tkhd[0])
                version = handle.read(1)[0]
                handle.seek(tkhd[0] + 4 + (32 if version == 1 else 20) + 16)
                a, b = struct.unpack(">ii", handle.read(8))
                return round(math.degrees(math.atan2(b, a))) % 360
    except (OSError, struct.error, IndexError):
        return 0
    return 0


def _children(handle: Any, start: int, end: int, kind: bytes) -> Iterator[tuple[int, int]]:
    """(payload start, end) of each box of `kind` directly inside [start, end)."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        size, name = struct.unpack(">I4s", handle.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", handle.read(8))[0], 16
        elif size == 0:
            size = end - position
        if size < header:
            return
        if name == kind:
            yield position + header, position + size
        position += size


def _child(handle: Any, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(_children(handle, start, end, kind), None)


def _decode_all(path: Path, header: VideoHeader) -> list[Problem]:
    import av

    decoded = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for _ in container.decode(video=0):
                decoded += 1
    except Exception as error:  # noqa: BLE001 - any decoder failure is a corrupt video
        return [("V002", f"{path}: decoding failed after {decoded} of {header.frames} frames: {error}")]
    if decoded < header.frames:
        return [("V002", f"{path}: the header says {header.frames} frames but only {decoded} decode (corrupt or "
                         "truncated)")]
    return []
