"""Shared helpers for the benchmarks: real-size photo-like JPEGs and JSONL records that reference them.

- `ensure_images(folder, ImageParams(...))` generates N seeded JPEGs of 1–4 MP (quality 85) with a few truncated ones
  planted, and reuses them on later runs when `folder/manifest.json` says they were made with the same parameters;
- `ensure_records(path, images, n, seed=...)` writes n ms-swift `messages` records (1–3 images, 1–4 user/assistant
  rounds, sometimes a system turn, every record unique), also reused when its `.meta.json` sidecar matches;
- `PeakRss` polls a process tree's resident memory while it runs.

The images look like busy photos to a JPEG codec (≈2.5–3 bits/pixel at quality 85: smooth colour fields, luminance
detail and grain), so decode times are realistic; they are not meant to look like anything to a person.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops

GENERATOR_VERSION = 1
RECORDS_VERSION = 1
_ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3, 9 / 16)
_GRAIN_TILE = 509  # prime, so the tiled grain does not line up with the 8×8 DCT blocks


# --------------------------------------------------------------------------------------------------------- images

@dataclass(frozen=True)
class ImageParams:
    count: int = 200
    seed: int = 0
    quality: int = 85
    min_mp: float = 1.0
    max_mp: float = 4.0
    truncated: int = 5  # how many of the `count` images are cut short (planted corruption)
    cut: float = 0.6  # a truncated file keeps this fraction of its bytes


@dataclass(frozen=True)
class ImageEntry:
    file: str  # file name inside the image folder
    width: int
    height: int
    bytes: int
    truncated: bool


@dataclass
class ImageSet:
    folder: Path
    params: ImageParams
    entries: list[ImageEntry]

    def path(self, entry: ImageEntry) -> Path:
        return self.folder / entry.file

    @property
    def good(self) -> list[ImageEntry]:
        return [e for e in self.entries if not e.truncated]

    @property
    def broken(self) -> list[ImageEntry]:
        return [e for e in self.entries if e.truncated]

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries)

    def fingerprint(self) -> str:
        blob = json.dumps([asdict(self.params)] + [asdict(e) for e in self.entries], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def photo_like(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A seeded RGB image with photo-like JPEG statistics, built mostly with Pillow's C operations (fast)."""
    lw, lh = max(2, width // 128), max(2, height // 128)
    low = rng.integers(0, 256, (lh, lw, 3)).astype(np.float32)
    low = 0.45 * low + 0.55 * low.mean(axis=2, keepdims=True)  # mostly luminance, like real photos
    grad_y = np.linspace(-60, 60, lh, dtype=np.float32)[:, None, None] * rng.uniform(-1, 1)
    grad_x = np.linspace(-60, 60, lw, dtype=np.float32)[None, :, None] * rng.uniform(-1, 1)
    tint = rng.uniform(-25, 25, 3).astype(np.float32)
    base = Image.fromarray(np.clip(low + grad_y + grad_x + tint, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.BICUBIC)
    mw, mh = max(2, width // 5), max(2, height // 5)
    detail = Image.fromarray(rng.normal(128, 40, (mh, mw)).clip(0, 255).astype(np.uint8)).resize(
        (width, height), Image.BICUBIC)
    tile = rng.normal(128, 10, (_GRAIN_TILE, _GRAIN_TILE)).clip(0, 255).astype(np.uint8)
    reps = (height // _GRAIN_TILE + 1, width // _GRAIN_TILE + 1)
    grain = Image.fromarray(np.ascontiguousarray(np.tile(tile, reps)[:height, :width]))
    luminance = ImageChops.add(detail, grain, 1.0, -128).convert("RGB")
    return ImageChops.add(base, luminance, 1.0, -128)


def _image_size(params: ImageParams, index: int) -> tuple[int, int]:
    rng = random.Random(f"{params.seed}:size:{index}")
    pixels = rng.uniform(params.min_mp, params.max_mp) * 1_000_000
    aspect = rng.choice(_ASPECTS)
    width = int(round(math.sqrt(pixels * aspect)))
    return width, max(1, int(round(width / aspect)))


def _truncated_indices(params: ImageParams) -> set[int]:
    rng = random.Random(f"{params.seed}:truncated")
    return set(rng.sample(range(params.count), min(params.truncated, params.count)))


def _make_one(job: tuple[Path, ImageParams, int, bool]) -> ImageEntry:
    folder, params, index, truncated = job
    width, height = _image_size(params, index)
    image = photo_like(width, height, np.random.default_rng([params.seed, index]))
    name = f"img_{index:05d}.jpg"
    path = folder / name
    image.save(path, "JPEG", quality=params.quality)
    if truncated:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * params.cut)])
    return ImageEntry(name, width, height, path.stat().st_size, truncated)


def _load_manifest(folder: Path, params: ImageParams) -> ImageSet | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != GENERATOR_VERSION or manifest.get("params") != asdict(params):
        return None
    entries = [ImageEntry(**e) for e in manifest["entries"]]
    for entry in entries:
        try:
            if (folder / entry.file).stat().st_size != entry.bytes:
                return None
        except OSError:
            return None
    return ImageSet(folder, params, entries)


def ensure_images(folder: Path, params: ImageParams = ImageParams(), workers: int | None = None,
                  log: Any = print) -> ImageSet:
    """The image set for `params` in `folder`: reused when its manifest matches, generated (in parallel) otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    cached = _load_manifest(folder, params)
    if cached is not None:
        log(f"images: reusing {len(cached.entries)} images in {folder} ({cached.total_bytes / 1e6:,.0f} MB)")
        return cached
    started = time.perf_counter()
    for stale in folder.glob("img_*.jpg"):
        stale.unlink()
    (folder / "manifest.json").unlink(missing_ok=True)
    broken = _truncated_indices(params)
    jobs = [(folder, params, index, index in broken) for index in range(params.count)]
    workers = workers or max(1, min(len(os.sched_getaffinity(0)), 8))
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            entries = pool.map(_make_one, jobs, chunksize=4)
    else:
        entries = [_make_one(job) for job in jobs]
    images = ImageSet(folder, params, entries)
    manifest = {"version": GENERATOR_VERSION, "params": asdict(params), "entries": [asdict(e) for e in entries]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"images: generated {len(entries)} images in {folder} ({images.total_bytes / 1e6:,.0f} MB) "
        f"in {time.perf_counter() - started:.1f} s")
    return images


# -------------------------------------------------------------------------------------------------------- records

_SYSTEMS = ("You are a helpful visual assistant.", "You describe images precisely and briefly.",
            "Answer questions about the pictures you are shown.")
_QUESTIONS = ("Describe this scene.", "What stands out here?", "What colours dominate?", "Is anything unusual?",
              "Summarize what you see.", "Where might this have been taken?", "Count the main objects.",
              "What is in the foreground?", "Compare these views.", "What happens next?")
_ANSWERS = ("A busy scene with soft colour fields and fine grain.", "Mostly muted tones with a warm tint.",
            "Nothing unusual: an ordinary outdoor shot.", "The light comes from the upper left.",
            "Several overlapping shapes, none clearly in focus.", "It looks like a street at dusk.",
            "The foreground is darker than the background.", "The second view is brighter than the first.")


@dataclass
class RecordsInfo:
    path: Path
    records: int
    image_refs: int
    distinct_images: int
    broken_lines: list[int] = field(default_factory=list)  # 1-based lines referencing a truncated image


def _record(index: int, refs: list[str], rng: random.Random) -> dict[str, Any]:
    rounds = rng.randint(1, 4)
    messages: list[dict[str, str]] = []
    if rng.random() < 0.25:
        messages.append({"role": "system", "content": rng.choice(_SYSTEMS)})
    tag_round = sorted(rng.randrange(rounds) for _ in refs)  # which user turn carries each <image> tag
    for turn in range(rounds):
        tags = "<image>" * tag_round.count(turn)
        question = f"{tags}[{index}.{turn}] {rng.choice(_QUESTIONS)}"  # the index keeps every record unique
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": rng.choice(_ANSWERS)})
    return {"messages": messages, "images": refs}


def ensure_records(path: Path, images: ImageSet, n: int, seed: int = 0, min_images: int = 1, max_images: int = 3,
                   include_broken: bool = True, log: Any = print) -> RecordsInfo:
    """`n` records in ms-swift `messages` format referencing `images` (paths relative to the JSONL's folder).

    Reused when `path.meta.json` says it was written with the same parameters from the same image set.
    """
    meta_path = path.with_name(path.name + ".meta.json")
    params = {"version": RECORDS_VERSION, "n": n, "seed": seed, "min_images": min_images, "max_images": max_images,
              "include_broken": include_broken, "images": images.fingerprint()}
    try:
        meta = json.loads(meta_path.read_text())
        if meta["params"] == params and path.stat().st_size == meta["bytes"]:
            return RecordsInfo(path, meta["records"], meta["image_refs"], meta["distinct_images"], meta["broken_lines"])
    except (OSError, ValueError, KeyError):
        pass
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    pool = images.entries if include_broken else images.good
    rel = [os.path.relpath(images.path(e), path.parent) for e in pool]
    broken = {i for i, e in enumerate(pool) if e.truncated}
    rng = random.Random(f"{seed}:records")
    refs_total, used, broken_lines = 0, set(), []
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    with open(path, "w", encoding="utf-8") as out:
        lines = []
        for index in range(n):
            picks = rng.sample(range(len(pool)), rng.randint(min_images, min(max_images, len(pool))))
            refs_total += len(picks)
            used.update(picks)
            if broken.intersection(picks):
                broken_lines.append(index + 1)
            lines.append(dumps(_record(index, [rel[p] for p in picks], rng)))
            if len(lines) >= 4096:
                out.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            out.write("\n".join(lines) + "\n")
    info = RecordsInfo(path, n, refs_total, len(used), broken_lines)
    meta = {"params": params, "bytes": path.stat().st_size, "records": n, "image_refs": refs_total,
            "distinct_images": len(used), "broken_lines": broken_lines}
    meta_path.write_text(json.dumps(meta))
    log(f"records: wrote {n:,} records to {path} ({path.stat().st_size / 1e6:,.1f} MB) "
        f"in {time.perf_counter() - started:.1f} s")
    return info


# --------------------------------------------------------------------------------------------------------- memory

class PeakRss:
    """Poll a process and its descendants every `interval` s; keep the peak of the summed RSS and PSS (PSS read from
    smaps_rollup every `pss_every` polls). RSS double-counts pages forked workers share with the parent; PSS splits
    them, so the PSS peak is the better "real" footprint."""

    def __init__(self, pid: int, interval: float = 0.05, pss_every: int = 1) -> None:
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._interval = interval
        self._pss_every = pss_every
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _tree(self) -> list[Any]:
        try:
            return [self._root] + self._root.children(recursive=True)
        except self._psutil.Error:
            return []

    def _poll(self) -> None:
        psutil = self._psutil
        tick = 0
        while not self._stop.is_set():
            procs = self._tree()
            rss = pss = 0
            want_pss = tick % self._pss_every == 0
            for proc in procs:
                try:
                    if want_pss:
                        full = proc.memory_full_info()
                        rss += full.rss
                        pss += full.pss
                    else:
                        rss += proc.memory_info().rss
                except psutil.Error:
                    pass
            if procs:
                self.peak_rss = max(self.peak_rss, rss)
                self.peak_pss = max(self.peak_pss, pss)
                self.peak_procs = max(self.peak_procs, len(procs))
                self.samples += 1
            tick += 1
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class CpuWatch:
    """How much CPU this process (and its waited-for children) used over an interval, and how much everything else on
    the machine used meanwhile (steal time included): on a shared machine, wall times are only comparable when
    `others_share` stays small."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self.cores = len(os.sched_getaffinity(0))
        self._t0 = time.perf_counter()
        self._busy0 = self._busy()
        self._own0 = self._own()

    def _busy(self) -> float:
        t = self._psutil.cpu_times()
        return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))

    @staticmethod
    def _own() -> float:
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def stop(self) -> "CpuWatch":
        self.wall_s = time.perf_counter() - self._t0
        self.own_cpu_s = self._own() - self._own0
        self.others_cpu_s = max(0.0, self._busy() - self._busy0 - self.own_cpu_s)
        self.others_share = self.others_cpu_s / max(1e-9, self.wall_s * self.cores)
        return self


