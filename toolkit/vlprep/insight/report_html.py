"""`vlprep report`: one self-contained HTML page about a cache — nothing is fetched when it is opened.

CSS is inline, the plots and image thumbnails are PNG data URIs, there is no script. Sections (each an element with an
id): summary (manifest), stats, rejects (by rule, with examples and their file:line), plots, packing, samples (records
with thumbnails and the token/label view of `vlprep show`).
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

SECTIONS = ("summary", "stats", "rejects", "plots", "packing", "samples")
THUMBNAIL = 160  # pixels, longest side

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f4f4f4; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; border: 1px solid #eee; }
.record { border: 1px solid #ddd; border-radius: 6px; padding: .8em; margin: 1em 0; }
.thumbs img { border: 1px solid #ccc; margin-right: .5em; vertical-align: top; }
.tokens { font: 12px/1.7 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; background: #fafafa;
          padding: .6em; border: 1px solid #eee; }
.tokens .t { background: #b7efc5; color: #053b16; } .tokens .t.o { background: #8fe3a5; }
.tokens .m { color: #777; } .tokens .m.o { color: #999; }
.tokens .img { background: #e9d5ff; color: #5b21b6; border-radius: 3px; padding: 0 .3em; }
.legend span { margin-right: 1em; } code { background: #f4f4f4; padding: 0 .2em; }
"""


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def thumbnail(image: Any) -> str | None:
    """A PNG data URI of a cached image ({bytes, path} or a path), or None when it cannot be read."""
    from PIL import Image

    from vlprep.insight.stats import image_source

    try:
        with Image.open(image_source(image)) as opened:
            opened.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            opened.convert("RGB").save(buffer, format="PNG")
    except (OSError, ValueError):
        return None
    return png_data_uri(buffer.getvalue())


def table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{escape(label)}</th><td class=n>{escape(format_value(value))}</td></tr>"
                    for label, value in rows)
    return f"<table>{cells}</table>"


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary_section(manifest: dict[str, Any], cache_dir: str) -> str:
    counts, counting = manifest["counts"], manifest["counting"]
    checked = manifest["verification"]["ms_swift_template"]["records_checked"]
    return table([
        ("cache", cache_dir), ("built", manifest["created"]), ("vlprep", manifest["tool"]["vlprep"]),
        ("input lines", counts["input_lines"]), ("train rows", counts["train"]), ("val rows", counts["val"]),
        ("rejected", counts["rejected"]), ("processor", f"{manifest['processor']['model']} "
                                                        f"({manifest['processor']['fingerprint'][:12]})"),
        ("IMAGE_MAX_TOKEN_NUM", counting["image_max_tokens"]), ("IMAGE_MIN_TOKEN_NUM", counting["image_min_tokens"]),
        ("max_length", manifest["max_length"] or "none"), ("records re-encoded by ms-swift", checked)])


def stats_section(doc: dict[str, Any]) -> str:
    lengths = doc["lengths"]
    return table([
        ("records (train)", doc["records"]), ("tokens", doc["tokens"]),
        ("image-token share", percent(doc["image_token_share"])), ("video-token share", percent(doc["video_token_share"])),
        ("text-token share", percent(doc["text_token_share"])),
        ("trained-token share (label ≠ -100)", percent(doc["trained_token_share"])),
        ("length p50 / p95 / p99 / max", f"{lengths['p50']:,} / {lengths['p95']:,} / {lengths['p99']:,} / "
                                         f"{lengths['max']:,}"),
        ("images per record (mean / max)", f"{doc['images_per_record']['mean']} / {doc['images_per_record']['max']}"),
        ("turns per record (mean / max)", f"{doc['turns_per_record']['mean']} / {doc['turns_per_record']['max']}")])


def rejects_section(doc: dict[str, Any]) -> str:
    if not doc["rejects_by_rule"]:
        return "<p>No rejected lines.</p>"
    from vlprep.records.rules import RULES

    rows = []
    for code, count in doc["rejects_by_rule"].items():
        examples = "<br>".join(f"<code>{escape(example['where'])}</code> {escape(example['message'][:200])}"
                               for example in doc["reject_examples"].get(code, []))
        name = RULES[code].name if code in RULES else ""
        rows.append(f"<tr><td><code>{escape(code)}</code> {escape(name)}</td><td class=n>{count:,}</td>"
                    f"<td>{examples}</td></tr>")
    return f"<table><tr><th>rule</th><th>lines</th><th>examples</th></tr>{''.join(rows)}</table>"


