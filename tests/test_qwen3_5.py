"""Qwen3.5 counting parity: vlprep's header-only TokenCounter against ms-swift's own `qwen3_5` template (model type
qwen3_5, the embedded Qwen3.5 processor), on the original records, position by position (ids and labels)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from swift_oracles import Oracles
from vlprep.cache.verify import compare, swift_record
from vlprep.checks.images import ImageLimits, check_image
from vlprep.counting.processor import embedded_processor_dir, load_processor
from vlprep.counting.settings import CountSettings
from vlprep.counting.tokens import TokenCounter
from vlprep.models.qwen3_5 import QWEN3_5

pytestmark = pytest.mark.slow
SETTINGS = CountSettings(family=QWEN3_5)

RECORDS: dict[str, dict[str, Any]] = {
    "image": {"messages": [{"role": "user", "content": "<image>What is shown?"},
                           {"role": "assistant", "content": "An astronaut in a white suit."}], "images": ["a.png"]},
    "system_padded": {"messages": [{"role": "system", "content": "  Be brief.\n"},
                                   {"role": "user", "content": "\n<image> Describe it.  "},
                                   {"role": "assistant", "content": " A gradient.\n\n"}], "images": ["a.png"]},
    "reasoning": {"messages": [{"role": "user", "content": "<image>Count the stripes."},
                               {"role": "assistant", "content": "<think>I see three.</think>Three."}],
                  "images": ["a.png"]},
    "reasoning_padded": {"messages": [{"role": "user", "content": "2+2?"},
                                      {"role": "assistant", "content": "<think>\n\n 2+2 = 4 \n</think>\n\n\n4"}]},
    "multi_turn": {"messages": [{"role": "user", "content": "<image>Colour?"},
                                {"role": "assistant", "content": "<think>Look.</think>Grey."},
                                {"role": "user", "content": "And the shape?"},
                                {"role": "assistant", "content": "A square."},
                                {"role": "user", "content": "Sure?"},
                                {"role": "assistant", "content": "<think>Check again.</think>Yes."}],
                   "images": ["a.png"]},
    "no_loss_history": {"messages": [{"role": "user", "content": "Hi"},
                                     {"role": "assistant", "content": "Hello.", "loss": False},
                                     {"role": "user", "content": "Bye"},
                                     {"role": "assistant", "content": "Goodbye."}]},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("qwen3_5")
    ramp = Image.linear_gradient("L").resize((120, 80))
    Image.merge("RGB", (ramp, ramp.rotate(90), ramp)).save(folder / "a.png")
    return folder


@pytest.fixture(scope="module")
def oracle(vlprep_cache_dir: Path) -> Iterator[Any]:
    started = Oracles(embedded_processor_dir(QWEN3_5), {"default": SETTINGS})
    yield started["default"]
    started.close()


@pytest.mark.swift
@pytest.mark.parametrize("name", RECORDS)
def test_counter_matches_ms_swift_qwen3_5(name: str, folder: Path, oracle: Any) -> None:
    record = RECORDS[name]
    infos = [check_image(ref, folder, None, ImageLimits()).info for ref in record.get("images", [])]
    record = {**record, "images": [str(folder / ref) for ref in record.get("images", [])]}
    tokenizer = load_processor(str(embedded_processor_dir(QWEN3_5))).tokenizer
    ours = TokenCounter(tokenizer.backend_tokenizer, SETTINGS).encode(record, infos)
    theirs = oracle.encode(swift_record(record, infos))
    assert ours.input_ids == theirs["input_ids"], tokenizer.decode(theirs["input_ids"])
    assert ours.labels == theirs["labels"]
    assert compare(ours, theirs) is None


def test_cache_with_family_qwen3_5_verifies_against_ms_swift(folder: Path, tmp_path: Path) -> None:
    """`vlprep cache data.jsonl --family qwen3_5` with default options: offline, verified by ms-swift's qwen3_5."""
    from typer.testing import CliRunner

    from vlprep.cli.app import app

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({**RECORDS[name], "images": [str(folder / "a.png")] * len(
        RECORDS[name].get("images", []))}) + "\n" for name in ("image", "reasoning", "multi_turn")))
    result = CliRunner().invoke(app, ["cache", str(data), "--family", "qwen3_5", "--out", str(tmp_path / "c"), "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert {key: manifest["processor"][key] for key in ("model", "family", "model_type", "template")} == \
        {"model": QWEN3_5.name, "family": QWEN3_5.name, "model_type": QWEN3_5.model_type, "template": QWEN3_5.template}
    checked = manifest["verification"]["ms_swift_template"]
    assert (checked["records_checked"], checked["mismatches"]) == (3, 0), checked
