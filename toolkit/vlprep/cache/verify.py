"""Verify: our counts against ms-swift's own template encode, with real pixels, on a sample or every record.

Every record's `<|image_pad|>` count is asserted against Σ grid/4 while counting (vlprep.counting.tokens). Here a deterministic
sample goes to ms-swift in a child process twice: the **original input line**, through ms-swift's own loader (what
`swift sft --dataset` makes of it), and the **cached row**, as `--cached_dataset` re-encodes it at train time. Both
encodes must equal vlprep's count (input_ids, labels, length, grids), or the build stops with a diff naming file:line.
Comparing against the original line, not vlprep's normalized copy, is what proves the normalization: a field vlprep
dropped or changed shows up as a difference.

The sample has two parts. The random part is drawn up front from the input's line positions (the line count is known
before the pass), so each sampled record goes to ms-swift the moment it is accepted and is encoded while the rest of the
input is still being checked; sampled lines that end up rejected leave a shortfall, filled at the end from a reservoir
of the other accepted records, so this part is always min(N, accepted records). The coverage part adds, for every record
shape (vlprep.cache.shapes) the random part missed, the cheapest accepted record of that shape: a cache of any size is proven
on every kind of record it contains. Both are the same for the same input and seed, whatever the worker count.
"""

from __future__ import annotations

import json
import queue
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vlprep.records.diagnostics import ImageInfo
from vlprep.records.canonical import OTHER_TASK_KEYS
from vlprep.cache.swift_oracle import SwiftOracle
from vlprep.errors import ProblemsFound

if TYPE_CHECKING:
    from vlprep.counting.tokens import Encoded, TokenCounter

MAX_SHAPES = 1024  # distinct shapes kept as coverage candidates (each holds one record): memory stays bounded
RAW_BATCH = 8  # original lines ms-swift's loader reads in one call: fewer calls, still one batch per encoder to share


def structure(text: str) -> frozenset[str]:
    """The key paths of a JSON line at every level (list items merged): lines with the same structure load together
    exactly as each loads alone."""
    paths: set[str] = set()

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                paths.add(f"{prefix}/{key}")
                walk(inner, f"{prefix}/{key}")
        elif isinstance(value, list):
            for inner in value:
                walk(inner, f"{prefix}[]")

    walk(json.loads(text), "")
    return frozenset(paths)

@dataclass(frozen=True)
class Item:
    """One accepted record to verify."""

    index: int  # global line index (over all input files)
    file: str
    line: int
    record: dict[str, Any]  # canonical record (what vlprep counted)
    images: list[ImageInfo]
    text: str  # the original input line
    base_dir: str  # the folder relative image paths resolve against (--image-root, or the file's folder)
    row: dict[str, Any]  # the cached row, as written to the split
    shape: str = ""  # vlprep.cache.shapes.record_shape
    cost: int = 0  # vlprep.cache.shapes.encode_cost: the cheapest record of a shape is the one verified
    videos: tuple[Any, ...] = ()  # vlprep.counting.video.VideoHeader of each video, in order


