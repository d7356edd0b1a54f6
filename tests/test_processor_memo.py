"""vlprep.counting.processor_memo: the fingerprint and counting tokenizer a cache build uses without importing transformers.

The memo must give exactly what the loaded processor gives (fingerprint, token ids), follow any edit of the processor
files, keep `trust_remote_code` decisions apart, and fall back to transformers where tokenizer.json alone is not exact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vlprep.counting.processor import load_processor, processor_fingerprint
from vlprep.counting.processor_memo import counting_tokenizer, directory_digest, processor_facts

TEXTS = [
    "plain English, with punctuation: 1,234.5!",
    "\n\nleading newlines and trailing spaces   ",
    "中文文本，混合 English 和数字 2026。",
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe.<|im_end|>\n",
    "emoji 🙂👍🏽 and combining e\u0301 (NFC) and tabs\tinside",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call><think>\n\n</think>",
]


@pytest.fixture()
def model_copy(embedded_processor_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the embedded processor as a local --model directory, with a memo folder of its own."""
    monkeypatch.setenv("VLPREP_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "model"
    shutil.copytree(embedded_processor_path, target)
    load_processor.cache_clear()
    yield target
    load_processor.cache_clear()


def memo_files(root: Path) -> list[Path]:
    return sorted((root / "cache" / "processor-facts").glob("*.json"))


def test_facts_equal_the_loaded_processor_and_are_stored(model_copy: Path) -> None:
    facts = processor_facts(model_copy)
    assert facts.fingerprint == processor_fingerprint(load_processor(str(model_copy)))
    assert facts.tokenizer_json_is_exact
    [memo] = memo_files(model_copy.parent)
    assert json.loads(memo.read_text()) == {"fingerprint": facts.fingerprint, "tokenizer_json_is_exact": True}


def test_a_stored_memo_needs_no_transformers(model_copy: Path) -> None:
    expected = processor_facts(model_copy).fingerprint
    probe = ("import sys, json\n"
             "from vlprep.counting.processor_memo import counting_tokenizer, processor_facts\n"
             "from pathlib import Path\n"
             f"model_dir = Path({str(model_copy)!r})\n"
             "facts = processor_facts(model_dir)\n"
             "ids = counting_tokenizer(model_dir, False, facts).encode('hi there', add_special_tokens=False).ids\n"
             "print(json.dumps([facts.fingerprint, 'transformers' in sys.modules, 'torch' in sys.modules, ids]))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ, check=True)
    fingerprint, imported_transformers, imported_torch, ids = json.loads(done.stdout.strip().splitlines()[-1])
    assert fingerprint == expected
    assert not imported_transformers and not imported_torch
    assert ids == load_processor(str(model_copy)).tokenizer.encode("hi there", add_special_tokens=False)


def test_tokenizer_json_alone_encodes_like_transformers(model_copy: Path, embedded_processor: Any) -> None:
    facts = processor_facts(model_copy)
    alone = counting_tokenizer(model_copy, False, facts)
    loaded = embedded_processor.tokenizer
    assert type(alone).__module__.startswith("tokenizers")
    for text in TEXTS:
        assert alone.encode(text, add_special_tokens=False).ids == loaded.encode(text, add_special_tokens=False), text


def test_the_memo_follows_edits_of_the_processor_files(model_copy: Path) -> None:
    before = processor_facts(model_copy).fingerprint
    template = model_copy / "chat_template.jinja"
    template.write_text(template.read_text() + "{# edited #}")
    load_processor.cache_clear()
    after = processor_facts(model_copy)
    assert after.fingerprint != before
    assert after.fingerprint == processor_fingerprint(load_processor(str(model_copy)))
    assert len(memo_files(model_copy.parent)) == 2


def test_trust_remote_code_is_part_of_the_key(model_copy: Path) -> None:
    assert directory_digest(model_copy, False) != directory_digest(model_copy, True)


def test_without_tokenizer_json_counting_goes_through_transformers(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()  # transformers rebuilds the tokenizer from vocab.json + merges.txt
    facts = processor_facts(model_copy)
    assert not facts.tokenizer_json_is_exact
    backend = counting_tokenizer(model_copy, False, facts)
    loaded = load_processor(str(model_copy)).tokenizer
    for text in TEXTS:
        assert backend.encode(text, add_special_tokens=False).ids == loaded.encode(text, add_special_tokens=False)
    assert facts.fingerprint == processor_fingerprint(load_processor(str(model_copy)))


def test_a_tokenizer_json_that_differs_from_what_transformers_loads_is_not_used_alone(model_copy: Path) -> None:
    config_path = model_copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["extra_special_tokens"] = ["<|vlprep_probe|>"]  # added by transformers on load; tokenizer.json lacks it
    config_path.write_text(json.dumps(config))
    facts = processor_facts(model_copy)
    assert not facts.tokenizer_json_is_exact
    backend = counting_tokenizer(model_copy, False, facts)
    assert backend.encode("a <|vlprep_probe|> b", add_special_tokens=False).ids == load_processor(
        str(model_copy)).tokenizer.encode("a <|vlprep_probe|> b", add_special_tokens=False)
