"""`vlprep stats`: what training will get, from a cache (its rows) or from JSONL (header-only counting, nothing written).

Every accepted record becomes a `RowFacts`: its length (ms-swift's `lengths`), image, video and trained tokens (labels ≠ -100,
from `TokenCounter.encode`, the same labels `vlprep show` prints), its turns and its images' header sizes (for the
what-if pixel limits, which change only the image tokens: the text side of a record does not depend on them).
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from vlprep.records.diagnostics import ImageInfo, RecordResult
from vlprep.counting.settings import CountSettings, UnencodableImage
from vlprep.counting.turns import Turn, split_turns
from vlprep.errors import UsageError
from vlprep.models.family import ModelFamily

REJECT_EXAMPLES = 3  # examples kept per rule code


class StatsError(UsageError):
    """A problem with the input (not a cache, unreadable row): reported as a usage error."""


@dataclass
class RowFacts:
    length: int
    image_tokens: int
    trained_tokens: int
    images: int
    turns: list[Turn]
    image_sizes: list[tuple[int, int]]  # (width, height) as the header says; [] when not read
    video_tokens: int = 0
    videos: int = 0


@dataclass
class Collected:
    source: str  # "cache", or "inputs" (JSONL, JSON arrays, Parquet, ... read and counted)
    paths: list[str]
    rows: list[RowFacts]
    settings: CountSettings
    max_length: int | None
    rejects_by_code: Counter[str] = field(default_factory=Counter)
    reject_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    input_lines: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. an older cache whose rows were encoded again


@dataclass(frozen=True)
class CountedFacts:
    """What `FactsCounter.count` returns: a `CountedRecord` (length, image_tokens, grids) plus trained tokens and turns."""

    length: int
    image_tokens: int
    grids: tuple[tuple[int, int, int], ...]
    trained_tokens: int
    turns: list[Turn]
    video_tokens: int = 0
    videos: int = 0


class FactsCounter:
    """A TokenCounter that also keeps the labels' facts: the pipeline's workers count with it, so each record is
    encoded once, in parallel."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        self.settings = counter.settings

    def count(self, record: dict[str, Any], images: list[ImageInfo], videos: tuple[Any, ...] = ()) -> CountedFacts:
        encoded = self.counter.encode(record, images, videos)
        family = self.settings.family
        image_tokens = family.tokens_per_grids(encoded.grids)
        video_tokens = family.tokens_per_grids(encoded.video_grids)
        return CountedFacts(len(encoded.input_ids), image_tokens, encoded.grids,
                            sum(1 for label in encoded.labels if label != -100),
                            split_turns(encoded.input_ids, encoded.labels, self.counter.backend.id_to_token,
                                        family.im_start.id),
                            video_tokens, len(encoded.video_grids))


def row_facts(counted: CountedFacts, sizes: list[tuple[int, int]]) -> RowFacts:
    return RowFacts(counted.length, counted.image_tokens, counted.trained_tokens, len(counted.grids), counted.turns,
                    sizes, counted.video_tokens, counted.videos)


# ---- a cache --------------------------------------------------------------------------------------------------

def load_cache(cache_dir: Path) -> dict[str, Any]:
    from vlprep.cache.manifest import ManifestError, load_manifest

    try:
        return load_manifest(cache_dir)
    except ManifestError as error:
        raise StatsError(str(error)) from None


def cache_split(cache_dir: Path, split: str = "train") -> Any:
    from datasets import load_from_disk

    return load_from_disk(str(cache_dir / split))


def cached_record(row: dict[str, Any], family: ModelFamily) -> tuple[dict[str, Any], list[ImageInfo]]:
    """The canonical record of a cache row (every column ms-swift reads) and image infos that reproduce its grids."""
    record = {key: value for key, value in row.items() if key != "lengths" and not key.startswith("vlprep_")}
    record["images"] = [image["path"] if isinstance(image, dict) else image for image in row["images"]]
    patch = family.patch_size
    infos = [ImageInfo(width=w * patch, height=h * patch, format="", mode="", path="")
             for _, h, w in row["vlprep_image_grid_thw"]]  # a resized size resizes to itself
    return record, infos


def cached_video_headers(row: dict[str, Any], index: int) -> tuple[Any, ...]:
    """The container headers of a cache row's videos (read again: the row keeps only their paths and grids)."""
    from vlprep.checks.videos import check_video

    headers = []
    for ref in row.get("videos") or []:
        checked = check_video(ref, Path("/"), None, full_decode=False)
        if checked.header is None:
            raise StatsError(f"row {index} (from {row['vlprep_source']}:{row['vlprep_line']}): video {ref} cannot be "
                             f"read: {'; '.join(message for _, message in checked.problems)}")
        headers.append(checked.header)
    return tuple(headers)


