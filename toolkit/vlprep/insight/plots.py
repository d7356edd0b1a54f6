"""Plots of `vlprep stats` (matplotlib, PNG): lengths (text vs image tokens), pack fill, and the pixel-limit what-if."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

WHAT_IF_DEFAULT = [256, 1024, 4096, 16384]


def render_png(collected: Any, doc: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vlprep.insight.packing import TrainingShape
    from vlprep.insight.stats import what_if

    rows = collected.rows
    plan = doc["packing"]
    figure, (lengths_ax, fill_ax, what_if_ax) = plt.subplots(1, 3, figsize=(15, 4.2), dpi=80)
    lengths = [row.length for row in rows]
    lengths_ax.hist([lengths, lengths, lengths], bins=40, stacked=True, color=["#4c72b0", "#dd8452", "#8172b3"],
                    weights=[[(row.length - row.image_tokens - row.video_tokens) / row.length for row in rows],
                             [row.image_tokens / row.length for row in rows],
                             [row.video_tokens / row.length for row in rows]],
                    label=["text tokens", "image tokens", "video tokens"])
    if collected.max_length:
        lengths_ax.axvline(collected.max_length, color="#c44e52", linestyle="--", label="max_length")
    lengths_ax.set(title="record lengths", xlabel="tokens per record", ylabel="records (split by token share)")
    lengths_ax.legend()
    fills = [length / plan["packing_length"] for length in plan["pack_lengths"]]
    fill_ax.hist(fills, bins=[i / 20 for i in range(21)], color="#55a868")
    fill_ax.set(title=f"pack fill ({plan['strategy']}, {plan['num_packs']:,} packs of {plan['packing_length']:,})",
                xlabel="tokens / packing_length", ylabel="packs")
    table = doc.get("what_if") or (what_if(rows, WHAT_IF_DEFAULT, collected.settings, collected.max_length,
                                           plan["packing_length"], plan["strategy"],
                                           TrainingShape(plan["batch_size"], plan["grad_accum"], plan["gpus"],
                                                         plan["epochs"])) if all_sized(rows) else [])
    if table:
        limits = [column["image_max_tokens"] for column in table]
        what_if_ax.plot(limits, [column["tokens"] for column in table], marker="o", label="total tokens")
        what_if_ax.set(xscale="log", title="what-if IMAGE_MAX_TOKEN_NUM", xlabel="IMAGE_MAX_TOKEN_NUM",
                       ylabel="total tokens")
        packs_ax = what_if_ax.twinx()
        packs_ax.plot(limits, [column["packs"] for column in table], marker="s", color="#8172b3", label="packs")
        packs_ax.set(ylabel="packs")
        what_if_ax.legend(loc="upper left")
        packs_ax.legend(loc="lower right")
    else:
        what_if_ax.set_axis_off()
        what_if_ax.text(0.5, 0.5, "no image sizes read", ha="center")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def all_sized(rows: list[Any]) -> bool:
    return all(len(row.image_sizes) == row.images for row in rows)


def write_plots(collected: Any, doc: dict[str, Any], path: Path) -> None:
    path.write_bytes(render_png(collected, doc))
