"""Byte-level BPE vocab and merges from tiktoken ranks, in the official Hugging Face form (Qwen families ship these)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from vlprep.errors import ProcessorError


def read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a tiktoken file: one `base64(token) rank` pair per line."""
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def bpe_vocab_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
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


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