def image_source(image: Any) -> Any:
    """What PIL can open for a cached image: embedded bytes, a data URI's bytes, or the file path."""
    import base64

    if isinstance(image, dict):
        if image.get("bytes"):
            return io.BytesIO(image["bytes"])
        image = image["path"]
    if isinstance(image, str) and image.startswith("data:") and "," in image:
        return io.BytesIO(base64.b64decode(image.split(",", 1)[1]))
    return image


def header_size(image: Any) -> tuple[int, int]:
    """(width, height) of a cached image from its header."""
    from PIL import Image

    with Image.open(image_source(image)) as opened:
        return opened.size


_forked: dict[str, Any] = {}  # what the forked cache workers read: the split, the counter, with_sizes


def _cache_rows(bounds: tuple[int, int]) -> list[RowFacts]:
    dataset, counter, with_sizes = _forked["dataset"], _forked["counter"], _forked["with_sizes"]
    rows = []
    for index in range(*bounds):
        row = dataset[index]
        record, infos = cached_record(row, counter.settings.family)
        try:
            sizes = [header_size(image) for image in row["images"]] if with_sizes else []
        except (OSError, ValueError) as error:
            raise StatsError(f"row {index} (from {row['vlprep_source']}:{row['vlprep_line']}): an image cannot be "
                             f"read for the what-if sizes: {error}") from None
        rows.append(row_facts(counter.count(record, infos, cached_video_headers(row, index)), sizes))
    return rows


STORED_FACTS = ("vlprep_trained_tokens", "vlprep_turn_roles", "vlprep_turn_tokens", "vlprep_turn_trained")


def stored_rows(dataset: Any) -> list[RowFacts]:
    """The split's per-row facts as the cache stored them (vlprep.cache.writer): a columnar read, nothing encoded."""
    import pyarrow.compute as pc

    table = dataset.data

    def column(name: str) -> list[Any]:
        return table.column(name).to_pylist()

    def counts(name: str) -> list[int]:
        return pc.fill_null(pc.list_value_length(table.column(name)), 0).to_pylist()

    facts = zip(column("lengths"), column("vlprep_image_tokens"), column("vlprep_trained_tokens"),
                counts("vlprep_image_grid_thw"), column("vlprep_video_tokens"), counts("vlprep_video_grid_thw"),
                column("vlprep_turn_roles"), column("vlprep_turn_tokens"), column("vlprep_turn_trained"))
    return [RowFacts(length, image_tokens, trained, images, [Turn(role, 0, size, part) for role, size, part in
                                                             zip(roles, sizes, parts)], [], video_tokens, videos)
            for length, image_tokens, trained, images, video_tokens, videos, roles, sizes, parts in facts]


def _attach_sizes(rows: list[RowFacts], dataset: Any, cache_dir: Path, split: str) -> None:
    """Each row's image header sizes (for the what-if), each distinct file's header read once; nothing encoded."""
    seen: dict[str, tuple[int, int]] = {}
    for index, (row, images) in enumerate(zip(rows, dataset.data.column("images").to_pylist())):
        try:
            for image in images:
                key = image if isinstance(image, str) else None
                size = seen.get(key) if key else None
                if size is None:
                    size = header_size(image)
                    if key:
                        seen[key] = size
                row.image_sizes.append(size)
        except (OSError, ValueError) as error:
            raise StatsError(f"{cache_dir}/{split} row {index}: an image cannot be read for the what-if sizes: "
                             f"{error}") from None


