"""`vlprep cache`: lint, count and write an ms-swift-ready Arrow cache, atomically, accounting for every input line.

Every line ends in exactly one of train / val / rejects: train + val + rejected = input lines, asserted before the
cache is moved into place and recorded in the manifest. The cache is built in a hidden staging folder beside the
target and renamed at the end, so an interrupted run leaves no half cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlprep.diagnostics import RecordResult
from vlprep.engine import MAX_LINE_BYTES_DEFAULT, run
from vlprep.lint import Tally
from vlprep.manifest import (CACHE_FORMAT, MANIFEST_NAME, MANIFEST_VERSION, data_file_checksums, file_sha256,
                             is_cache_dir, library_versions, now_iso)
from vlprep.pipeline import PipelineOptions
from vlprep.processor import load_processor, processor_fingerprint, resolve_model_dir
from vlprep.reader import count_lines
from vlprep.rules import RULES
from vlprep.tokens import CountSettings, TokenCounter, settings_fingerprint
from vlprep.verify import Sample, verify_sample
from vlprep.writer import RejectsWriter, SplitWriter, cache_features, cache_row, replace_dir


class CacheError(RuntimeError):
    """A problem with the request (output folder, options): reported as a usage error."""


@dataclass(frozen=True)
class CacheRequest:
    train_files: list[Path]
    out: Path
    val_files: list[Path] = field(default_factory=list)
    val_ratio: float = 0.0
    seed: int = 42
    model: str | None = None
    trust_remote_code: bool = False
    settings: CountSettings = field(default_factory=CountSettings)
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    max_length: int | None = None
    embed_images: bool = False
    verify: int | None = 64  # None: every record
    workers: int = 1
    force: bool = False
    max_line_bytes: int = MAX_LINE_BYTES_DEFAULT


@dataclass
class LengthStats:
    lengths: array = field(default_factory=lambda: array("l"))

    def add(self, length: int) -> None:
        self.lengths.append(length)

    def to_json(self) -> dict[str, Any]:
        if not self.lengths:
            return {"records": 0}
        ordered = sorted(self.lengths)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {"records": len(ordered), "tokens": sum(ordered), "min": ordered[0], "max": ordered[-1],
                "mean": round(statistics.fmean(ordered), 2), "p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99)}


def in_val(seed: int, file_index: int, line: int, ratio: float) -> bool:
    """Deterministic split: a hash of (seed, file position, line), independent of worker count and machine."""
    if ratio <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{file_index}:{line}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < ratio


def check_output_folder(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CacheError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not is_cache_dir(out):
            raise CacheError(f"--out {out} exists and is not a vlprep cache; refusing to replace it")
        if not force:
            raise CacheError(f"--out {out} already holds a vlprep cache; pass --force to replace it")


def describe_inputs(files: list[Path], role: str) -> list[dict[str, Any]]:
    return [{"path": str(file.resolve()), "role": role, "size": file.stat().st_size, "sha256": file_sha256(file),
             "lines": count_lines(file)} for file in files]


@dataclass
class BuildOutcome:
    manifest: dict[str, Any]
    rejects_by_code: Counter[str]


def build_cache(request: CacheRequest, progress: Any = None) -> BuildOutcome:
    """Build the cache; `progress(results, total)` may wrap the result stream (a progress bar)."""
    check_output_folder(request.out, request.force)
    processor = load_processor(request.model, request.trust_remote_code)
    model_dir = str(resolve_model_dir(request.model, request.trust_remote_code))
    counter = TokenCounter(processor.tokenizer, request.settings)
    inputs = describe_inputs(request.train_files, "train") + describe_inputs(request.val_files, "val")
    total_lines = sum(entry["lines"] for entry in inputs)
    staging = request.out.parent / f".{request.out.name}.vlprep-staging-{os.getpid()}"
    request.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    (staging / ".work").mkdir(parents=True)
    try:
        manifest, rejects_by_code = _write_staging(request, counter, model_dir, staging, inputs, progress)
        manifest["processor"] = {"model": request.model or "embedded", "fingerprint": processor_fingerprint(processor),
                                 "template": "qwen3_vl", "trust_remote_code": request.trust_remote_code}
        assert manifest["counts"]["input_lines"] == total_lines, "every input line must be accounted for"
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        replace_dir(staging, request.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildOutcome(manifest, rejects_by_code)


def _results(request: CacheRequest, counter: TokenCounter) -> Iterator[tuple[int, RecordResult]]:
    """(file index, result) for every line of the train files, then of the val files."""
    options = PipelineOptions(image_root=request.pipeline.image_root, limits=request.pipeline.limits,
                              max_images=request.pipeline.max_images, max_depth=request.pipeline.max_depth,
                              keep_records=True, counting=request.settings, max_length=request.max_length)
    files = request.train_files + request.val_files
    index_of = {str(file): index for index, file in enumerate(files)}
    for result in run(files, options, request.workers, request.max_line_bytes, counter_factory=lambda: counter):
        yield index_of[result.file], result


def _write_staging(request: CacheRequest, counter: TokenCounter, model_dir: str, staging: Path,
                   inputs: list[dict[str, Any]], progress: Any) -> tuple[dict[str, Any], Counter[str]]:
    features = cache_features(request.embed_images)
    splits = {name: SplitWriter(staging / ".work", name, features) for name in ("train", "val")}
    stats = {name: LengthStats() for name in splits}
    rejects = RejectsWriter(staging / "rejects.jsonl")
    rejects_by_code: Counter[str] = Counter()
    tally = Tally(frozenset(RULES))
    sample = Sample(request.verify, request.seed)
    train_count = len(request.train_files)
    results: Iterable[tuple[int, RecordResult]] = _results(request, counter)
    if progress is not None:
        results = progress(results, sum(entry["lines"] for entry in inputs))
    try:
        for file_index, result in results:
            tally.observe(result)
            if result.record is None or result.counted is None or result.has_errors(tally.active):
                rejects_by_code.update(rejects.write(result))
                continue
            is_val = file_index >= train_count or in_val(request.seed, file_index, result.line, request.val_ratio)
            split = "val" if is_val else "train"
            splits[split].write(cache_row(result, request.embed_images))
            stats[split].add(result.counted.length)
            sample.offer(result.file, result.line, result.record, result.images)
    finally:
        rejects.close()
    for writer in splits.values():
        writer.save(staging)
    shutil.rmtree(staging / ".work")
    verified = verify_sample(sample, counter, model_dir)
    counts = {"input_lines": tally.records, "train": splits["train"].rows, "val": splits["val"].rows,
              "rejected": rejects.rows}
    counts["identity_holds"] = counts["train"] + counts["val"] + counts["rejected"] == counts["input_lines"]
    manifest = {
        "format": CACHE_FORMAT,
        "version": MANIFEST_VERSION,
        "created": now_iso(),
        "tool": library_versions(),
        "counting": {**request.settings.to_json(), "fingerprint": settings_fingerprint(request.settings)},
        "max_length": request.max_length,
        "image_check": {"full_decode": request.pipeline.limits.full_decode,
                        "max_image_pixels": request.pipeline.limits.max_pixels},
        "images": {"embedded": request.embed_images,
                   "root": str(request.pipeline.image_root) if request.pipeline.image_root else None},
        "inputs": inputs,
        "split": {"val_ratio": request.val_ratio, "seed": request.seed,
                  "val_files": [str(file.resolve()) for file in request.val_files]},
        "counts": counts,
        "lengths": {name: value.to_json() for name, value in stats.items()},
        "rejects_by_code": dict(sorted(rejects_by_code.items())),
        "warnings_by_code": {code: n for code, n in sorted(tally.counts.items()) if RULES[code].severity.value != "error"},
        "verification": {"image_pad_count": "asserted for every record",
                         "ms_swift_template": {"mode": "all" if request.verify is None else "sample",
                                               "records_checked": verified, "mismatches": 0}},
        "data_files": data_file_checksums(staging),
    }
    return manifest, rejects_by_code
