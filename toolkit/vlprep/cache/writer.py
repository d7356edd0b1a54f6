"""Write: accepted records into Arrow splits ms-swift's `--cached_dataset` loads, rejected lines into rejects.jsonl.

Rows stream into Arrow IPC shard files (bounded memory), then are joined into the folder layout `datasets`'
`save_to_disk` writes (`data-NNNNN-of-NNNNN.arrow`, `dataset_info.json`, `state.json`), which its `load_from_disk` and so
ms-swift read. pyarrow writes it: importing `datasets` would cost a build two seconds before its first record
(`tests/test_cache.py::test_cache_folder_is_what_datasets_itself_writes` checks the layout against `datasets`).
Columns: what ms-swift's template reads — `messages` (each turn as JSON: role, content, and `loss` when given),
`images`, `videos` (absolute paths), `tools`, `objects`, `channel`, `label` (null when the record has none) — `lengths`, and vlprep's provenance
and verified counts (`vlprep_source`, `vlprep_line`, `vlprep_index`: the input file, the line the record starts on and,
for an element of a JSON array, its index (null for JSONL); `vlprep_image_grid_thw`, `vlprep_image_tokens`, and each
image file's size, mtime and BLAKE2b digest when cached, so training can tell a changed image from a touched one:
vlprep.cache.image_staleness; `vlprep_video_grid_thw`, `vlprep_video_tokens`; `vlprep_trained_tokens` and per turn
`vlprep_turn_roles`, `vlprep_turn_tokens`, `vlprep_turn_trained`, which `vlprep stats` reads). `messages`, `tools` and `objects` are JSON columns, as ms-swift's own loader stores them:
heterogeneous turns and tool schemas survive verbatim; `channel` and `label` too, since ms-swift passes any JSON value
on.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from vlprep.records.diagnostics import RecordResult
from vlprep.cache.image_staleness import cached_file_digest
from vlprep.records.canonical import CARRIED_KEYS
from vlprep.errors import MachineFault
from vlprep.records.rules import Severity

MAX_SHARD_BYTES = 500 << 20  # datasets' default max_shard_size for save_to_disk
BATCH_ROWS = 256
BATCH_BYTES = 32 << 20  # embedded images: flush before a batch holds more than this


def _value(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "_type": "Value"}


def _list(feature: dict[str, Any]) -> dict[str, Any]:
    return {"feature": feature, "_type": "List"}


_JSON: dict[str, Any] = {"_type": "Json"}
_VALUE_TYPES = {"string": pa.string(), "binary": pa.binary(), "int64": pa.int64()}


def cache_features(embed_images: bool) -> dict[str, Any]:
    """The split's columns as `datasets` describes them (`Features.to_dict()`): the form stored in the folder."""
    image = {"bytes": _value("binary"), "path": _value("string")} if embed_images else _value("string")
    return {
        "messages": _list(_JSON),
        "images": _list(image),
        "videos": _list(_value("string")),
        "tools": _list(_JSON),
        "objects": _JSON,
        "channel": _JSON,
        "label": _JSON,
        "lengths": _value("int64"),
        "vlprep_source": _value("string"),
        "vlprep_line": _value("int64"),
        "vlprep_index": _value("int64"),  # null for JSONL
        "vlprep_image_grid_thw": _list(_list(_value("int64"))),
        "vlprep_image_tokens": _value("int64"),
        "vlprep_image_size": _list(_value("int64")),  # bytes on disk when cached (-1: no file)
        "vlprep_image_mtime_ns": _list(_value("int64")),
        "vlprep_image_blake2b": _list(_value("string")),  # content digest when cached ("": no file)
        "vlprep_video_grid_thw": _list(_list(_value("int64"))),
        "vlprep_video_tokens": _value("int64"),
        # per-row facts `vlprep stats` reads instead of encoding again: trained tokens, and each turn's role, tokens
        # and trained tokens
        "vlprep_trained_tokens": _value("int64"),
        "vlprep_turn_roles": _list(_value("string")),
        "vlprep_turn_tokens": _list(_value("int64")),
        "vlprep_turn_trained": _list(_value("int64")),
    }