def collect_cache(cache_dir: Path, with_sizes: bool, workers: int = 1, split: str = "train") -> Collected:
    """The split's rows: the facts the cache stored per row (a columnar read; with_sizes: plus each distinct image's
    header); an older cache's rows re-encoded (for their labels) with the cache's settings on `workers` forked
    processes."""
    import multiprocessing

    from vlprep.counting.counter import counter_for_manifest

    manifest = load_cache(cache_dir)
    dataset = cache_split(cache_dir, split)
    stored = set(STORED_FACTS) <= set(dataset.column_names)
    notes = [] if stored else [
        f"{cache_dir} was built by a vlprep that did not store per-row facts: every row was encoded again (rebuild "
        "the cache to make stats a columnar read)"]
    if stored:
        rows = stored_rows(dataset)
        settings = CountSettings.from_manifest(manifest)
        if with_sizes:
            _attach_sizes(rows, dataset, cache_dir, split)
    else:
        counter = FactsCounter(counter_for_manifest(manifest))
        settings = counter.settings
        step = 512
        chunks = [(start, min(start + step, len(dataset))) for start in range(0, len(dataset), step)]
        _forked.update(dataset=dataset, counter=counter, with_sizes=with_sizes)
        try:
            if workers > 1 and len(chunks) > 1:
                with multiprocessing.get_context("fork").Pool(min(workers, len(chunks))) as pool:
                    parts = pool.map(_cache_rows, chunks)
            else:
                parts = [_cache_rows(chunk) for chunk in chunks]
        except StatsError as error:
            raise StatsError(f"{cache_dir}/{split} {error}") from None
        finally:
            _forked.clear()
        rows = [row for part in parts for row in part]
    collected = Collected("cache", [str(cache_dir)], rows, settings, manifest.get("max_length"),
                          Counter(manifest.get("rejects_by_code", {})), manifest=manifest,
                          input_lines=manifest["counts"]["input_lines"], notes=notes)
    collected.reject_examples = reject_examples(read_rejects(cache_dir / "rejects.jsonl"))
    return collected


