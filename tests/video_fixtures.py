"""Video clips made by the test setup with PyAV (a few seconds each, tiny sizes so they encode fast)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, *, seconds: float, fps: int, width: int, height: int, rotate: int | None = None,
               variable_rate: bool = False, codec: str = "libx264") -> Path:
    """A moving gradient. `variable_rate` spaces frames unevenly (the pts jump every other frame); `rotate` writes
    the container's display matrix (degrees counter-clockwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps * 4)
        if rotate is not None:
            stream.set_display_rotation(rotate)
        count = int(seconds * fps)
        pts = 0
        for index in range(count):
            pixels = np.zeros((height, width, 3), dtype=np.uint8)
            pixels[..., 0] = (np.arange(width) * 255 // max(width - 1, 1)).astype(np.uint8)[None, :]
            pixels[..., 1] = (index * 7) % 256
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, fps * 4)
            pts += (2 if index % 2 else 6) if variable_rate else 4
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = int(seconds * 16000)
        chunk = 1024
        for start in range(0, samples, chunk):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, chunk), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_truncated(source: Path, path: Path, keep: float = 0.4) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_fixture_clips(folder: Path) -> dict[str, Path]:
    """The clips the parity tests encode with ms-swift (all decodable)."""
    return {
        "constant": write_clip(folder / "constant.mp4", seconds=2, fps=10, width=320, height=240),
        "odd_size": write_clip(folder / "odd_size.mp4", seconds=3, fps=8, width=203, height=117, codec="mpeg4"),
        "tall": write_clip(folder / "tall.mp4", seconds=1.5, fps=12, width=96, height=400),
        "long": write_clip(folder / "long.mp4", seconds=24, fps=4, width=64, height=48),
        "fractional": write_clip(folder / "fractional.mp4", seconds=2.5, fps=6, width=160, height=90),
    }
