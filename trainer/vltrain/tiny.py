"""Random-weight Qwen3-VL models built from a config, offline: for tests, the demo and the GPU check.

`tiny` (~10 M parameters) trains on 2 CPU cores in seconds; `2b` has the layer shapes of Qwen3-VL-2B-Instruct, for
measuring throughput on a GPU without downloading weights. Both carry the embedded processor, so the folder is a
complete model directory for ms-swift and for `vltrain fit --model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 32768,
                        "rope_scaling": {"rope_type": "default", "mrope_section": [4, 2, 2], "mrope_interleaved": True}},
        "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                          "out_hidden_size": 64, "deepstack_visual_indexes": [0, 1]},
    },
    "2b": {
        "text_config": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
                        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                        "max_position_embeddings": 262144, "rope_theta": 5_000_000,
                        "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True}},
        "vision_config": {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
                          "out_hidden_size": 2048, "deepstack_visual_indexes": [5, 11, 17]},
    },
}


def build_random_model(out_dir: Path, shape: str = "tiny", seed: int = 0, dtype: str = "float32") -> Path:
    """Write a seeded random-weight model of the embedded processor's family (weights, config, the processor) to
    `out_dir`."""
    import torch
    import transformers

    from vlprep.counting.processor import load_processor
    from vlprep.models.registry import DEFAULT_FAMILY

    spec = SHAPES[shape]
    config = getattr(transformers, DEFAULT_FAMILY.config_class)(
        text_config={**spec["text_config"], "vocab_size": DEFAULT_FAMILY.model_vocab_size},
        vision_config=spec["vision_config"], tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = getattr(transformers, DEFAULT_FAMILY.model_class)(config).to(getattr(torch, dtype))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    load_processor(None).save_pretrained(out_dir)
    return out_dir
