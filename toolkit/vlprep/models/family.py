"""What differs between the model families vlprep counts for: one frozen `ModelFamily` per family.

Everything outside `vlprep.models` asks a family (vlprep.models.registry) for ms-swift's template and model_type, the
special token ids, the vision geometry (patch, spatial merge, temporal patch) and the embedded processor's build, so
that adding a family is one module beside qwen3_vl.py and one line in the registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Token:
    """A special token: its text and its id in the family's vocabulary."""

    text: str
    id: int


@dataclass(frozen=True, repr=False)
class ModelFamily:
    name: str  # what a cache manifest records (`processor.family`) and the embedded build's folder prefix
    title: str  # how messages name it
    template: str  # ms-swift's template_type
    model_type: str  # ms-swift's model_type
    config_model_types: tuple[str, ...]  # config.json `model_type` values of this family
    architectures: tuple[str, ...]  # config.json `architectures` of this family
    image_pad: Token
    video_pad: Token
    vision_start: Token
    vision_end: Token
    im_start: Token
    im_end: Token
    patch_size: int
    spatial_merge: int
    temporal_patch: int
    model_vocab_size: int  # rows of the embedding matrix (beyond the tokenizer's ids: padding for the GPU)
    config_class: str  # transformers class names, for the embedded build and random-weight test models
    model_class: str
    reference: str  # folder under vlprep/models/reference/ holding the family's reference processor files
    probe_texts: tuple[str, ...]  # texts whose ids a cache stores (vlprep.counting.token_probe)
    build_key: Callable[[], str]  # hash of everything the embedded build reads
    build_processor: Callable[[Path], None]  # writes the embedded processor directory
    # ms-swift template behaviour that changes the text (vlprep.counting.tokens): the prefix put before an assistant
    # reply without `<think>` when thinking is on, and `|trim` of user/system/tool content with <think> re-wrapping.
    non_thinking_prefix: str = ""
    trims_content: bool = False

    def __repr__(self) -> str:
        return f"ModelFamily({self.name!r})"

    def counts_like(self, other: "ModelFamily") -> bool:
        """Same tokens for the same record: same template, vocabulary and text rules (a MoE and its dense family)."""
        return (self.template, self.reference, self.non_thinking_prefix, self.trims_content) == \
            (other.template, other.reference, other.non_thinking_prefix, other.trims_content)

    @property
    def factor(self) -> int:
        """Pixels per image-token side: images are resized to multiples of it."""
        return self.patch_size * self.spatial_merge

    @property
    def pixels_per_token(self) -> int:
        return self.factor * self.factor

    def tokens_per_grid(self, grid: tuple[int, int, int]) -> int:
        """Pad tokens of one image or video grid (t, h, w in patches): merged spatial_merge² patches each."""
        t, h, w = grid
        return t * h * w // (self.spatial_merge * self.spatial_merge)

    def tokens_per_grids(self, grids: Any) -> int:
        return sum(self.tokens_per_grid(grid) for grid in grids)

    def geometry(self) -> dict[str, int]:
        """The image processor settings that decide grids, with transformers' names."""
        return {"patch_size": self.patch_size, "temporal_patch_size": self.temporal_patch,
                "merge_size": self.spatial_merge}

    def reference_file(self, name: str) -> Traversable:
        return resources.files("vlprep.models").joinpath("reference", self.reference, name)

    def special_tokens(self) -> list[dict[str, Any]]:
        """The added tokens (`id`, `content`, `special`) of the family's tokenizer."""
        return json.loads(self.reference_file("special_tokens.json").read_text("utf-8"))
