"""The counting settings: ms-swift's pixel limits for Qwen3-VL, with its names and defaults (no heavy imports here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PATCH_SIZE = 16
MERGE_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE  # one image token per 32×32 pixels
TEMPORAL_PATCH_SIZE = 2
VIDEO_READER = "decord"  # qwen-vl-utils' video backend the counting follows (FORCE_QWENVL_VIDEO_READER)
VIDEO_READER_VERSION = "0.6.0"


class UnencodableImage(ValueError):
    """An image that cannot be encoded under the settings (training would fail on it too)."""


@dataclass(frozen=True)
class VideoSettings:
    """qwen-vl-utils' video knobs, with ms-swift's environment names and qwen-vl-utils 0.0.14's defaults."""

    fps: float = 2.0
    fps_min_frames: int = 4
    fps_max_frames: int = 768
    frame_factor: int = 2
    video_min_tokens: int = 128
    video_max_tokens: int = 768
    model_seq_len: int = 128000  # qwen-vl-utils' total-pixel budget for one video: MODEL_SEQ_LEN·32²·0.9

    @property
    def min_pixels(self) -> int:
        return self.video_min_tokens * FACTOR * FACTOR

    @property
    def max_pixels(self) -> int:
        return self.video_max_tokens * FACTOR * FACTOR

    @property
    def total_pixels(self) -> float:
        return self.model_seq_len * FACTOR * FACTOR * 0.9

    def swift_env(self) -> dict[str, str]:
        """The environment that makes ms-swift sample and resize videos like this, with the pinned reader."""
        return {"FPS": repr(float(self.fps)), "FPS_MIN_FRAMES": str(self.fps_min_frames),
                "FPS_MAX_FRAMES": str(self.fps_max_frames), "FRAME_FACTOR": str(self.frame_factor),
                "VIDEO_MIN_TOKEN_NUM": str(self.video_min_tokens), "VIDEO_MAX_TOKEN_NUM": str(self.video_max_tokens),
                "MODEL_SEQ_LEN": str(self.model_seq_len), "FORCE_QWENVL_VIDEO_READER": VIDEO_READER}

    @classmethod
    def from_manifest(cls, counting: dict[str, Any]) -> "VideoSettings":
        """The video settings of a cache's manifest `counting`; a cache from before videos were counted holds no
        video record and gets the defaults."""
        cached = counting.get("video") or {}
        return cls(**{item.name: cached[item.name] for item in fields(cls) if item.name in cached})

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "reader": VIDEO_READER, "reader_version": VIDEO_READER_VERSION,
                "temporal_patch_size": TEMPORAL_PATCH_SIZE}


@dataclass(frozen=True)
class CountSettings:
    """ms-swift's pixel limits, with its names and defaults (IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, MAX_RATIO)."""

    image_max_tokens: int = 16384
    image_min_tokens: int = 4
    max_ratio: int = 200
    video: VideoSettings = field(default_factory=VideoSettings)

    @property
    def max_pixels(self) -> int:
        return self.image_max_tokens * FACTOR * FACTOR

    @property
    def min_pixels(self) -> int:
        return self.image_min_tokens * FACTOR * FACTOR

    def swift_env(self) -> dict[str, str]:
        """The environment that makes ms-swift resize exactly like this."""
        return {"IMAGE_MAX_TOKEN_NUM": str(self.image_max_tokens), "IMAGE_MIN_TOKEN_NUM": str(self.image_min_tokens),
                "MAX_RATIO": str(self.max_ratio), **self.video.swift_env()}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "video": self.video.to_json(), "max_pixels": self.max_pixels, "min_pixels": self.min_pixels,
                "patch_size": PATCH_SIZE, "merge_size": MERGE_SIZE}


def settings_fingerprint(settings: CountSettings) -> str:
    return hashlib.sha256(json.dumps(settings.to_json(), sort_keys=True).encode()).hexdigest()
