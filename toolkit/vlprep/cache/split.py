"""The validation split: by picture group (the default with --val-ratio) or record by record (--split-by record).

A picture group is a set of records joined by near-duplicate pictures (vlprep.lint.pictures, transitively), so which
side a record goes to is only known once every record has been seen: a later record can join two earlier groups. The
build therefore writes every accepted row to the train shards in input order and remembers, per row, its record's
union-find element and token length (16 bytes a row); `decide` then puts each group on one side by a hash of the seed
and the group's root (its earliest record). The union-find is part of the resumable build state, so a resumed build
decides exactly what an uninterrupted one does.
"""

from __future__ import annotations

import hashlib
import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vlprep.lint.pictures import PictureIndex


def in_val(seed: int, file_index: int, number: int, ratio: float) -> bool:
    """Deterministic split: a hash of (seed, file position, the record's unit number), independent of worker count and
    machine. The number is the line for JSONL and the 1-based record count for a JSON array, so an array and the same
    records written as JSONL split alike."""
    if ratio <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{file_index}:{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < ratio


def group_in_val(seed: int, root: int, ratio: float) -> bool:
    """The side of a whole picture group, from its root record (0-based position in the run)."""
    digest = hashlib.blake2b(f"{seed}:group:{root}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < ratio


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


@dataclass
class PendingRows:
    """Accepted rows whose side waits for the groups: their records' elements and token lengths, in row order."""

    elements: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("q"))

    def add(self, element: int, length: int) -> None:
        self.elements.append(element)
        self.lengths.append(length)


@dataclass
class GroupSplit:
    val: list[bool]  # per pending row
    summary: dict[str, Any]


def decide(pending: PendingRows, pictures: PictureIndex, seed: int, ratio: float) -> GroupSplit:
    """Each pending row's side, and what the manifest says: groups per side, and that none straddles the split."""
    roots = [pictures.find(element) for element in pending.elements]
    side = {root: group_in_val(seed, root, ratio) for root in dict.fromkeys(roots)}
    val = [side[root] for root in roots]
    rows_of: dict[bool, Counter[int]] = {False: Counter(), True: Counter()}
    for root, is_val in zip(roots, val):  # checked from the rows as written, not assumed from `side`
        rows_of[is_val][root] += 1
    summary = {"by": "picture", "near_distance": pictures.threshold,
               "groups": {"train": len(rows_of[False]), "val": len(rows_of[True])},
               "groups_of_several_records": {"train": sum(1 for n in rows_of[False].values() if n > 1),
                                             "val": sum(1 for n in rows_of[True].values() if n > 1)},
               "groups_in_both": len(rows_of[False].keys() & rows_of[True].keys())}
    return GroupSplit(val, summary)


def describe_split(split: dict[str, Any]) -> str | None:
    """One line on how a cache's val split was made (the cache summary and `vlprep stats`)."""
    if split.get("by") != "picture":
        return {"record": "split record by record (--split-by record)", "file": "val from --val file(s)"}.get(
            split.get("by", ""))
    groups = split["groups"]
    return (f"split by picture group (--near-distance {split['near_distance']}): {groups['train']:,} group(s) in "
            f"train, {groups['val']:,} in val, {split['groups_in_both']} in both")
