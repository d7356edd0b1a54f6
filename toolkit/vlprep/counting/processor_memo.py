"""What a cache build needs from a processor, without importing transformers once it is known.

Loading a processor with transformers imports torch and takes seconds; a build needs from it only the fingerprint
(for the manifest) and the tokenizer (for counting). Both are memoized per processor *content*: a SHA-256 over the
directory's processor files, so an edited file means a new entry. The entry also says whether the directory's
`tokenizer.json`, loaded alone by the `tokenizers` library, is the very tokenizer transformers builds (same
vocabulary, merges, added tokens and pipeline); only then is it used for counting, otherwise counting goes through
transformers as before. Both take the resolved processor directory (`vlprep.counting.processor.resolve_model_dir`), so a caller
resolves a Hub id once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from vlprep.counting.processor import cache_root, load_processor, processor_fingerprint

MEMO_VERSION = "1"
# the files that make up a processor (weights never matter here)
_PROCESSOR_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".tiktoken", ".py")


@dataclass(frozen=True)
class ProcessorFacts:
    fingerprint: str
    tokenizer_json_is_exact: bool


def directory_digest(model_dir: Path, trust_remote_code: bool) -> str:
    """SHA-256 over the names and bytes of the processor files directly in model_dir, and whether code may run."""
    digest = hashlib.sha256(f"vlprep-processor-memo:{MEMO_VERSION}:{trust_remote_code}\n".encode())
    for path in sorted(model_dir.iterdir()):
        if path.suffix in _PROCESSOR_SUFFIXES and path.is_file():
            digest.update(f"\n{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def processor_facts(model_dir: Path, trust_remote_code: bool = False) -> ProcessorFacts:
    """The fingerprint and tokenizer.json verdict of a processor: from the memo, or computed once and stored."""
    memo = cache_root() / "processor-facts" / f"{directory_digest(model_dir, trust_remote_code)}.json"
    try:
        return ProcessorFacts(**json.loads(memo.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    processor = load_processor(str(model_dir), trust_remote_code)
    facts = ProcessorFacts(processor_fingerprint(processor),
                           _same_tokenizer(model_dir / "tokenizer.json", processor.tokenizer.backend_tokenizer))
    _write_atomically(memo, json.dumps(asdict(facts)))
    return facts


def counting_tokenizer(model_dir: Path, trust_remote_code: bool, facts: ProcessorFacts) -> Tokenizer:
    """The Rust tokenizer to count with: tokenizer.json alone where it is exact, else the one transformers builds."""
    if facts.tokenizer_json_is_exact:
        return Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return load_processor(str(model_dir), trust_remote_code).tokenizer.backend_tokenizer


def _same_tokenizer(path: Path, loaded: Tokenizer) -> bool:
    """Whether tokenizer.json describes exactly the tokenizer transformers loaded (compared as JSON documents)."""
    try:
        alone = Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 - missing or unreadable by the tokenizers library: not usable alone
        return False
    return _as_json(alone) == _as_json(loaded)


def _as_json(tokenizer: Tokenizer) -> Any:
    return json.loads(tokenizer.to_str())


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
