"""The end-of-run summary, read from what ms-swift's sft_main returns (its trainer state)."""

from __future__ import annotations

import math
from typing import Any

from vltrain.guards import Preflight


def run_summary(result: dict[str, Any], preflight: Preflight, start_step: int = 0,
                measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """Steps, losses and what ran, from this run's log entries (after `start_step` when resumed; the trainer state
    carries the earlier run's), merged with what vltrain's callback measured (vltrain.training.monitor: tokens/s and padding
    over the batches actually formed, peak memory, first/last losses, wall time split). train_loss is the last logged
    loss of this run, else its average."""
    history = [entry for entry in result.get("log_history") or [] if entry.get("step", 0) > start_step]
    final = next((entry for entry in reversed(history) if "train_runtime" in entry), {})
    losses = [entry["loss"] for entry in history if "loss" in entry] + (
        [final["train_loss"]] if "train_loss" in final else [])
    eval_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    seen = max((entry.get("num_input_tokens_seen", 0) for entry in history), default=0)
    return {
        "steps": result.get("global_step"),
        "train_loss": losses[-1] if losses else None,
        "eval_loss": eval_losses[-1] if eval_losses else None,
        "loss_finite": bool(losses) and all(math.isfinite(value) for value in losses),
        "train_runtime_s": final.get("train_runtime"),
        "samples_per_s": final.get("train_samples_per_second"),
        "tokens_seen": seen or None,  # the trainer's count of input_ids elements fed to the model, padding included
        "real_tokens_per_epoch": int(preflight.drawn_lengths().sum()),  # the rows ms-swift draws, every cache
        "attn_impl": preflight.attn_impl,
        "packing": preflight.packing,
        "torch_dtype": preflight.torch_dtype,
        "last_checkpoint": result.get("last_model_checkpoint"),
        **(measured or {}),
    }
