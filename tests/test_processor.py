"""The embedded Qwen3-VL processor: official files, official rendering, ms-swift loading, fingerprint, caching."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from transformers import AutoProcessor, AutoTokenizer, Qwen3VLProcessor

from vlprep.counting import processor as vp
from vlprep.models.qwen3_vl import QWEN3_VL

# Official SHA-256 sums of Qwen3-VL's vocab.json and merges.txt (reference README), written out independently here.
OFFICIAL_VOCAB_SHA256 = "ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910"
OFFICIAL_MERGES_SHA256 = "599bab54075088774b1733fde865d5bd747cbcc7a547c5bc12610e874e26f5e3"

README_CONVERSATION = [
    {
        "role": "user",
        "content": [{"type": "image", "image": "cat.png"}, {"type": "text", "text": "Describe this image."}],
    },
    {"role": "assistant", "content": "A cat sitting on a mat."},
]
README_TEXT = (
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
    "<|im_start|>assistant\nA cat sitting on a mat.<|im_end|>\n"
)
README_IDS = [151644, 872, 198, 151652, 151655, 151653, 74785, 419, 2168, 13, 151645, 198,
              151644, 77091, 198, 32, 8251, 11699, 389, 264, 5517, 13, 151645, 198]  # fmt: skip


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private VLPREP_CACHE_DIR for this module, so the tests never touch ~/.cache."""
    root = tmp_path_factory.mktemp("vlprep-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLPREP_CACHE_DIR", str(root))
        vp.load_processor.cache_clear()
        yield root
        vp.load_processor.cache_clear()


@pytest.fixture(scope="module")
def racing_builds(cache_dir: Path) -> list[Path]:
    """The module's one build, done by two builders racing into the same empty cache folder."""
    results: list[Path] = []
    builders = [threading.Thread(target=lambda: results.append(vp.embedded_processor_dir())) for _ in range(2)]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join()
    return results


@pytest.fixture(scope="module")
def embedded_dir(racing_builds: list[Path]) -> Path:
    return racing_builds[0]


@pytest.fixture(scope="module")
def processor(embedded_dir: Path):
    return vp.load_processor()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_embedded_dir_is_in_the_cache_folder(cache_dir: Path, embedded_dir: Path) -> None:
    assert embedded_dir.parent == cache_dir
    assert {"config.json", "tokenizer.json", "vocab.json", "merges.txt", "chat_template.jinja"} <= {
        p.name for p in embedded_dir.iterdir()
    }


def test_embedded_dir_loads_with_autoprocessor(embedded_dir: Path) -> None:
    loaded = AutoProcessor.from_pretrained(str(embedded_dir))
    assert type(loaded).__name__ == "Qwen3VLProcessor"
    assert type(loaded.tokenizer).__name__ == "Qwen2Tokenizer"
    image = loaded.image_processor
    assert (image.patch_size, image.temporal_patch_size, image.merge_size) == (16, 2, 2)
    assert list(image.image_mean) == list(image.image_std) == [0.5, 0.5, 0.5]


def test_vocab_and_merges_reproduce_the_official_files(embedded_dir: Path) -> None:
    assert sha256(embedded_dir / "vocab.json") == OFFICIAL_VOCAB_SHA256
    assert sha256(embedded_dir / "merges.txt") == OFFICIAL_MERGES_SHA256


def test_tokenizer_size_and_special_tokens(processor) -> None:
    tokenizer = processor.tokenizer
    assert len(tokenizer) == 151669
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    specs = json.loads(QWEN3_VL.reference_file("special_tokens.json").read_text(encoding="utf-8"))
    added = {index: (token.content, token.special) for index, token in tokenizer.added_tokens_decoder.items()}
    assert added == {spec["id"]: (spec["content"], spec["special"]) for spec in specs}
    assert tokenizer("12345")["input_ids"] == [16, 17, 18, 19, 20]  # single digits, no BOS/EOS


def test_readme_conversation_renders_to_official_ids(processor) -> None:
    text = processor.apply_chat_template(README_CONVERSATION, tokenize=False)
    assert text == README_TEXT
    assert processor.tokenizer(text)["input_ids"] == README_IDS


