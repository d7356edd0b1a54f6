"""The model families vlprep counts for, and which one a model folder or a cache manifest is.

Adding a family: a module beside qwen3_vl.py that defines its `ModelFamily`, and one entry in FAMILIES.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlprep.errors import ProcessorError
from vlprep.models.family import ModelFamily
from vlprep.models.qwen3_5 import QWEN3_5, QWEN3_5_MOE
from vlprep.models.qwen3_vl import QWEN3_VL, QWEN3_VL_MOE

FAMILIES: tuple[ModelFamily, ...] = (QWEN3_VL, QWEN3_VL_MOE, QWEN3_5, QWEN3_5_MOE)
# The embedded processor's family; also a processor-only folder's (no config.json) and a cache's from before the
# manifest recorded a family.
DEFAULT_FAMILY = QWEN3_VL


def family_named(name: str) -> ModelFamily:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise ProcessorError(f"unknown model family {name!r} (this vlprep knows {', '.join(f.name for f in FAMILIES)}): "
                         "the cache was built by another vlprep; rebuild it with this one")


def family_for_model_dir(model_dir: Path) -> ModelFamily:
    """The family of a model folder, from its config.json `model_type` (else `architectures`). A folder without a
    readable config.json, or one that names neither, is a processor-only folder of the default family."""
    try:
        config: Any = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_FAMILY
    if not isinstance(config, dict):
        return DEFAULT_FAMILY
    model_type, architectures = config.get("model_type"), config.get("architectures")
    architectures = architectures if isinstance(architectures, list) else []
    for family in FAMILIES:
        if model_type in family.config_model_types or any(name in family.architectures for name in architectures):
            return family
    if model_type is None and not architectures:
        return DEFAULT_FAMILY
    raise ProcessorError(f"{model_dir}: config.json names model_type {model_type!r} (architectures {architectures}), "
                         f"not a model family vlprep counts for ({', '.join(f.title for f in FAMILIES)}). Fix: pass "
                         "--model with a model folder or Hub id of one of them")


def family_of_manifest(manifest: dict[str, Any]) -> ModelFamily:
    """The family a cache was counted for (`processor.family`; a cache from before it was recorded: the default)."""
    return family_named(manifest["processor"].get("family", DEFAULT_FAMILY.name))
