"""Fixture data for the stats / show / report tests: records of varied lengths with a few images of known sizes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from PIL import Image

# (width, height) of the fixture images: small, wide, tall, large (capped by small limits), tiny (raised to the minimum)
IMAGE_SIZES = {"small": (320, 240), "wide": (1280, 360), "tall": (300, 900), "large": (2048, 1536), "tiny": (40, 30)}
WORDS = ("the quick brown fox jumps over a lazy dog while seven curious cats watch from the old stone wall "
         "under rain and bright moonlight").split()


def write_images(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, (name, size) in enumerate(IMAGE_SIZES.items()):
        paths[name] = folder / f"{name}.png"
        Image.new("RGB", size, (40 * index, 120, 200 - 30 * index)).save(paths[name])
    return paths


def varied_records(count: int, images: dict[str, Path], seed: int = 0) -> list[dict[str, Any]]:
    """Single- and multi-turn records, 0-3 images, replies from a few tokens to a few thousand."""
    rng = random.Random(seed)
    names = list(images)
    records = []
    for _ in range(count):
        picked = [str(images[rng.choice(names)]) for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 3)))]
        messages = []
        for turn in range(rng.choice((1, 1, 1, 2, 3))):
            tags = "<image>" * len(picked) if turn == 0 else ""
            messages.append({"role": "user", "content": tags + " ".join(rng.choices(WORDS, k=rng.randint(1, 60)))})
            reply = rng.choice((3, 30, 120, 600, 1800))
            messages.append({"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(1, reply)))})
        records.append({"messages": messages, "images": picked})
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]], extra_lines: tuple[str, ...] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
        for line in extra_lines:
            handle.write(line + "\n")
    return path