@pytest.mark.swift
def test_loads_through_ms_swift(embedded_dir: Path, processor) -> None:
    from swift import get_model_processor, get_template

    model, swift_processor = get_model_processor(str(embedded_dir), model_type="qwen3_vl", load_model=False)
    assert model is None
    template = get_template(swift_processor, template_type="qwen3_vl")
    template.set_mode("train")
    encoded = template.encode(
        {
            "messages": [
                {"role": "user", "content": "<image>Describe this image."},
                {"role": "assistant", "content": "A cat sitting on a mat."},
            ],
            "images": [Image.new("RGB", (64, 64))],
        }
    )
    # A 64x64 image is 2x2 tokens of 32x32 pixels: the one <|image_pad|> of the rendering becomes four.
    pad = README_IDS.index(151655)
    assert encoded["input_ids"] == README_IDS[:pad] + [151655] * 4 + README_IDS[pad + 1 :]
    assert vp.processor_fingerprint(swift_processor) == vp.processor_fingerprint(processor)


def test_fingerprint_is_stable_across_loads_and_copies(embedded_dir: Path, processor, tmp_path: Path) -> None:
    fingerprint = vp.processor_fingerprint(processor)
    assert len(fingerprint) == 64
    assert vp.processor_fingerprint(AutoProcessor.from_pretrained(str(embedded_dir))) == fingerprint
    processor.save_pretrained(tmp_path)
    assert vp.processor_fingerprint(AutoProcessor.from_pretrained(str(tmp_path))) == fingerprint


def test_fingerprint_matches_a_tokenizer_built_from_the_official_file_format(
    embedded_dir: Path, processor, tmp_path: Path
) -> None:
    # The layout of the official repositories: vocab.json + merges.txt + tokenizer_config.json, no tokenizer.json.
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(embedded_dir / name, tmp_path / name)
    specs = json.loads(QWEN3_VL.reference_file("special_tokens.json").read_text(encoding="utf-8"))
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "added_tokens_decoder": {
            str(spec["id"]): {"content": spec["content"], "special": spec["special"], "normalized": False}
            for spec in specs
        },
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    independent = Qwen3VLProcessor(
        image_processor=processor.image_processor,
        tokenizer=AutoTokenizer.from_pretrained(str(tmp_path)),
        video_processor=processor.video_processor,
        chat_template=QWEN3_VL.reference_file("chat_template.jinja").read_text(encoding="utf-8"),
    )
    assert vp.processor_fingerprint(independent) == vp.processor_fingerprint(processor)


def test_fingerprint_changes_with_the_chat_template(processor, tmp_path: Path) -> None:
    processor.save_pretrained(tmp_path)
    template = tmp_path / "chat_template.jinja"
    template.write_text(template.read_text(encoding="utf-8").replace("<|im_end|>\\n", "<|im_end|>"), encoding="utf-8")
    changed = AutoProcessor.from_pretrained(str(tmp_path))
    assert changed.chat_template != processor.chat_template
    assert vp.processor_fingerprint(changed) != vp.processor_fingerprint(processor)


def test_rebuild_is_skipped_when_inputs_are_unchanged(cache_dir: Path, embedded_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in [embedded_dir, *embedded_dir.iterdir()]}
    assert vp.embedded_processor_dir() == embedded_dir
    assert {p.name: p.stat().st_mtime_ns for p in [embedded_dir, *embedded_dir.iterdir()]} == before
    assert list(cache_dir.iterdir()) == [embedded_dir]  # no staging folders left behind


def test_concurrent_builds_leave_one_complete_dir(cache_dir: Path, racing_builds: list[Path]) -> None:
    assert len(racing_builds) == 2 and racing_builds[0] == racing_builds[1]
    assert list(cache_dir.iterdir()) == [racing_builds[0]]
    assert sha256(racing_builds[0] / "vocab.json") == OFFICIAL_VOCAB_SHA256


def test_resolve_model_dir(embedded_dir: Path, tmp_path: Path) -> None:
    assert vp.resolve_model_dir(None) == embedded_dir
    assert vp.resolve_model_dir(str(tmp_path)) == tmp_path
    with pytest.raises(vp.ProcessorError, match="not a model directory"):
        vp.resolve_model_dir(str(tmp_path / "missing"))


def test_unavailable_hub_model_raises_with_the_fix(cache_dir: Path) -> None:
    with pytest.raises(vp.ProcessorError, match="hf download"):
        vp.resolve_model_dir("vlprep-tests/no-such-processor")


def test_load_processor_is_cached_per_process(processor) -> None:
    assert vp.load_processor() is processor
