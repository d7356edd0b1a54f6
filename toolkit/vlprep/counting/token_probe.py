"""A token probe stored with each cache, so that another processor is judged by the tokens it makes, not its files.

Two tokenizers can differ in their files (a merge list built another way, a chat template ms-swift never renders) and
still turn every text into the same ids. The processor fingerprint tells them apart; the probe tells whether the
difference matters. `token_probe.json` holds the ids the cache's tokenizer gave for its model family's probe texts
(vlprep.models: scripts, digits, whitespace runs, emoji, control-token look-alikes) and for the first cached records
(their canonical form, the image sizes, and the ids with each image's `<|image_pad|>` run collapsed to one). `vltrain fit` re-encodes them with
the model's tokenizer when the fingerprints differ: identical ids mean the cache's lengths and token ids hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlprep.records.diagnostics import ImageInfo

if TYPE_CHECKING:
    from vlprep.counting.tokens import TokenCounter

PROBE_NAME = "token_probe.json"
PROBE_RECORDS = 16


@dataclass(frozen=True)
class ProbeMismatch:
    where: str  # "probe text 3" or "file:line"
    position: int
    cache_ids: list[int]
    model_ids: list[int]
    cache_text: str
    model_text: str


def collapse_image_pads(ids: list[int], image_pad_id: int) -> list[int]:
    """Each run of `<|image_pad|>` as one: grids are checked by the pixel-limit check, not here."""
    return [token for index, token in enumerate(ids) if token != image_pad_id or index == 0 or ids[index - 1] != token]


def _text_ids(counter: TokenCounter, text: str) -> list[int]:
    return list(counter.backend.encode(text, add_special_tokens=False).ids)


def _record_ids(counter: TokenCounter, record: dict[str, Any], sizes: list[list[int]]) -> list[int]:
    images = [ImageInfo(width, height, "", "", "") for width, height in sizes]
    return collapse_image_pads(counter.encode(record, images).input_ids, counter.settings.family.image_pad.id)


def probe_entry(counter: TokenCounter, file: str, line: int, record: dict[str, Any], images: list[ImageInfo]
                ) -> dict[str, Any]:
    sizes = [[info.width, info.height] for info in images]
    return {"where": f"{file}:{line}", "record": record, "image_sizes": sizes,
            "ids": _record_ids(counter, record, sizes)}


def write_probe(path: Path, counter: TokenCounter, records: list[dict[str, Any]]) -> None:
    texts = [{"text": text, "ids": _text_ids(counter, text)} for text in counter.settings.family.probe_texts]
    path.write_text(json.dumps({"texts": texts, "records": records}, ensure_ascii=False) + "\n", encoding="utf-8")


def load_probe(cache_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((cache_dir / PROBE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def compare_probe(probe: dict[str, Any], counter: TokenCounter) -> tuple[int, ProbeMismatch | None]:
    """(items compared, the first difference) between the probe's ids and what `counter` makes of the same input."""
    items = [(f"probe text {index + 1}", entry["ids"], _text_ids(counter, entry["text"]))
             for index, entry in enumerate(probe["texts"])]
    items += [(entry["where"], entry["ids"], _record_ids(counter, entry["record"], entry["image_sizes"]))
              for entry in probe["records"]]
    for where, cached, model in items:
        if cached != model:
            position = next((i for i, (a, b) in enumerate(zip(cached, model)) if a != b), min(len(cached), len(model)))
            window = slice(position, position + 4)
            return len(items), ProbeMismatch(where, position, cached[window], model[window],
                                              counter.backend.decode(cached[window], skip_special_tokens=False),
                                              counter.backend.decode(model[window], skip_special_tokens=False))
    return len(items), None