@dataclass
class Sample:
    """What to verify and how far it got; pickled with the build state, so a resumed build verifies the same records.

    k=None verifies every accepted record. `pending` holds records sent to ms-swift and not yet compared: a resumed build
    sends them again.
    """

    k: int | None
    seed: int
    total_lines: int
    drawn: frozenset[int] = field(init=False)  # global line indexes, drawn from (seed, total_lines)
    pending: dict[int, Item] = field(default_factory=dict)
    reservoir: list[Item] = field(default_factory=list)
    reservoir_seen: int = 0
    checked: int = 0
    covered: dict[str, str] = field(default_factory=dict)  # shape -> "file:line" of the record sent for it
    candidates: dict[str, Item] = field(default_factory=dict)  # the cheapest record of each shape not yet covered
    coverage: int = 0  # records sent only because their shape was not covered otherwise

    def __post_init__(self) -> None:
        drawn = 0 if self.k is None else min(self.k, self.total_lines)
        self.drawn = frozenset(random.Random(self.seed).sample(range(self.total_lines), drawn))
        self._random = random.Random(self.seed + 1)

    def wants_now(self, index: int) -> bool:
        return self.k is None or index in self.drawn

    def keep_in_reserve(self, item: Item) -> None:
        """Algorithm R over the accepted records that were not drawn, for the shortfall left by rejected drawn lines."""
        assert self.k is not None
        self.reservoir_seen += 1
        if len(self.reservoir) < self.k:
            self.reservoir.append(item)
            return
        slot = self._random.randrange(self.reservoir_seen)
        if slot < self.k:
            self.reservoir[slot] = item

    def consider_for_coverage(self, item: Item) -> None:
        """Keep the cheapest record of a shape the sample has not covered (ties: the first one, so resumes agree)."""
        if item.shape in self.covered:
            return
        known = self.candidates.get(item.shape)
        if (known is None and len(self.candidates) < MAX_SHAPES) or (known is not None and item.cost < known.cost):
            self.candidates[item.shape] = item

    def uncovered(self) -> list[Item]:
        """The cheapest record of each shape nothing sent so far has, in shape order."""
        return [item for shape, item in sorted(self.candidates.items()) if shape not in self.covered]

    def shortfall(self) -> list[Item]:
        """Reserve records that complete the sample to min(k, accepted records)."""
        if self.k is None:
            return []
        missing = self.k - self.checked - len(self.pending)
        reserve = list(self.reservoir)  # Algorithm R keeps the first k in arrival order: shuffle before taking some
        random.Random(self.seed + 2).shuffle(reserve)
        return reserve[:max(0, missing)]


class VerificationError(ProblemsFound):
    pass


def swift_record(record: dict[str, Any], images: list[ImageInfo]) -> dict[str, Any]:
    """The record as ms-swift will see it from the cache: absolute image paths (data URIs as written)."""
    refs = [info.path or ref for ref, info in zip(record["images"], images)]
    return {**record, "images": refs}


def sft_line(text: str) -> str:
    """The original line, less the keys only ms-swift's other tasks read (S015: not cached). ms-swift's SFT encode
    ignores them when they are valid, but checks `rejected_response` and may drop or fail the record over it: that is
    RLHF data, and the comparison is about what SFT trains on."""
    record = json.loads(text)
    other = [key for key in record if key in OTHER_TASK_KEYS]
    if not other:
        return text
    return json.dumps({key: value for key, value in record.items() if key not in other}, ensure_ascii=False)


def first_difference(ours: list[int], theirs: list[int], names: tuple[str, str] = ("ours", "ms-swift")) -> str:
    index = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    return (f"first difference at position {index}: {names[0]} {ours[index:index + 8]} vs {names[1]} "
            f"{theirs[index:index + 8]} (lengths {len(ours)} vs {len(theirs)})")


def compare(ours: Encoded, theirs: dict[str, Any]) -> str | None:
    if "error" in theirs:
        return f"ms-swift could not encode it: {theirs['error']}"
    if [list(grid) for grid in ours.grids] != theirs["image_grid_thw"]:
        return f"image_grid_thw differ: ours {[list(g) for g in ours.grids]} vs ms-swift {theirs['image_grid_thw']}"
    if [list(grid) for grid in ours.video_grids] != theirs.get("video_grid_thw", []):
        return (f"video_grid_thw differ: ours {[list(g) for g in ours.video_grids]} vs ms-swift "
                f"{theirs.get('video_grid_thw')}")
    if ours.input_ids != theirs["input_ids"]:
        return "input_ids differ: " + first_difference(ours.input_ids, theirs["input_ids"])
    if ours.labels != theirs["labels"]:
        return "labels differ: " + first_difference(ours.labels, theirs["labels"])
    if len(ours.input_ids) != theirs["length"]:
        return f"length differs: ours {len(ours.input_ids)} vs ms-swift {theirs['length']}"
    return None


