"""The one way to get a TokenCounter: from a model folder (or Hub id, or the embedded processor) or a cache manifest.

The counter counts with the folder's tokenizer (vlprep.counting.processor_memo) and its model family's geometry and
token ids (vlprep.models.registry), under the given settings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vlprep.counting.processor import resolve_model_dir
from vlprep.counting.processor_memo import ProcessorFacts, counting_tokenizer, processor_facts
from vlprep.counting.settings import CountSettings
from vlprep.counting.tokens import TokenCounter
from vlprep.models.registry import family_for_model_dir


def counter_for_model_dir(model_dir: Path, trust_remote_code: bool, settings: CountSettings,
                          facts: ProcessorFacts | None = None) -> TokenCounter:
    """A counter for a resolved model folder; `facts` when the caller has them already."""
    facts = facts or processor_facts(model_dir, trust_remote_code)
    return TokenCounter(counting_tokenizer(model_dir, trust_remote_code, facts),
                        replace(settings, family=family_for_model_dir(model_dir)))


def counter_for_model(model: str | None, trust_remote_code: bool, settings: CountSettings) -> TokenCounter:
    """A counter for `--model` (a folder, a Hub id, or None: the embedded processor)."""
    return counter_for_model_dir(resolve_model_dir(model, trust_remote_code), trust_remote_code, settings)


def counter_for_manifest(manifest: dict[str, Any]) -> TokenCounter:
    """A counter with the processor and settings a cache was built with."""
    processor = manifest["processor"]
    model = None if processor["model"] == "embedded" else processor["model"]
    return counter_for_model(model, bool(processor.get("trust_remote_code")), CountSettings.from_manifest(manifest))