def add_data_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    """The options that say what data a benchmark generates, and where (read by ensure_bench_data)."""
    parser.add_argument("--records", type=int, default=2000, help="records (default 2000)")
    parser.add_argument("--images", type=int, default=200, help="distinct JPEGs (default 200)")
    parser.add_argument("--truncated", type=int, default=5, help="of which planted truncated (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=out, help="working folder")


def ensure_bench_data(out: Path, args: argparse.Namespace) -> tuple[ImageSet, RecordsInfo]:
    """The benchmark's images and records in `out` (generated once, reused), described on stdout."""
    params = ImageParams(count=args.images, seed=args.seed, truncated=args.truncated)
    images = ensure_images(out / "images", params)
    data = ensure_records(out / f"records-{args.records}.jsonl", images, args.records, seed=args.seed)
    pixels = [e.width * e.height / 1e6 for e in images.entries]
    print(f"data: {data.records:,} records, {data.image_refs:,} image refs ({data.distinct_images} distinct images, "
          f"{min(pixels):.1f}-{max(pixels):.1f} MP, mean {sum(pixels) / len(pixels):.1f} MP, "
          f"{images.total_bytes / 1e6:,.0f} MB on disk); {len(images.broken)} truncated images planted, "
          f"referenced by {len(data.broken_lines)} records")
    return images, data

# ---- output -------------------------------------------------------------------------------------------------------

def ratio(x: float) -> str:
    return f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))
