"""A record's turns as its tokens show them: role, span and trained tokens of each (what `vlprep stats` and
`vlprep show` report, and what a cache stores per row so that stats need not encode again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Turn:
    role: str
    start: int
    end: int
    trained: int

    @property
    def tokens(self) -> int:
        return self.end - self.start


def split_turns(input_ids: list[int], labels: list[int], role_of: Any, im_start_id: int) -> list[Turn]:
    """Turns as the tokens show them: each starts at `<|im_start|>`; its role is the token after it (tool results
    are user turns in Qwen3-VL's template). `role_of(id)` decodes one token."""
    starts = [index for index, token in enumerate(input_ids) if token == im_start_id] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    bounds = starts + [len(input_ids)]
    turns = []
    for start, end in zip(bounds, bounds[1:]):
        role = role_of(input_ids[start + 1]).strip() if input_ids[start] == im_start_id and start + 1 < end else "text"
        turns.append(Turn(role, start, end, sum(1 for label in labels[start:end] if label != -100)))
    return turns
