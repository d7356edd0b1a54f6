"""The one guard against code shipped in a model folder, run before anything reads the folder.

ms-swift loads configs, tokenizers and processors with `trust_remote_code=True`, whatever vlprep asks for, so a model
folder that ships Python files or points at code (`auto_map` in any of its JSON files) would run that code in the
ms-swift encoder of `vlprep cache` and in every training process. Qwen3-VL is native to transformers and needs none.
Every path to a model folder goes through `refuse_shipped_code`: vlprep's own resolution (lint, cache, fit), the
ms-swift encoder child, and each training rank.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlprep.errors import ProcessorError

FIX = ("Qwen3-VL is native to transformers and needs no remote code: remove the files, or pass --trust-remote-code "
       "if you trust them")


class ShippedCodeRefused(ProcessorError):
    """The model folder ships or maps code and --trust-remote-code was not given."""

    def __init__(self, model_dir: Path, shipped: list[str]) -> None:
        self.problem = f"{model_dir} ships Python code ({', '.join(shipped)}) that loading would execute"
        super().__init__(f"{self.problem}. Fix: {FIX}.")


def _declares_auto_map(path: Path) -> bool:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and ("auto_map" in content or any(
        isinstance(value, dict) and "auto_map" in value for value in content.values()))


def shipped_code(model_dir: Path) -> list[str]:
    """What in the folder is or points at code: `*.py` files (top level and one folder down, where transformers and
    ms-swift look) and JSON files declaring `auto_map` (at the top or in a nested processor config)."""
    code_files = sorted(str(path.relative_to(model_dir)) for pattern in ("*.py", "*/*.py")
                        for path in model_dir.glob(pattern))
    mapped = sorted(f"auto_map in {path.name}" for path in model_dir.glob("*.json") if _declares_auto_map(path))
    return code_files + mapped


def refuse_shipped_code(model_dir: Path, trust_remote_code: bool) -> list[str]:
    """Raise ShippedCodeRefused unless the folder ships no code or the user trusts it; returns what it ships."""
    shipped = shipped_code(model_dir)
    if shipped and not trust_remote_code:
        raise ShippedCodeRefused(model_dir, shipped)
    return shipped
