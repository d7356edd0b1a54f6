"""The packing plan of a `vltrain fit` run: `vlprep stats`' plan (ms-swift's own packing code) for its settings.

Only computed when packing is on: it imports ms-swift's packing module, which a dry run without packing never needs.
"""

from __future__ import annotations

from typing import Any

from vltrain.config import FitConfig
from vltrain.guards import Preflight


def fit_packing_plan(config: FitConfig, preflight: Preflight) -> dict[str, Any] | None:
    """The plan for the train split at packing_length = max_length (ms-swift's default), or None without packing."""
    if not preflight.packing:
        return None
    from vlprep.insight.packing import TrainingShape, plan_packing

    lengths = preflight.drawn_lengths().tolist()  # the mixture in ms-swift's order, sampled as it samples
    shape = TrainingShape(batch_size=config.per_device_train_batch_size,
                          grad_accum=config.gradient_accumulation_steps, gpus=config.nproc_per_node * config.nnodes,
                          epochs=config.num_train_epochs)
    plan = plan_packing(lengths, preflight.max_length, "binpack", shape, preflight.max_length).to_json()
    plan["dropped_over_max_length"] = sum(item.dropped for item in preflight.draws)  # before the draw, as ms-swift
    del plan["pack_lengths"]  # one number per pack: `vlprep stats --format json` lists them
    return plan
