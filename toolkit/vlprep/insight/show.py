"""`vlprep show`: one record as training sees it — its tokens, which of them are trained (labels ≠ -100), its images.

The ids and labels are `TokenCounter.encode`'s, the ones `vlprep cache` verifies against ms-swift's template. The view
groups them into spans: runs of text tokens with the same trained/masked state, and one span per image (its
`<|image_pad|>` run, with the token count and grid). `--format json` gives the ids, labels, spans and turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from vlprep.records.diagnostics import ImageInfo
from vlprep.counting.turns import split_turns
from vlprep.errors import UsageError
from vlprep.models.family import ModelFamily
from vlprep.models.registry import family_of_manifest


class ShowError(UsageError):
    """The record cannot be shown (no such row or line, or the line is rejected): a message for the user."""


@dataclass(frozen=True)
class Located:
    """Where the record comes from and what it is: its canonical form and the image infos it is counted with."""

    where: str
    record: dict[str, Any]
    images: list[ImageInfo]
    image_refs: list[Any]  # as cached or written: paths, or {bytes, path} when embedded


def record_view(counter: Any, located: Located) -> dict[str, Any]:
    encoded = counter.encode(located.record, located.images)
    ids, labels = encoded.input_ids, encoded.labels
    family = counter.settings.family
    pad = family.image_pad.id
    pieces = counter.backend.decode_batch([[token] for token in ids], skip_special_tokens=False)
    spans: list[dict[str, Any]] = []
    image_index = 0
    start = 0
    while start < len(ids):
        if ids[start] == pad:
            end = start
            while end < len(ids) and ids[end] == pad:
                end += 1
            grid = list(encoded.grids[image_index]) if image_index < len(encoded.grids) else None
            spans.append({"kind": "image", "start": start, "end": end, "trained": False, "image": image_index,
                          "tokens": end - start, "grid": grid})
            image_index += 1
        else:
            trained = labels[start] != -100
            end = start
            while end < len(ids) and ids[end] != pad and (labels[end] != -100) == trained:
                end += 1
            spans.append({"kind": "text", "start": start, "end": end, "trained": trained, "tokens": end - start,
                          "pieces": pieces[start:end]})
        start = end
    turns = [{"role": turn.role, "start": turn.start, "end": turn.end, "tokens": turn.tokens, "trained": turn.trained}
             for turn in split_turns(ids, labels, counter.backend.id_to_token, family.im_start.id)]
    image_tokens = family.tokens_per_grids(encoded.grids)
    return {"where": located.where, "length": len(ids), "trained_tokens": sum(1 for label in labels if label != -100),
            "image_tokens": image_tokens, "images": [{"ref": image_ref_text(ref), "grid": list(grid)}
                                                     for ref, grid in zip(located.image_refs, encoded.grids)],
            "turns": turns, "spans": spans, "input_ids": ids, "labels": labels}


def image_ref_text(ref: Any) -> str:
    return (ref.get("path") or "(embedded bytes)") if isinstance(ref, dict) else str(ref)


# ---- finding the record -----------------------------------------------------------------------------------------

def parse_target(target: str) -> tuple[Path, int | None]:
    """`DIR`, `data.jsonl:LINE` (1-based line) or `data.jsonl` (line 1)."""
    path = Path(target)
    if not path.exists() and ":" in target:
        name, _, line = target.rpartition(":")
        if not line.isdigit() or int(line) < 1:
            raise ShowError(f"{target}: expected FILE:LINE with a line number from 1")
        return Path(name), int(line)
    return path, None


def locate_in_cache(cache_dir: Path, row: int, split: str) -> tuple[Located, dict[str, Any]]:
    from vlprep.insight.stats import cache_split, cached_record, load_cache

    manifest = load_cache(cache_dir)
    dataset = cache_split(cache_dir, split)
    if not 0 <= row < len(dataset):
        raise ShowError(f"{cache_dir}/{split} has {len(dataset):,} rows: --row {row} is out of range")
    cached = dataset[row]
    record, infos = cached_record(cached, family_of_manifest(manifest))
    where = f"{cache_dir}/{split} row {row} (from {cached['vlprep_source']}:{cached['vlprep_line']})"
    return Located(where, record, infos, list(cached["images"])), manifest


def locate_in_jsonl(file: Path, line: int, counter: Any, image_root: Path | None) -> Located:
    """The record on `line`, through the same pipeline `vlprep cache` uses; a rejected line is an error."""
    from vlprep.run.engine import run
    from vlprep.run.pipeline import PipelineOptions
    from vlprep.records.rules import RULES

    options = PipelineOptions(image_root=image_root, keep_records=True)
    result = next(iter(run([file], options, 1, counter_factory=lambda: counter, start=(0, line - 1))), None)
    if result is None or result.line != line:
        raise ShowError(f"{file} has no line {line}")
    if result.record is None or result.counted is None or result.has_errors(frozenset(RULES)):
        problems = "; ".join(f"{d.code} {d.message}" for d in result.diagnostics) or "no record"
        raise ShowError(f"{file}:{line} is rejected, training never sees it: {problems}")
    return Located(f"{file}:{line}", result.record, result.images, list(result.record["images"]))


# ---- text -------------------------------------------------------------------------------------------------------

TRAINED_STYLES = ("bold black on green3", "bold black on green1")
MASKED_STYLES = ("grey62", "grey42")


def print_view(view: dict[str, Any], console: Console, family: ModelFamily) -> None:
    console.print(f"[bold]{escape(view['where'])}[/]: {view['length']:,} tokens, {view['trained_tokens']:,} trained "
                  f"(label != -100), {view['image_tokens']:,} image tokens")
    for index, image in enumerate(view["images"]):
        t, h, w = image["grid"]
        console.print(f"  image {index}: {escape(image['ref'])}  grid {t}×{h}×{w} = "
                      f"{family.tokens_per_grid((t, h, w)):,} tokens")
    for turn in view["turns"]:
        console.print(f"  turn {turn['role']:<10} tokens {turn['start']:>6,}–{turn['end']:<6,} {turn['tokens']:>6,} "
                      f"({turn['trained']:,} trained)")
    console.print("  legend: «trained tokens» (green, one shade per token), masked tokens grey, "
                  "[magenta][<|image_pad|> ×N grid t×h×w][/] one marker per image")
    text = Text()
    for span in view["spans"]:
        if span["kind"] == "image":
            t, h, w = span["grid"] or (0, 0, 0)
            text.append(f"[<|image_pad|> ×{span['tokens']:,} grid {t}×{h}×{w}]", style="magenta")
            continue
        styles = TRAINED_STYLES if span["trained"] else MASKED_STYLES
        if span["trained"]:
            text.append("«", style="bold green")
        for position, piece in enumerate(span["pieces"]):
            text.append(piece, style=styles[(span["start"] + position) % 2])
        if span["trained"]:
            text.append("»", style="bold green")
    console.print(text)
