"""The processor: an embedded offline build, or one resolved from a local directory or the Hub.

The embedded processor is the default model family's build (vlprep.models), saved once as an ordinary Hugging Face
processor directory in a user cache folder, and loaded with `AutoProcessor` like any other checkpoint. ms-swift loads
the same directory (it holds a weight-less config.json).
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlprep.errors import ProcessorError
from vlprep.models.family import ModelFamily
from vlprep.models.registry import DEFAULT_FAMILY, FAMILIES, family_for_model_dir

if TYPE_CHECKING:  # transformers (and torch under it) take seconds to import: only what builds or loads imports them
    from transformers.processing_utils import ProcessorMixin

# Files a processor needs; weights are never downloaded. Python files only with trust_remote_code.
HUB_PATTERNS = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
# Image processor settings that decide token counts and pixel values.
_IMAGE_SETTINGS = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")


# ---------------------------------------------------------------------------------------------------------------
# Embedded build
# ---------------------------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """The user cache folder: $VLPREP_CACHE_DIR, else $XDG_CACHE_HOME/vlprep, else ~/.cache/vlprep."""
    if explicit := os.environ.get("VLPREP_CACHE_DIR"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "vlprep"


def embedded_processor_dir(family: ModelFamily = DEFAULT_FAMILY) -> Path:
    """The family's embedded processor directory, built on first use and reused until its inputs change."""
    target = cache_root() / f"{family.name}-{family.build_key()[:20]}"
    if not target.is_dir():
        _build_atomically(target, family)
    return target


def embedded_family(model: str) -> ModelFamily | None:
    """The family whose embedded processor `--model NAME` (or `--family NAME`) names, if NAME is a family's name."""
    return next((family for family in FAMILIES if family.name == model), None)


def _build_atomically(target: Path, family: ModelFamily) -> None:
    """Build into a temporary sibling and rename it into place; a concurrent builder that wins is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        family.build_processor(staging)
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Resolving and loading
# ---------------------------------------------------------------------------------------------------------------


def resolve_model_dir(model: str | None, trust_remote_code: bool = False) -> Path:
    """A local directory holding the processor files: the embedded build, the given directory, or a Hub snapshot.

    A folder that ships or maps code is refused here (vlprep.counting.model_guard) unless trust_remote_code: every command
    resolves its model folder through this function before anything reads it.
    """
    from vlprep.counting.model_guard import refuse_shipped_code

    if model is None:
        return embedded_processor_dir()
    local = Path(model).expanduser()
    if not local.exists() and (family := embedded_family(model)) is not None:
        return embedded_processor_dir(family)
    if local.is_dir():
        refuse_shipped_code(local, trust_remote_code)
        family_for_model_dir(local)  # an unsupported family is refused before anything loads it
        return local
    if local.exists() or model.startswith((".", "/", "~")):
        raise ProcessorError(f"--model {model!r} is not a model directory; pass a directory or a Hub id")
    snapshot = _download_processor_files(model, trust_remote_code)
    refuse_shipped_code(snapshot, trust_remote_code)
    return snapshot


def _download_processor_files(repo_id: str, trust_remote_code: bool) -> Path:
    """Fetch (or find in the Hub cache) only the tokenizer, processor, config and template files of a Hub model."""
    import httpx
    from huggingface_hub import snapshot_download

    patterns = HUB_PATTERNS + (["*.py"] if trust_remote_code else [])
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except (OSError, ValueError, httpx.HTTPError) as err:
        raise ProcessorError(
            f"cannot get the processor files of {repo_id!r} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            f"Fix: download them once while online (`hf download {repo_id} --include '*.json' '*.jinja' '*.txt'`, "
            "or the whole model to train with it), or pass a local model directory."
        ) from err


@functools.lru_cache(maxsize=8)
def load_processor(model: str | None = None, trust_remote_code: bool = False) -> ProcessorMixin:
    """Load a processor with AutoProcessor, once per process and argument pair (None: the embedded one).

    Code shipped in the model directory runs only with trust_remote_code=True. The cache is keyed on the arguments,
    so a change of $VLPREP_CACHE_DIR within a process needs `load_processor.cache_clear()`.
    """
    from transformers import AutoProcessor

    model_dir = resolve_model_dir(model, trust_remote_code)
    try:
        return AutoProcessor.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ProcessorError(f"cannot load a processor from {model_dir}: {err}") from err


# ---------------------------------------------------------------------------------------------------------------
# Fingerprint
# ---------------------------------------------------------------------------------------------------------------


def processor_fingerprint(processor: ProcessorMixin) -> str:
    """SHA-256 over what decides the tokens, read from the loaded objects so that file formatting does not matter."""
    canonical = json.dumps(_token_facts(processor), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _token_facts(processor: ProcessorMixin) -> dict[str, Any]:
    """Vocab, merges, added tokens, pipeline, chat template and image settings of a loaded processor.

    The post-processor enters through what it adds to an empty text (none for Qwen), so configurations that act
    alike (an empty TemplateProcessing, a ByteLevel post-processor) give the same fingerprint.
    """
    tokenizer = processor.tokenizer
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    added = dict(tokenizer.added_tokens_decoder)
    added_contents = {token.content for token in added.values()}
    base_vocab = {token: index for token, index in tokenizer.get_vocab().items() if token not in added_contents}
    return {
        "vocab": sorted(base_vocab.items(), key=operator.itemgetter(1)),
        "merges": _merge_pairs(backend["model"].get("merges", [])),
        "model": {key: value for key, value in backend["model"].items() if key not in ("vocab", "merges")},
        "normalizer": _without_offsets(backend.get("normalizer")),
        "pre_tokenizer": _without_offsets(backend.get("pre_tokenizer")),
        "ids_added_on_encode": tokenizer("")["input_ids"],
        "added_tokens": [[index, token.content, bool(token.special)] for index, token in sorted(added.items())],
        "chat_template": getattr(processor, "chat_template", None) or tokenizer.chat_template,
        "image": _image_settings(processor.image_processor),
    }


def _without_offsets(component: Any) -> Any:
    """A pipeline component's JSON without `trim_offsets`, which changes offsets but never the tokens."""
    if isinstance(component, dict):
        return {key: _without_offsets(value) for key, value in component.items() if key != "trim_offsets"}
    if isinstance(component, list):
        return [_without_offsets(value) for value in component]
    return component


def _merge_pairs(merges: list[str] | list[list[str]]) -> list[list[str]]:
    """Merges as [left, right] pairs, whether the backend JSON stores pairs or "left right" strings."""
    if merges and isinstance(merges[0], str):
        return [merge.split(" ", 1) for merge in merges]
    return merges


def _image_settings(image_processor: Any) -> dict[str, Any]:
    """patch/temporal patch/merge size and normalization, as plain JSON values."""
    settings = {}
    for name in _IMAGE_SETTINGS:
        value = getattr(image_processor, name, None)
        settings[name] = [float(v) for v in value] if isinstance(value, (list, tuple)) else value
    return settings