def _arrow_type(feature: dict[str, Any], storage: bool) -> pa.DataType:
    """The Arrow type of a feature; with `storage`, JSON columns as the strings that hold them."""
    kind = feature.get("_type")
    if kind == "Value":
        return _VALUE_TYPES[feature["dtype"]]
    if kind == "List":
        return pa.list_(_arrow_type(feature["feature"], storage))
    if kind == "Json":
        return pa.string() if storage else pa.json_()
    return pa.struct([(name, _arrow_type(field, storage)) for name, field in feature.items()])


def arrow_schema(features: dict[str, Any], storage: bool = False) -> pa.Schema:
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema([(name, _arrow_type(feature, storage)) for name, feature in features.items()], metadata=metadata)


def _as_json(value: Any) -> str:
    """A JSON column's value as stored; a missing value as `null`, the way `datasets` encodes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
        "vlprep_trained_tokens": result.counted.trained_tokens,
        "vlprep_turn_roles": [turn.role for turn in result.counted.turns],
        "vlprep_turn_tokens": [turn.tokens for turn in result.counted.turns],
        "vlprep_turn_trained": [turn.trained for turn in result.counted.turns],
    }


def as_stored(row: dict[str, Any]) -> dict[str, Any]:
    """The row exactly as `--cached_dataset` reads it back: through the split's Arrow schema and out again (absent
    keys, nulls and JSON columns come back as datasets returns them). Images as paths: embedded bytes decode to the same
    pixels."""
    from datasets import Dataset, Features  # lazy: only ms-swift's encoder child reads rows back

    features = Features.from_dict(cache_features(embed_images=False))
    return Dataset.from_list([{key: row.get(key) for key in features}], features=features)[0]


def _stored_row(row: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """The row with its JSON columns serialized, as the Arrow storage holds them."""
    stored = dict(row)
    for name, feature in features.items():
        if feature == _JSON:
            stored[name] = _as_json(row.get(name))
        elif feature.get("feature") == _JSON:
            stored[name] = None if row.get(name) is None else [_as_json(item) for item in row[name]]
    return stored


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """pyarrow's OSErrors name no file: name `path` in them, for the message (vlprep.errors.machine_fault)."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            error.filename = str(path)
        raise


class ShardWriter:
    """Streams rows of one split of one shard into an Arrow IPC stream file, a batch at a time.

    A batch is parsed from JSON lines by pyarrow's JSON reader against the storage schema: building it from Python
    objects (`pa.array`) would import pandas, a quarter second a build would pay before its first row. Embedded image
    bytes have no JSON form; that column alone is built with `pa.array`.
    """

    def __init__(self, path: Path, features: dict[str, Any]) -> None:
        self.path = path
        self.rows = 0
        self._features = features
        self._schema = arrow_schema(features)
        storage = arrow_schema(features, storage=True)
        self._embedded = pa.types.is_struct(storage.field("images").type.value_type)
        self._json_schema = storage.remove(storage.get_field_index("images")) if self._embedded else storage
        with naming(path):
            self._writer = pa.ipc.new_stream(str(path), self._schema)
        self._lines: list[bytes] = []
        self._images: list[list[dict[str, Any]]] = []
        self._pending_bytes = 0

    def write(self, row: dict[str, Any]) -> None:
        stored = _stored_row(row, self._features)
        if self._embedded:
            images = stored.pop("images")
            self._images.append(images)
            self._pending_bytes += sum(len(image["bytes"] or b"") for image in images)
        line = json.dumps(stored, ensure_ascii=False).encode("utf-8")
        self._lines.append(line)
        self._pending_bytes += len(line)
        self.rows += 1
        if len(self._lines) >= BATCH_ROWS or self._pending_bytes >= BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            text = b"\n".join(self._lines)
            table = pa_json.read_json(
                pa.BufferReader(text),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=len(text) + 1),
                parse_options=pa_json.ParseOptions(explicit_schema=self._json_schema,
                                                   unexpected_field_behavior="error"))
            if self._embedded:
                images = pa.array(self._images, type=self._schema.field("images").type)
                table = table.add_column(self._schema.get_field_index("images"), "images", images)
            with naming(self.path):
                for batch in table.cast(self._schema).to_batches():
                    self._writer.write_batch(batch)
        self._lines, self._images, self._pending_bytes = [], [], 0

    def close(self) -> None:
        self._flush()
        with naming(self.path):
            self._writer.close()


