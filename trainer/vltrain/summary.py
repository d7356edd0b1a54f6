"""The end-of-run summary, read from what ms-swift's sft_main returns (its trainer state)."""

from __future__ import annotations

import math
from typing import Any

from vltrain.guards import Preflight


def run_summary(result: dict[str, Any], preflight: Preflight) -> dict[str, Any]:
    history = result.get("log_history") or []
    losses = [entry["loss"] for entry in history if "loss" in entry]
    eval_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    final = next((entry for entry in reversed(history) if "train_runtime" in entry), {})
    runtime = final.get("train_runtime")
    samples_per_s = final.get("train_samples_per_second")
    train = preflight.manifest["lengths"]["train"]
    mean_length = train.get("mean", 0)
    summary = {
        "steps": result.get("global_step"),
        "train_loss": losses[-1] if losses else None,
        "eval_loss": eval_losses[-1] if eval_losses else None,
        "loss_finite": bool(losses) and all(math.isfinite(value) for value in losses),
        "train_runtime_s": runtime,
        "samples_per_s": samples_per_s,
        # samples/s × the cache's mean record length: tokens/s without packing (with packing a "sample" is a pack)
        "tokens_per_s_estimate": round(samples_per_s * mean_length, 1) if samples_per_s and not preflight.packing
        else None,
        "attn_impl": preflight.attn_impl,
        "packing": preflight.packing,
        "torch_dtype": preflight.torch_dtype,
        "last_checkpoint": result.get("last_model_checkpoint"),
        "peak_memory": result.get("memory"),
    }
    return summary
