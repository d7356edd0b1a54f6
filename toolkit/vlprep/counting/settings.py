"""The counting settings: ms-swift's pixel limits and video knobs, with its names and defaults, for a model family
(no heavy imports here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vlprep.models.family import ModelFamily
from vlprep.models.registry import DEFAULT_FAMILY, family_of_manifest

VIDEO_READER = "decord"  # qwen-vl-utils' video backend the counting follows (FORCE_QWENVL_VIDEO_READER)
VIDEO_READER_VERSION = "0.6.0"
# The environment variables ms-swift (and qwen-vl-utils under it) read each setting from.
IMAGE_ENV = {"image_max_tokens": "IMAGE_MAX_TOKEN_NUM", "image_min_tokens": "IMAGE_MIN_TOKEN_NUM",
             "max_ratio": "MAX_RATIO"}
VIDEO_ENV = {"fps": "FPS", "fps_min_frames": "FPS_MIN_FRAMES", "fps_max_frames": "FPS_MAX_FRAMES",
             "frame_factor": "FRAME_FACTOR", "video_min_tokens": "VIDEO_MIN_TOKEN_NUM",
             "video_max_tokens": "VIDEO_MAX_TOKEN_NUM", "model_seq_len": "MODEL_SEQ_LEN"}
READER_ENV = "FORCE_QWENVL_VIDEO_READER"
# Legacy limits in pixels, which ms-swift converts to the token limits when those are unset.
LEGACY_IMAGE_ENV = {"MAX_PIXELS": "image_max_tokens", "MIN_PIXELS": "image_min_tokens"}
LEGACY_VIDEO_ENV = ("VIDEO_MAX_PIXELS", "VIDEO_MIN_PIXELS")


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

    def environment(self) -> dict[str, str]:
        """The environment that makes ms-swift sample and resize videos like this, with the pinned reader."""
        env = {name: str(getattr(self, key)) for key, name in VIDEO_ENV.items()}
        return {**env, "FPS": repr(float(self.fps)), READER_ENV: VIDEO_READER}

    @classmethod
    def from_manifest(cls, counting: dict[str, Any]) -> "VideoSettings":
        """The video settings of a cache's manifest `counting`; a cache from before videos were counted holds no
        video record and gets the defaults."""
        cached = counting.get("video") or {}
        return cls(**{item.name: cached[item.name] for item in fields(cls) if item.name in cached})

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "reader": VIDEO_READER, "reader_version": VIDEO_READER_VERSION}


@dataclass(frozen=True)
class CountSettings:
    """ms-swift's pixel limits, with its names and defaults (IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, MAX_RATIO), and
    the model family whose geometry turns them into pixels and grids into tokens."""

    image_max_tokens: int = 16384
    image_min_tokens: int = 4
    max_ratio: int = 200
    video: VideoSettings = field(default_factory=VideoSettings)
    family: ModelFamily = DEFAULT_FAMILY

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> "CountSettings":
        """The settings a cache was counted with (its manifest's `counting` and `processor.family`)."""
        counting = manifest["counting"]
        return cls(counting["image_max_tokens"], counting["image_min_tokens"], counting["max_ratio"],
                   VideoSettings.from_manifest(counting), family_of_manifest(manifest))

    @property
    def max_pixels(self) -> int:
        return self.image_max_tokens * self.family.pixels_per_token

    @property
    def min_pixels(self) -> int:
        return self.image_min_tokens * self.family.pixels_per_token

    def environment(self) -> dict[str, str]:
        """The environment that makes ms-swift resize exactly like this."""
        return {**{name: str(getattr(self, key)) for key, name in IMAGE_ENV.items()}, **self.video.environment()}

    def values(self) -> dict[str, Any]:
        """The settings as ms-swift takes them (the family follows from the model)."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name not in ("video", "family")
                } | {"video": asdict(self.video)}

    def to_json(self) -> dict[str, Any]:
        family = self.family
        return {**self.values(), "video": {**self.video.to_json(), "temporal_patch_size": family.temporal_patch},
                "max_pixels": self.max_pixels, "min_pixels": self.min_pixels, "patch_size": family.patch_size,
                "merge_size": family.spatial_merge}


def settings_fingerprint(settings: CountSettings) -> str:
    return hashlib.sha256(json.dumps(settings.to_json(), sort_keys=True).encode()).hexdigest()