def save_split(shards: list[Path], out_dir: Path, fingerprint: str, keep: list[bool] | None = None) -> int:
    """Join a split's shard files, in order, into one `save_to_disk` folder; returns its row count.

    Data files roll over at `MAX_SHARD_BYTES`, like `save_to_disk`'s. `fingerprint` is the dataset fingerprint saved
    in state.json: derived by the caller from what decides the content, so the same inputs and settings give
    byte-identical folders whether or not the build was interrupted and resumed. `keep`, when given, selects rows by
    their position across all the shards (the picture-group split, vlprep.cache.split).
    """
    with naming(out_dir):
        return _save_split(shards, out_dir, fingerprint, keep)


def _save_split(shards: list[Path], out_dir: Path, fingerprint: str, keep: list[bool] | None) -> int:
    written: list[Path] = []
    writer: pa.ipc.RecordBatchStreamWriter | None = None
    rows = size = seen = 0
    features: dict[str, Any] = {}
    for path in shards:
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            features = json.loads(reader.schema.metadata[b"huggingface"])["info"]["features"]
            for batch in reader:
                if keep is not None:
                    seen, batch = seen + batch.num_rows, batch.filter(pa.array(keep[seen:seen + batch.num_rows]))
                if not batch.num_rows:
                    continue
                if writer is None or size + batch.nbytes > MAX_SHARD_BYTES:
                    if writer is not None:
                        writer.close()
                    out_dir.mkdir(parents=True, exist_ok=True)
                    written.append(out_dir / f".part-{len(written):05d}.arrow")
                    writer = pa.ipc.new_stream(str(written[-1]), reader.schema)
                    size = 0
                writer.write_batch(batch)
                rows += batch.num_rows
                size += batch.nbytes
    if writer is None:
        return 0
    writer.close()
    names = [f"data-{index:05d}-of-{len(written):05d}.arrow" for index in range(len(written))]
    for part, name in zip(written, names):
        part.rename(out_dir / name)
    info = {"citation": "", "description": "", "features": features, "homepage": "", "license": ""}
    (out_dir / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": None}
    (out_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    return rows


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


def refuse_when_clearly_full(inputs: list[Path], out: Path) -> None:
    """Refuse a build the disk of `out` clearly cannot hold: it writes at least twice its inputs' bytes (the shards,
    then the assembled splits; measured: about 3.5 times a JSONL's bytes at the peak), and compressed inputs count
    as stored, so the figure is a lower bound."""
    need = 2 * sum(file.stat().st_size for file in inputs if file.is_file())
    folder = next((parent for parent in (out, *out.parents) if parent.exists()), Path("."))
    free = shutil.disk_usage(folder).free
    if free < need:
        raise MachineFault(f"{folder} has {free / 1e6:,.1f} MB free; this cache build writes at least "
                           f"{need / 1e6:,.1f} MB there (twice its inputs' size: the shards, then the assembled "
                           "splits), so it did not start",
                           fix="free space on that disk, or give --out on a disk with more room")


def replace_dir(staging: Path, target: Path) -> None:
    """Move a finished staging folder into place; an existing target is moved aside first, then deleted."""
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