def read_rejects(path: Path) -> Iterator[dict[str, Any]]:
    import json

    if not path.is_file():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def reject_examples(entries: Iterator[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    examples: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        for code in entry["codes"]:
            kept = examples.setdefault(code, [])
            if len(kept) < REJECT_EXAMPLES:
                kept.append({"where": f"{entry['file']}:{entry['line']}", "message": entry["message"]})
    return examples


# ---- JSONL ----------------------------------------------------------------------------------------------------

def collect_jsonl(files: list[Path], counter: Any, workers: int, image_root: Path | None = None,
                  max_line_bytes: int | None = None) -> Collected:
    """Header-only counting of every line on `workers` processes (the images' headers are read, not decoded);
    nothing is written."""
    from vlprep.checks.images import ImageLimits
    from vlprep.run.engine import MAX_LINE_BYTES_DEFAULT, run
    from vlprep.run.pipeline import PipelineOptions
    from vlprep.records.rules import RULES

    options = PipelineOptions(image_root=image_root, limits=ImageLimits(full_decode=False), keep_records=True)
    facts = FactsCounter(counter)
    active = frozenset(RULES)
    rows: list[RowFacts] = []
    rejected: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    lines = 0
    for result in run(files, options, workers, max_line_bytes or MAX_LINE_BYTES_DEFAULT,
                      counter_factory=lambda: facts):
        lines += 1
        if result.record is None or result.counted is None or result.has_errors(active):
            entry = reject_entry(result, active)
            rejected.update(entry["codes"])
            examples.append(entry)
            continue
        rows.append(row_facts(result.counted, [(info.width, info.height) for info in result.images]))
    return Collected("inputs", [str(file) for file in files], rows, counter.settings, None, rejected,
                     reject_examples(iter(examples)), input_lines=lines)


def reject_entry(result: RecordResult, active: frozenset[str]) -> dict[str, Any]:
    from vlprep.records.rules import Severity

    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR and d.code in active] or result.diagnostics
    return {"file": result.file, "line": result.line, "codes": sorted({d.code for d in errors}) or ["(none)"],
            "message": "; ".join(d.message for d in errors) or "no record on this line"}


# ---- summaries ------------------------------------------------------------------------------------------------

def percentile(ordered: list[int], q: float) -> int:
    """Nearest rank on sorted values (0 when empty)."""
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def distribution(values: list[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {"min": ordered[0] if ordered else 0, "p50": percentile(ordered, 0.5), "p90": percentile(ordered, 0.9),
            "p95": percentile(ordered, 0.95), "p99": percentile(ordered, 0.99),
            "max": ordered[-1] if ordered else 0,
            "mean": round(sum(ordered) / len(ordered), 2) if ordered else 0.0}


def share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def summary(collected: Collected) -> dict[str, Any]:
    rows = collected.rows
    tokens = sum(row.length for row in rows)
    image_tokens = sum(row.image_tokens for row in rows)
    video_tokens = sum(row.video_tokens for row in rows)
    text_tokens = tokens - image_tokens - video_tokens
    trained = sum(row.trained_tokens for row in rows)
    by_role: Counter[str] = Counter()
    trained_by_role: Counter[str] = Counter()
    turns_by_role: Counter[str] = Counter()
    for row in rows:
        for turn in row.turns:
            by_role[turn.role] += turn.tokens
            trained_by_role[turn.role] += turn.trained
            turns_by_role[turn.role] += 1
    return {
        "source": collected.source,
        "paths": collected.paths,
        "input_lines": collected.input_lines,
        "records": len(rows),
        "rejected": collected.manifest["counts"]["rejected"] if collected.manifest else collected.input_lines - len(rows),
        "split": collected.manifest.get("split") if collected.manifest else None,
        "rejects_by_rule": dict(sorted(collected.rejects_by_code.items())),
        "reject_examples": collected.reject_examples,
        "counting": collected.settings.to_json(),
        "max_length": collected.max_length,
        "tokens": tokens,
        "image_tokens": image_tokens,
        "video_tokens": video_tokens,
        "text_tokens": text_tokens,
        "trained_tokens": trained,
        "image_token_share": share(image_tokens, tokens),
        "video_token_share": share(video_tokens, tokens),
        "text_token_share": share(text_tokens, tokens),
        "trained_token_share": share(trained, tokens),
        "lengths": distribution([row.length for row in rows]),
        "images_per_record": {**distribution([row.images for row in rows]),
                              "histogram": dict(sorted(Counter(row.images for row in rows).items()))},
        "videos_per_record": {**distribution([row.videos for row in rows]),
                              "histogram": dict(sorted(Counter(row.videos for row in rows).items()))},
        "turns_per_record": distribution([len(row.turns) for row in rows]),
        "turns_by_role": {role: {"turns": turns_by_role[role], "tokens": by_role[role],
                                 "trained": trained_by_role[role]} for role in sorted(by_role)},
        "notes": collected.notes,
    }


# ---- what-if pixel limits -------------------------------------------------------------------------------------

def image_tokens_under(sizes: list[tuple[int, int]], settings: CountSettings) -> int:
    from vlprep.counting.tokens import image_grid

    return settings.family.tokens_per_grids(image_grid(width, height, settings) for width, height in sizes)


def lengths_under(rows: list[RowFacts], settings: CountSettings) -> tuple[list[int], list[int], int]:
    """(lengths, image tokens) of the rows whose images encode under `settings`, and how many do not."""
    lengths, images, unencodable = [], [], 0
    for row in rows:
        try:
            tokens = image_tokens_under(row.image_sizes, settings)
        except UnencodableImage:
            unencodable += 1
            continue
        lengths.append(row.length - row.image_tokens + tokens)
        images.append(tokens)
    return lengths, images, unencodable


def what_if(rows: list[RowFacts], values: list[int], base: CountSettings, max_length: int | None,
            packing_length: int, strategy: str, shape: Any) -> list[dict[str, Any]]:
    """One column per IMAGE_MAX_TOKEN_NUM value: the same rows counted under it (image tokens only change)."""
    from vlprep.insight.packing import plan_packing

    table = []
    for value in values:
        settings = replace(base, image_max_tokens=value)
        lengths, images, unencodable = lengths_under(rows, settings)
        plan = plan_packing(lengths, packing_length, strategy, shape, max_length)
        ordered = sorted(lengths)
        total = sum(lengths)
        table.append({
            "image_max_tokens": value, "records": len(lengths), "unencodable": unencodable, "tokens": total,
            "p50": percentile(ordered, 0.5), "p95": percentile(ordered, 0.95), "max": ordered[-1] if ordered else 0,
            "image_token_share": share(sum(images), total),
            "over_max_length": sum(1 for length in lengths if max_length is not None and length > max_length),
            "packs": plan.num_packs, "steps_per_epoch": plan.steps_per_epoch,
        })
    return table


def stats_document(collected: Collected, packing_length: int | None, strategy: str, shape: Any,
                   packing_num_proc: int = 1, what_if_values: list[int] | None = None) -> dict[str, Any]:
    """`vlprep stats --format json`: the summary, the `packing` plan and the what-if table."""
    from vlprep.insight.packing import DEFAULT_PACKING_LENGTH, plan_packing

    length = packing_length or collected.max_length or DEFAULT_PACKING_LENGTH
    plan = plan_packing([row.length for row in collected.rows], length, strategy, shape, collected.max_length,
                        packing_num_proc)
    doc = summary(collected)
    doc["packing"] = plan.to_json()
    if what_if_values:
        doc["what_if"] = what_if(collected.rows, what_if_values, collected.settings, collected.max_length, length,
                                 strategy, shape)
    return doc
