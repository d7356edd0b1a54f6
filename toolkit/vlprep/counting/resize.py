"""qwen-vl-utils' `smart_resize`, as arithmetic only: the image size ms-swift's Qwen3-VL template resizes to.

qwen_vl_utils imports torch and torchvision (seconds) for this one function; counting needs only the arithmetic. The
result and the conditions that raise are the same as `qwen_vl_utils.smart_resize` (tests/test_resize.py compares them
over a dense grid of sizes, aspect ratios and pixel limits). Where qwen-vl-utils reads MAX_RATIO from its module, this
takes it as an argument.
"""

from __future__ import annotations

import math


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int,
                 max_ratio: float = 200) -> tuple[int, int]:
    """(height, width) divisible by `factor`, with min_pixels <= height·width <= max_pixels, aspect ratio kept."""
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels {max_pixels} is smaller than min_pixels {min_pixels}")
    if max(height, width) / min(height, width) > max_ratio:
        raise ValueError(f"absolute aspect ratio must be smaller than {max_ratio}, "
                         f"got {max(height, width) / min(height, width)}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar
