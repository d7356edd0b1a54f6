"""OUTPUT/curves.png: train and eval loss, learning rate and tokens/s against the step (matplotlib, no display)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_curves(points: list[dict[str, Any]], evals: list[dict[str, Any]], path: Path) -> None:
    """Three panels; written to a temporary file and renamed, so a reader never sees half a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 7), tight_layout=True)
    loss, rate, speed = figure.subplots(3, 1, sharex=True)
    _series(loss, points, "loss", "train loss", "o-")
    _series(loss, evals, "eval_loss", "eval loss", "s--")
    loss.set_ylabel("loss")
    loss.legend(loc="upper right")
    _series(rate, points, "learning_rate", "learning rate", "o-")
    rate.set_ylabel("learning rate")
    _series(speed, points, "tokens_per_s", "tokens/s (not padding)", "o-")
    speed.set_ylabel("tokens/s")
    speed.set_xlabel("step")
    for axes in (loss, rate, speed):
        axes.grid(alpha=0.3)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png", dpi=80)
    os.replace(temporary, path)


def _series(axes: Any, rows: list[dict[str, Any]], key: str, label: str, style: str) -> None:
    pairs = [(row["step"], row[key]) for row in rows if row.get(key) is not None]
    if pairs:
        axes.plot(*zip(*pairs), style, label=label, markersize=3)
