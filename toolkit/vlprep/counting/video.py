"""Video records, header-only: what ms-swift 4.6's Qwen3-VL template makes of a video, from the container header.

The training stack reads a video with qwen-vl-utils (the reader pinned here: decord 0.6.0, selected with
FORCE_QWENVL_VIDEO_READER), which takes the frame count and the average frame rate from the stream header, samples
`nframes` frames (FPS per second, clamped to FPS_MIN_FRAMES..FPS_MAX_FRAMES and the frame count, floored to
FRAME_FACTOR) at `linspace(0, total - 1, nframes).round()` (torch float32), resizes every frame with `smart_resize`
under VIDEO_MIN/MAX_TOKEN_NUM and a total-pixel budget (MODEL_SEQ_LEN), and transformers' Qwen3-VL processor (called
with do_resize=False) patches pairs of frames: grid (nframes / 2, h / 16, w / 16). The text for one video is
`<|vision_start|>` + per frame pair `<{t:.1f} seconds><|vision_start|>` + `<|video_pad|>`·grid_h·grid_w/4 + `<|vision_end|>`
+ `<|vision_end|>`, t the mean time of the pair. All of that is arithmetic on four header numbers: no frame is decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vlprep.counting.resize import smart_resize
from vlprep.counting.settings import CountSettings, VideoSettings
from vlprep.models.family import ModelFamily


class UnencodableVideo(ValueError):
    """A video ms-swift's template cannot encode under the settings (training would fail on it too)."""


@dataclass(frozen=True)
class VideoHeader:
    """What the reader takes from the container: the frame count, the average frame rate, the frame size."""

    frames: int
    fps: float
    width: int
    height: int
    path: str = field(default="", compare=False)  # the absolute path it was read from


@dataclass(frozen=True)
class VideoPlan:
    """The frames ms-swift samples from one video and what they become."""

    indices: tuple[int, ...]
    grid: tuple[int, int, int]
    timestamps: tuple[float, ...]
    family: ModelFamily = field(repr=False)

    @property
    def tokens(self) -> int:
        return self.family.tokens_per_grid(self.grid)

    def text(self) -> str:
        """The text that replaces the video's `<|video_pad|>` placeholder (between the template's own
        `<|vision_start|>` and `<|vision_end|>`)."""
        _, h, w = self.grid
        family = self.family
        group = family.vision_start.text + family.video_pad.text * family.tokens_per_grid((1, h, w)) + \
            family.vision_end.text
        return "".join(f"<{stamp:.1f} seconds>" + group for stamp in self.timestamps)


def sampled_frame_count(header: VideoHeader, settings: VideoSettings) -> int:
    """qwen-vl-utils' `smart_nframes` in fps mode (the template passes no `nframes`)."""
    factor = settings.frame_factor
    min_frames = math.ceil(settings.fps_min_frames / factor) * factor
    max_frames = math.floor(min(settings.fps_max_frames, header.frames) / factor) * factor
    wanted = header.frames / header.fps * settings.fps
    count = math.floor(min(min(max(wanted, min_frames), max_frames), header.frames) / factor) * factor
    if not factor <= count <= header.frames:
        raise UnencodableVideo(f"{header.frames} frames at {header.fps:g} fps: ms-swift samples {count} frames, "
                               f"outside [{factor}, {header.frames}]")
    return count


def linspace_indices(last: int, count: int) -> tuple[int, ...]:
    """`torch.linspace(0, last, count).round()` as torch computes it on a CPU: a float32 step, the first half stepped
    up from 0 and the second half down from `last`, each as one fused multiply-add (one float32 rounding), halves
    rounded to even (tests/test_video.py compares it with torch)."""
    if count == 1:
        return (0,)
    step = float(np.float32(last) / np.float32(count - 1))
    half = count // 2
    values = [np.float32(step * i) if i < half else np.float32(last - step * (count - 1 - i)) for i in range(count)]
    return tuple(int(np.round(value)) for value in values)


def plan_video(header: VideoHeader, settings: CountSettings) -> VideoPlan:
    """The frames sampled, the grid and the timestamps ms-swift's template produces for this header."""
    if header.fps <= 0 or header.frames <= 0:
        raise UnencodableVideo(f"{header.frames} frames at {header.fps:g} fps")
    video, family = settings.video, settings.family
    count = sampled_frame_count(header, video)
    indices = linspace_indices(header.frames - 1, count)
    min_pixels = video.video_min_tokens * family.pixels_per_token
    total_pixels = video.model_seq_len * family.pixels_per_token * 0.9
    max_pixels = max(min(video.video_max_tokens * family.pixels_per_token, total_pixels / count * video.frame_factor),
                     int(min_pixels * 1.05))
    try:
        height, width = smart_resize(header.height, header.width, family.factor, min_pixels, max_pixels,
                                     settings.max_ratio)
    except ValueError as error:
        raise UnencodableVideo(f"{header.width}x{header.height}: {error}") from None
    if height <= 0 or width <= 0:
        raise UnencodableVideo(f"{header.width}x{header.height} resizes to {width}x{height}")
    grid_t = -(-count // family.temporal_patch)
    return VideoPlan(indices, (grid_t, height // family.patch_size, width // family.patch_size),
                     _timestamps(indices, header.fps, family.temporal_patch), family)


def _timestamps(indices: tuple[int, ...], fps: float, temporal_patch: int) -> tuple[float, ...]:
    """transformers' Qwen3-VL processor: one time per frame pair, the mean of the pair's first and last frame times
    (the last index repeated to fill a pair)."""
    padded = list(indices) + [indices[-1]] * (-len(indices) % temporal_patch)
    times = [index / fps for index in padded]
    return tuple((times[i] + times[i + temporal_patch - 1]) / 2 for i in range(0, len(times), temporal_patch))
