"""Write: accepted records into Arrow splits ms-swift's `--cached_dataset` loads, rejected lines into rejects.jsonl.

Rows stream into a `datasets` ArrowWriter (bounded memory), then become a normal `save_to_disk` folder.
Columns: what ms-swift's template reads — `messages` (each turn as JSON: role, content, and `loss` when given),
`images`, `videos` (absolute paths), `tools`, `objects`, `channel`, `label` (null when the record has none) — `lengths`, and vlprep's provenance
and verified counts (`vlprep_source`, `vlprep_line`, `vlprep_index`: the input file, the line the record starts on and,
for an element of a JSON array, its index (null for JSONL); `vlprep_image_grid_thw`, `vlprep_image_tokens`, and each
image file's size, mtime and BLAKE2b digest when cached, so training can tell a changed image from a touched one:
vlprep.image_staleness; `vlprep_video_grid_thw`, `vlprep_video_tokens`). `messages`, `tools` and `objects` are JSON columns, as ms-swift's own loader stores them:
heterogeneous turns and tool schemas survive verbatim; `channel` and `label` too, since ms-swift passes any JSON value
on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Json, List, Value, concatenate_datasets, disable_progress_bars
from datasets.arrow_writer import ArrowWriter

from vlprep.diagnostics import RecordResult
from vlprep.image_staleness import cached_file_digest
from vlprep.normalize import CARRIED_KEYS
from vlprep.rules import Severity


def cache_features(embed_images: bool) -> Features:
    image = {"bytes": Value("binary"), "path": Value("string")} if embed_images else Value("string")
    return Features({
        "messages": List(Json()),
        "images": List(image),
        "videos": List(Value("string")),
        "tools": List(Json()),
        "objects": Json(),
        "channel": Json(),
        "label": Json(),
        "lengths": Value("int64"),
        "vlprep_source": Value("string"),
        "vlprep_line": Value("int64"),
        "vlprep_index": Value("int64"),  # null for JSONL
        "vlprep_image_grid_thw": List(List(Value("int64"))),
        "vlprep_image_tokens": Value("int64"),
        "vlprep_image_size": List(Value("int64")),  # bytes on disk when cached (-1: no file)
        "vlprep_image_mtime_ns": List(Value("int64")),
        "vlprep_image_blake2b": List(Value("string")),  # content digest when cached ("": no file)
        "vlprep_video_grid_thw": List(List(Value("int64"))),
        "vlprep_video_tokens": Value("int64"),
    })


def cache_row(result: RecordResult, embed_images: bool) -> dict[str, Any]:
    """The cached form of an accepted record: image references made absolute (or embedded as bytes)."""
    assert result.record is not None and result.counted is not None
    images: list[Any] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    digests: list[str] = []
    for ref, info in zip(result.record["images"], result.images):
        stat = os.stat(info.path) if info.path else None
        sizes.append(stat.st_size if stat else -1)
        mtimes.append(stat.st_mtime_ns if stat else -1)
        digests.append(cached_file_digest(info.path, stat.st_size, stat.st_mtime_ns) if stat else "")
        path = info.path or ref  # data URIs have no path: they stay as written
        if embed_images:
            images.append({"bytes": Path(info.path).read_bytes() if info.path else None, "path": path})
        else:
            images.append(path)
    return {
        "messages": result.record["messages"],
        "images": images,
        "videos": [header.path for header in result.videos],
        **{key: result.record.get(key) for key in CARRIED_KEYS},
        "lengths": result.counted.length,
        "vlprep_source": result.file,
        "vlprep_line": result.line,
        "vlprep_index": result.index,
        "vlprep_image_grid_thw": [list(grid) for grid in result.counted.grids],
        "vlprep_image_tokens": result.counted.image_tokens,
        "vlprep_image_size": sizes,
        "vlprep_image_mtime_ns": mtimes,
        "vlprep_image_blake2b": digests,
        "vlprep_video_grid_thw": [list(grid) for grid in result.counted.video_grids],
        "vlprep_video_tokens": result.counted.video_tokens,
    }


class ShardWriter:
    """Streams rows of one split of one shard into an Arrow file."""

    def __init__(self, path: Path, features: Features) -> None:
        self.path = path
        self.rows = 0
        self._writer = ArrowWriter(features=features, path=str(path))

    def write(self, row: dict[str, Any]) -> None:
        self._writer.write(row)
        self.rows += 1

    def close(self) -> None:
        self._writer.finalize()
        self._writer.close()


def save_split(shards: list[Path], out_dir: Path, fingerprint: str) -> int:
    """Concatenate a split's shard files, in order, into one `save_to_disk` folder; returns its row count.

    `fingerprint` is the dataset fingerprint saved in state.json. datasets would derive one from the shard paths, which
    differ between an interrupted-and-resumed build and an uninterrupted one; the caller passes one derived from what
    decides the content, so the same inputs and settings give byte-identical folders.
    """
    parts = [Dataset.from_file(str(path)) for path in shards]
    parts = [part for part in parts if len(part)]
    if not parts:
        return 0
    disable_progress_bars()  # vlprep shows its own progress
    joined = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    dataset = Dataset(joined.data, info=joined.info, split=joined.split, fingerprint=fingerprint)
    dataset.save_to_disk(str(out_dir))
    return len(dataset)


def concatenate_files(parts: list[Path], target: Path) -> None:
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out)


class RejectsWriter:
    """`rejects.jsonl`: one line per rejected input unit (a JSONL line, an array element or a stretch of an array's file
    that is no element), with its rule codes, messages and original text; `index` for an element of a JSON array."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "w", encoding="utf-8")
        self.rows = 0

    def write(self, result: RecordResult) -> list[str]:
        """Write the rejected line; return its rule codes."""
        errors = [d for d in result.diagnostics if d.severity is Severity.ERROR] or result.diagnostics
        entry = {
            "file": result.file,
            "line": result.line,
            **({} if result.index is None else {"index": result.index}),
            "codes": sorted({d.code for d in errors}),
            "message": "; ".join(d.message for d in errors) or "no record on this line",
            "text": result.text,
        }
        if result.counted is not None:
            entry["length"] = result.counted.length
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.rows += 1
        return entry["codes"]

    def close(self) -> None:
        self._handle.close()


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished staging folder into place; an existing target is moved aside first, then deleted."""
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
