"""`vlprep stats` as text: the JSON document of `vlprep stats --format json`, laid out for a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from vlprep.cache.split import describe_split


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def print_stats(doc: dict[str, Any], console: Console) -> None:
    lengths = doc["lengths"]
    console.print(f"[bold]{', '.join(doc['paths'])}[/] ({doc['source']}): {doc['records']:,} records, "
                  f"{doc['rejected']:,} rejected, {doc['input_lines']:,} input lines")
    if doc.get("split") and doc["split"].get("val_ratio") and (split_line := describe_split(doc["split"])):
        console.print(f"  {split_line}")
    console.print(f"  tokens {doc['tokens']:,}: image {pct(doc['image_token_share'])}, video "
                  f"{pct(doc['video_token_share'])}, text "
                  f"{pct(doc['text_token_share'])}; trained (label != -100) {doc['trained_tokens']:,} = "
                  f"{pct(doc['trained_token_share'])}")
    console.print(f"  length p50 {lengths['p50']:,}  p90 {lengths['p90']:,}  p95 {lengths['p95']:,}  "
                  f"p99 {lengths['p99']:,}  max {lengths['max']:,}  mean {lengths['mean']:,}")
    images = doc["images_per_record"]
    console.print(f"  images per record: mean {images['mean']}, max {images['max']}; "
                  + ", ".join(f"{count} image(s): {rows:,}" for count, rows in images["histogram"].items()))
    videos = doc["videos_per_record"]
    if videos["max"]:
        console.print(f"  videos per record: mean {videos['mean']}, max {videos['max']}; "
                      + ", ".join(f"{count} video(s): {rows:,}" for count, rows in videos["histogram"].items()))
    roles = ", ".join(f"{role} {info['turns']:,} turns / {info['tokens']:,} tokens ({info['trained']:,} trained)"
                      for role, info in doc["turns_by_role"].items())
    console.print(f"  turns per record: mean {doc['turns_per_record']['mean']}, max {doc['turns_per_record']['max']}; "
                  f"{roles}")
    for code, count in doc["rejects_by_rule"].items():
        example = (doc["reject_examples"].get(code) or [{}])[0]
        console.print(f"  rejected {code}: {count:,}" + (f"  e.g. {example['where']}" if example else ""))
    for note in doc.get("notes") or []:
        console.print(f"  note: {note}")
    if doc.get("mixture"):
        print_mixture(doc["mixture"], console)
    print_packing(doc["packing"], console)
    if doc.get("what_if"):
        print_what_if(doc["what_if"], doc["max_length"], console)


def mixture_table(mixture: dict[str, Any]) -> Table:
    """One row per source: what ms-swift draws from it (after its max_length filter and #N sampling), and the total;
    token shares where they were counted (`vlprep stats`; `vltrain fit` knows lengths only)."""
    table = Table(title=f"mixture (ms-swift's order and sampling, data_seed {mixture['data_seed']})",
                  title_justify="left")
    sources = mixture["sources"]
    counts = ("rows_in_cache", "dropped_over_max_length", "rows_drawn", "rows_repeated", "tokens")
    shares = [key for key in ("image_tokens", "video_tokens", "text_tokens", "trained_tokens")
              if sources and key in sources[0]]
    table.add_column("source")
    for name in ("rows", "over max_length", "drawn", "repeated", "tokens", *(key.split("_")[0] for key in shares)):
        table.add_column(name, justify="right")
    for item in sources:
        table.add_row(item["source"], *(f"{item[key]:,}" for key in counts),
                      *(pct(item[key] / item["tokens"] if item["tokens"] else 0.0) for key in shares))
    tokens = sum(item["tokens"] for item in sources)
    table.add_row("total", *(f"{sum(item[key] for item in sources):,}" for key in counts),
                  *(pct(sum(item[key] for item in sources) / tokens if tokens else 0.0) for key in shares))
    return table


def print_mixture(mixture: dict[str, Any], console: Console) -> None:
    console.print(mixture_table(mixture))


def print_packing(plan: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]packing plan[/] (ms-swift's own packing code): {plan['strategy']}, packing_length "
                  f"{plan['packing_length']:,}, packing_num_proc {plan['packing_num_proc']}")
    dropped = f" ({plan['dropped_over_max_length']:,} over max_length dropped first)" \
        if plan["dropped_over_max_length"] else ""
    console.print(f"  {plan['rows']:,} rows{dropped} -> {plan['num_packs']:,} packs, fill {pct(plan['fill'])}; "
                  f"padding {pct(plan['padding_fraction_packed'])} packed vs "
                  f"{pct(plan['padding_fraction_unpacked'])} unpacked (batch {plan['batch_size']})")
    console.print(f"  batch {plan['batch_size']} × grad-accum {plan['grad_accum']} × gpus {plan['gpus']}: "
                  f"{plan['tokens_per_step']:,.0f} tokens per optimizer step, {plan['steps_per_epoch']:,} steps per "
                  f"epoch packed ({plan['steps_per_epoch_unpacked']:,} unpacked), {plan['total_steps']:,} steps for "
                  f"{plan['epochs']:g} epoch(s)")


def print_what_if(rows: list[dict[str, Any]], max_length: int | None, console: Console) -> None:
    table = Table(title="what-if IMAGE_MAX_TOKEN_NUM", title_justify="left")
    table.add_column("")
    for row in rows:
        table.add_column(f"{row['image_max_tokens']:,}", justify="right")
    lines = [("total tokens", "tokens", "{:,}"), ("p50 length", "p50", "{:,}"), ("p95 length", "p95", "{:,}"),
             ("max length", "max", "{:,}"), ("image-token share", "image_token_share", None),
             (f"over --max-length {max_length:,}" if max_length else "over --max-length", "over_max_length", "{:,}"),
             ("packs", "packs", "{:,}"), ("steps per epoch", "steps_per_epoch", "{:,}"),
             ("unencodable", "unencodable", "{:,}")]
    for label, key, fmt in lines:
        table.add_row(label, *[pct(row[key]) if fmt is None else fmt.format(row[key]) for row in rows])
    console.print(table)
