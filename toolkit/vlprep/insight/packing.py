"""The packing plan ms-swift 4.6 will make, computed by ms-swift's own packing code (no model, no GPU).

`swift sft --packing true` wraps the train split in `swift.dataset.packing.PackingDataset`, which reads only the
`lengths` column: it splits it into `packing_num_proc` contiguous chunks (`swift.utils.split_list`) and hands each chunk
to the static `PackingDataset.create_packed_idx`, which feeds it in batches of 1,000 to `calculate_matched_group`
(binpack: best-fit decreasing with the last open bin carried over; sequential: next-fit in input order). Here the same
static function runs in-process on each chunk (a queue stands in for the worker's), so the packs are ms-swift's by
construction. Rows over max_length are dropped first, as `truncation_strategy delete` does when the split is loaded.
"""

from __future__ import annotations

import math
import queue
from dataclasses import asdict, dataclass
from typing import Any

STRATEGIES = ("binpack", "sequential")
DEFAULT_PACKING_LENGTH = 8192


@dataclass(frozen=True)
class TrainingShape:
    """What decides optimizer steps: rows per device batch, accumulation, data-parallel processes, epochs."""

    batch_size: int = 1
    grad_accum: int = 1
    gpus: int = 1
    epochs: float = 1.0

    def steps_per_epoch(self, units: int) -> int:
        """transformers' Trainer: a DistributedSampler pads to whole per-rank shares; a last partial accumulation
        still makes a step; at least one step."""
        if units == 0:
            return 0
        batches = math.ceil(math.ceil(units / self.gpus) / self.batch_size)
        return max(math.ceil(batches / self.grad_accum), 1)


def pack(lengths: list[int], packing_length: int, strategy: str = "binpack", packing_num_proc: int = 1
         ) -> list[list[int]]:
    """The row indices of each pack, in the order PackingDataset lists them."""
    from swift.dataset.packing import PackingDataset
    from swift.utils import split_list

    if strategy not in STRATEGIES:
        raise ValueError(f"packing strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    workers = min(packing_num_proc, math.ceil(len(lengths) / PackingDataset.PACKING_BATCH_SIZE))
    packs: list[list[int]] = []
    offset = 0
    for rank, chunk in enumerate(split_list(lengths, workers)):
        answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
        PackingDataset.create_packed_idx(rank, offset, chunk, answers, packing_length, strategy)
        while True:
            _, sequences, size = answers.get_nowait()
            if size == -1:
                break
            packs += [[index for index, _ in sequence] for sequence in sequences]
        offset += len(chunk)
    return packs


@dataclass(frozen=True)
class PackingPlan:
    packing_length: int
    strategy: str
    packing_num_proc: int
    rows: int  # rows that enter packing
    dropped_over_max_length: int
    num_packs: int
    pack_lengths: list[int]
    fill: float  # tokens / (packs × packing_length)
    padding_fraction_packed: float
    padding_fraction_unpacked: float
    tokens_per_step: float
    steps_per_epoch: int
    steps_per_epoch_unpacked: int
    total_steps: int
    shape: TrainingShape

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(asdict(self.shape))
        del out["shape"]
        out["assumptions"] = {
            "packed": "each pack costs packing_length tokens of compute; fill = tokens / (packs × packing_length)",
            "unpacked": "device batches of --batch-size rows in a seeded random order (like the default shuffling "
                        "sampler; its exact order differs), each padded to its longest row",
        }
        return out


def plan_packing(lengths: list[int], packing_length: int, strategy: str, shape: TrainingShape,
                 max_length: int | None = None, packing_num_proc: int = 1, seed: int = 42) -> PackingPlan:
    kept = [length for length in lengths if max_length is None or length <= max_length]
    packs = pack(kept, packing_length, strategy, packing_num_proc)
    pack_lengths = [sum(kept[index] for index in members) for members in packs]
    tokens = sum(kept)
    fill = tokens / (len(packs) * packing_length) if packs else 0.0
    steps = shape.steps_per_epoch(len(packs))
    per_step = shape.batch_size * shape.grad_accum * shape.gpus
    return PackingPlan(
        packing_length=packing_length, strategy=strategy, packing_num_proc=packing_num_proc, rows=len(kept),
        dropped_over_max_length=len(lengths) - len(kept), num_packs=len(packs), pack_lengths=pack_lengths,
        fill=round(fill, 6), padding_fraction_packed=round(1 - fill, 6) if packs else 0.0,
        padding_fraction_unpacked=round(unpacked_padding(kept, shape.batch_size, seed), 6),
        tokens_per_step=round(tokens / len(packs) * per_step, 1) if packs else 0.0,
        steps_per_epoch=steps, steps_per_epoch_unpacked=shape.steps_per_epoch(len(kept)),
        total_steps=math.ceil(steps * shape.epochs), shape=shape)


def unpacked_padding(lengths: list[int], batch_size: int, seed: int) -> float:
    """Padding share when rows are batched unpacked: each device batch padded to its longest row."""
    import numpy as np

    if not lengths:
        return 0.0
    order = np.random.default_rng(seed).permutation(len(lengths))
    shuffled = np.asarray(lengths, dtype=np.int64)[order]
    padded = sum(int(shuffled[start:start + batch_size].max()) * len(shuffled[start:start + batch_size])
                 for start in range(0, len(shuffled), batch_size))
    return 1 - int(shuffled.sum()) / padded
