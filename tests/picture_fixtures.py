"""Generated pictures for the near-duplicate tests and bench/near_duplicates.py: landscapes of one scene type (sky,
horizon, hills, a sun, trees, sensor noise) that differ picture to picture, and the copies a scraped dataset holds of
one picture (re-encoded, resized, PNG, lightly cropped)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(seed: int, width: int = 480, height: int = 360) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = rng.randint(height // 3, 2 * height // 3)
    top, bottom = [rng.randint(60, 200) for _ in range(3)], [rng.randint(150, 255) for _ in range(3)]
    for y in range(horizon):
        t = y / horizon
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    draw.rectangle([0, horizon, width, height], fill=(rng.randint(20, 90), rng.randint(80, 160), rng.randint(20, 90)))
    for _ in range(rng.randint(2, 5)):
        x, radius = rng.randint(0, width), rng.randint(40, 160)
        grey = rng.randint(30, 120)
        draw.ellipse([x - radius, horizon - radius // 2, x + radius, horizon + radius // 2],
                     fill=(grey, grey, rng.randint(30, 90)))
    x, y, radius = rng.randint(20, width - 20), rng.randint(10, horizon), rng.randint(10, 40)
    sun = (255, rng.randint(200, 255), rng.randint(0, 120))
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=sun)
    for _ in range(rng.randint(3, 12)):
        x, y, tall = rng.randint(0, width), rng.randint(horizon, height), rng.randint(20, 80)
        draw.rectangle([x - 3, y - tall, x + 3, y], fill=(90, 60, 30))
        draw.ellipse([x - tall // 3, y - tall - tall // 3, x + tall // 3, y - tall + tall // 4],
                     fill=(20, rng.randint(90, 150), 30))
    noise = np.random.default_rng(seed).normal(0, 8, (height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(0.8))


def save_copies(seed: int, folder: Path, crop_percent: int = 3) -> dict[str, Path]:
    """One picture saved five ways in `folder`: JPEG q95 (the original), re-encoded from it at q70, half size at q70,
    PNG, and cropped by `crop_percent` % on each side (JPEG q90)."""
    folder.mkdir(parents=True, exist_ok=True)
    image = scene(seed)
    width, height = image.size
    paths = {name: folder / f"{seed}_{name}.{'png' if name == 'png' else 'jpg'}"
             for name in ("q95", "q70", "half", "png", "crop")}
    image.save(paths["q95"], "JPEG", quality=95)
    original = Image.open(paths["q95"]).convert("RGB")
    original.save(paths["q70"], "JPEG", quality=70)
    original.resize((width // 2, height // 2), Image.Resampling.LANCZOS).save(paths["half"], "JPEG", quality=70)
    original.save(paths["png"], "PNG")
    dx, dy = width * crop_percent // 100, height * crop_percent // 100
    original.crop((dx, dy, width - dx, height - dy)).save(paths["crop"], "JPEG", quality=90)
    return paths
