"""Are the image files a cache refers to still the ones that were cached? Shared by `vlprep inspect` and `vltrain fit`.

Each cached row records, per image file, its size, mtime and a BLAKE2b digest of its bytes at cache time. A file whose
size and mtime are unchanged is taken as unchanged (no read); one whose size or mtime moved is read and hashed: the same
content is only "touched" (a copy, `touch`, a checkout), different content is "changed".
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any
from vlprep.errors import ProblemsFound

SAMPLE_SIZE = 64
MODES = ("sample", "all", "none")


class ImagesMode(str, Enum):
    """--verify-images of `vlprep inspect` and `vltrain fit`: MODES, and `off` as another name for `none`."""

    sample = "sample"
    all = "all"
    none = "none"
    off = "off"
COLUMNS = ("images", "vlprep_image_size", "vlprep_image_mtime_ns", "vlprep_image_blake2b")


class StaleCheckError(ProblemsFound):
    """The cache cannot be checked (written by another vlprep version)."""


def file_digest(path: str) -> str:
    """BLAKE2b (32-byte digest) of a file's bytes."""
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=65_536)
def cached_file_digest(path: str, size: int, mtime_ns: int) -> str:
    """`file_digest`, computed once per (path, size, mtime): datasets reference one image from many records."""
    return file_digest(path)


@dataclass
class ImageReport:
    mode: str
    total: int = 0  # distinct image files the cache refers to
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # size/mtime moved, content the same
    embedded: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed)

    def describe(self) -> str:
        if self.embedded:
            return "images are embedded in the cache"
        if self.mode == "none":
            return f"{self.total} cached image file(s) not checked (--verify-images none)"
        scope = (f"all {self.total}" if self.checked == self.total
                 else f"a sample ({self.checked} of {self.total}) of the")
        touched = (f"; {len(self.touched)} touched but unchanged (same content, e.g. {self.touched[0]})"
                   if self.touched else "")
        if self.ok:
            return f"{scope} cached image files present and unchanged{touched}"
        problems = [f"{len(self.missing)} missing (e.g. {self.missing[0]})"] if self.missing else []
        problems += [f"{len(self.changed)} changed since caching (content differs): {', '.join(self.changed[:5])}"
                     ] if self.changed else []
        return f"checked {scope} cached image files: " + "; ".join(problems) + touched

    def fix(self) -> str:
        if self.ok:
            return ""
        return ("restore the images or rebuild the cache (`vlprep cache --embed-images` carries them inside the "
                "cache); or, at your own risk, --verify-images none skips this check")

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "embedded": self.embedded, "total": self.total, "checked": self.checked,
                "missing": self.missing, "changed": self.changed, "touched_unchanged": self.touched, "ok": self.ok}


def check_cached_images(cache_dir: Path, manifest: dict[str, Any], mode: str = "sample") -> ImageReport:
    """Check every (`all`), a sample of 64 (`sample`) or none of the cache's image files. The sample is seeded with
    the cache's own seed, so `vlprep inspect` and `vltrain fit` check the same files."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if manifest["images"]["embedded"]:
        return ImageReport(mode, embedded=True)
    recorded = _recorded_files(cache_dir)
    report = ImageReport(mode, total=len(recorded))
    if mode == "none":
        return report
    paths = sorted(recorded)
    if mode == "sample" and len(paths) > SAMPLE_SIZE:
        paths = random.Random(manifest["split"]["seed"]).sample(paths, SAMPLE_SIZE)
    report.checked = len(paths)
    for path in paths:
        size, mtime, digest = recorded[path]
        try:
            stat = os.stat(path)
            if (stat.st_size, stat.st_mtime_ns) == (size, mtime):
                continue
            same = file_digest(path) == digest
        except OSError:
            report.missing.append(path)
            continue
        (report.touched if same else report.changed).append(path)
    return report


def _recorded_files(cache_dir: Path) -> dict[str, tuple[int, int, str]]:
    from datasets import load_from_disk

    files: dict[str, tuple[int, int, str]] = {}
    for split in ("train", "val"):
        if not (cache_dir / split).is_dir():
            continue
        dataset = load_from_disk(str(cache_dir / split))
        if not set(COLUMNS) <= set(dataset.column_names):
            raise StaleCheckError(f"{cache_dir / split} lacks the columns {', '.join(COLUMNS)}: it was written by "
                                  "another vlprep version; rebuild the cache")
        for row in dataset.select_columns(list(COLUMNS)):
            for path, size, mtime, digest in zip(*(row[name] for name in COLUMNS)):
                if size >= 0:
                    files[path] = (size, mtime, digest)
    return files