def packing_section(plan: dict[str, Any]) -> str:
    return table([
        ("strategy", plan["strategy"]), ("packing_length", plan["packing_length"]),
        ("rows packed", plan["rows"]), ("dropped over max_length", plan["dropped_over_max_length"]),
        ("packs", plan["num_packs"]), ("fill", percent(plan["fill"])),
        ("padding packed / unpacked", f"{percent(plan['padding_fraction_packed'])} / "
                                      f"{percent(plan['padding_fraction_unpacked'])}"),
        ("batch × grad-accum × gpus", f"{plan['batch_size']} × {plan['grad_accum']} × {plan['gpus']}"),
        ("tokens per optimizer step", round(plan["tokens_per_step"])),
        ("steps per epoch (packed / unpacked)", f"{plan['steps_per_epoch']:,} / {plan['steps_per_epoch_unpacked']:,}"),
        ("total steps", plan["total_steps"])]) + (
        "<p>Packs computed by ms-swift's own packing code (<code>PackingDataset.create_packed_idx</code>).</p>")


def tokens_html(view: dict[str, Any]) -> str:
    parts = []
    for span in view["spans"]:
        if span["kind"] == "image":
            t, h, w = span["grid"] or (0, 0, 0)
            parts.append(f"<span class=img>&lt;|image_pad|&gt; ×{span['tokens']:,} grid {t}×{h}×{w}</span>")
            continue
        kind = "t" if span["trained"] else "m"
        for position, piece in enumerate(span["pieces"]):
            odd = " o" if (span["start"] + position) % 2 else ""
            parts.append(f"<span class='{kind}{odd}'>{escape(piece)}</span>")
    return "".join(parts)


def sample_html(view: dict[str, Any], images: list[Any]) -> str:
    thumbs = "".join(f"<img src='{uri}' alt='image {index}'>" for index, uri in
                     enumerate(thumbnail(image) for image in images) if uri)
    turns = ", ".join(f"{turn['role']} {turn['tokens']:,} ({turn['trained']:,} trained)" for turn in view["turns"])
    return (f"<div class=record><h3>{escape(view['where'])}</h3><p>{view['length']:,} tokens, "
            f"{view['trained_tokens']:,} trained, {view['image_tokens']:,} image tokens. Turns: {escape(turns)}</p>"
            f"<div class=thumbs>{thumbs}</div><div class=tokens>{tokens_html(view)}</div></div>")


def render_report(cache_dir: str, manifest: dict[str, Any], doc: dict[str, Any], plot_png: bytes,
                  samples: list[tuple[dict[str, Any], list[Any]]], curves_png: bytes | None = None) -> str:
    legend = ("<p class=legend><span class=tokens><span class=t>trained token</span></span> "
              "<span class=tokens><span class=m>masked token</span></span> "
              "<span class=tokens><span class=img>&lt;|image_pad|&gt; ×N grid</span></span> one marker per image</p>")
    body = {
        "summary": summary_section(manifest, cache_dir),
        "stats": stats_section(doc),
        "rejects": rejects_section(doc),
        "plots": f"<img class=plot src='{png_data_uri(plot_png)}' alt='lengths, pack fill, pixel-limit what-if'>" + (
            f"<img class=plot src='{png_data_uri(curves_png)}' alt='training curves (vltrain fit)'>"
            if curves_png else ""),
        "packing": packing_section(doc["packing"]),
        "samples": legend + "".join(sample_html(view, images) for view, images in samples),
    }
    titles = {"summary": "Cache", "stats": "What training gets", "rejects": "Rejected lines by rule",
              "plots": "Plots", "packing": "Packing plan", "samples": "Sample records as training sees them"}
    sections = "".join(f"<section id={name}><h2>{titles[name]}</h2>{body[name]}</section>" for name in SECTIONS)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>vlprep report: {escape(cache_dir)}</title>"
            f"<style>{CSS}</style></head><body><h1>vlprep report: {escape(cache_dir)}</h1>{sections}</body></html>\n")
