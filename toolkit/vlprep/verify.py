"""Verify: our counts against ms-swift's own `qwen3_vl` template encode, with real pixels, on a sample or every record.

Every record's `<|image_pad|>` count is asserted against Σ grid/4 while counting (vlprep.tokens). Here a deterministic
sample is re-encoded by ms-swift in a child process; input_ids, labels, length and grids must be equal, or the build
stops with a diff.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from vlprep.diagnostics import ImageInfo
from vlprep.swift_oracle import SwiftOracle
from vlprep.tokens import Encoded, TokenCounter


@dataclass
class Sample:
    """A reservoir sample of accepted records (k=None keeps every record)."""

    k: int | None
    seed: int
    seen: int = 0
    items: list[tuple[str, int, dict[str, Any], list[ImageInfo]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def offer(self, file: str, line: int, record: dict[str, Any], images: list[ImageInfo]) -> None:
        self.seen += 1
        item = (file, line, record, images)
        if self.k is None or len(self.items) < self.k:
            self.items.append(item)
            return
        slot = self._random.randrange(self.seen)
        if slot < self.k:
            self.items[slot] = item


class VerificationError(RuntimeError):
    pass


def swift_record(record: dict[str, Any], images: list[ImageInfo]) -> dict[str, Any]:
    """The record as ms-swift will see it from the cache: absolute image paths (data URIs as written)."""
    refs = [info.path or ref for ref, info in zip(record["images"], images)]
    return {"messages": record["messages"], "images": refs}


def first_difference(ours: list[int], theirs: list[int]) -> str:
    index = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    return (f"first difference at position {index}: ours {ours[index:index + 8]} vs ms-swift {theirs[index:index + 8]} "
            f"(lengths {len(ours)} vs {len(theirs)})")


def compare(ours: Encoded, theirs: dict[str, Any]) -> str | None:
    if "error" in theirs:
        return f"ms-swift could not encode it: {theirs['error']}"
    if [list(grid) for grid in ours.grids] != theirs["image_grid_thw"]:
        return f"image_grid_thw differ: ours {[list(g) for g in ours.grids]} vs ms-swift {theirs['image_grid_thw']}"
    if ours.input_ids != theirs["input_ids"]:
        return "input_ids differ: " + first_difference(ours.input_ids, theirs["input_ids"])
    if ours.labels != theirs["labels"]:
        return "labels differ: " + first_difference(ours.labels, theirs["labels"])
    if len(ours.input_ids) != theirs["length"]:
        return f"length differs: ours {len(ours.input_ids)} vs ms-swift {theirs['length']}"
    return None


def verify_sample(sample: Sample, counter: TokenCounter, oracle: SwiftOracle) -> int:
    """Re-encode the sample with ms-swift; raise VerificationError naming file:line and the diff on any mismatch."""
    for file, line, record, images in sample.items:
        problem = compare(counter.encode(record, images), oracle.encode(swift_record(record, images)))
        if problem:
            raise VerificationError(f"{file}:{line}: our encoding differs from ms-swift's qwen3_vl template: {problem}")
    return len(sample.items)