class Verifier:
    """Sends the sample to ms-swift as the build accepts records, and compares each answer as it arrives."""

    def __init__(self, sample: Sample, counter: TokenCounter, oracle: SwiftOracle) -> None:
        self.sample = sample
        self._counter = counter
        self._oracle = oracle
        self._batches: dict[tuple[str, frozenset[str]], list[tuple[Item, str]]] = {}  # with each one's sft_line
        for item in list(sample.pending.values()):  # sent by an interrupted build, never compared
            self._queue(item)
        self._flush_all()

    def offer(self, item: Item) -> None:
        """An accepted record: sent now if drawn, kept in reserve (and as its shape's candidate) otherwise."""
        if self.sample.wants_now(item.index):
            self._start(item)
        else:
            self.sample.keep_in_reserve(item)
            self.sample.consider_for_coverage(item)
        self.poll()

    def poll(self) -> None:
        """Compare whatever answers have arrived, without waiting."""
        while True:
            try:
                self._compare(*self._oracle.take(block=False))
            except queue.Empty:
                return

    def finish(self) -> int:
        """Send the shortfall, wait for every answer; the number of records verified."""
        for item in self.sample.shortfall():
            self._start(item)
        for item in self.sample.uncovered():
            self.sample.coverage += 1
            self._start(item)
        self._flush_all()
        while self._oracle.in_flight:
            self._compare(*self._oracle.take())
        assert not self.sample.pending, "every record sent to ms-swift is compared"
        return self.sample.checked

    def _start(self, item: Item) -> None:
        self.sample.pending[item.index] = item
        self.sample.covered.setdefault(item.shape, f"{item.file}:{item.line}")
        self._queue(item)

    def _queue(self, item: Item) -> None:
        """Batch the record with others of the same folder and structure; a full batch goes to ms-swift at once.
        A record written over several lines (a pretty-printed array element) is loaded from a file of its own."""
        text = sft_line(item.text)
        if "\n" in text.strip():
            self._submit(item.base_dir, [(item, text)])
            return
        key = (item.base_dir, structure(text))
        batch = self._batches.setdefault(key, [])
        batch.append((item, text))
        if len(batch) >= RAW_BATCH:
            self._flush(key)

    def _flush(self, key: tuple[str, frozenset[str]]) -> None:
        self._submit(key[0], self._batches.pop(key))

    def _submit(self, base_dir: str, batch: list[tuple[Item, str]]) -> None:
        for answer in self._oracle.submit_batch([(item.index, item.row, text) for item, text in batch],
                                                base_dir=base_dir):
            self._compare(*answer)

    def _flush_all(self) -> None:
        for key in list(self._batches):
            self._flush(key)

    def _compare(self, key: int, theirs: dict[str, Any]) -> None:
        item = self.sample.pending.pop(key)
        problem = verify_answer(self._counter.encode(item.record, item.images, item.videos), theirs)
        if problem:
            raise VerificationError(f"{item.file}:{item.line}: {problem}")
        self.sample.checked += 1


def verify_answer(ours: Encoded, theirs: dict[str, Any]) -> str | None:
    """vlprep's count against ms-swift's encode of the original line, then the cached row's encode against it."""
    problem = compare(ours, theirs["raw"])
    if problem:
        return f"vlprep's count differs from what ms-swift makes of the original line: {problem}"
    if "error" in theirs:
        return f"ms-swift cannot encode the cached row: {theirs['error']}"
    raw = theirs["raw"]
    for key in ("image_grid_thw", "video_grid_thw", "input_ids", "labels", "length"):
        if theirs[key] != raw[key]:
            detail = (first_difference(theirs[key], raw[key], ("cached row", "original line"))
                      if key in ("input_ids", "labels") else f"cached row {theirs[key]} vs original line {raw[key]}")
            return f"ms-swift encodes the cached row differently from the original line: {key}: {detail}"
    return None
