"""The counting settings: ms-swift's pixel limits for Qwen3-VL, with its names and defaults (no heavy imports here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

PATCH_SIZE = 16
MERGE_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE  # one image token per 32×32 pixels


class UnencodableImage(ValueError):
    """An image that cannot be encoded under the settings (training would fail on it too)."""


@dataclass(frozen=True)
class CountSettings:
    """ms-swift's pixel limits, with its names and defaults (IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, MAX_RATIO)."""

    image_max_tokens: int = 16384
    image_min_tokens: int = 4
    max_ratio: int = 200

    @property
    def max_pixels(self) -> int:
        return self.image_max_tokens * FACTOR * FACTOR

    @property
    def min_pixels(self) -> int:
        return self.image_min_tokens * FACTOR * FACTOR

    def swift_env(self) -> dict[str, str]:
        """The environment that makes ms-swift resize exactly like this."""
        return {"IMAGE_MAX_TOKEN_NUM": str(self.image_max_tokens), "IMAGE_MIN_TOKEN_NUM": str(self.image_min_tokens),
                "MAX_RATIO": str(self.max_ratio)}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "max_pixels": self.max_pixels, "min_pixels": self.min_pixels,
                "patch_size": PATCH_SIZE, "merge_size": MERGE_SIZE}


def settings_fingerprint(settings: CountSettings) -> str:
    return hashlib.sha256(json.dumps(settings.to_json(), sort_keys=True).encode()).hexdigest()
