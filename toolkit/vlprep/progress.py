"""A rich progress bar on stderr (records, rate, ETA) that wraps any stream of per-line results."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

T = TypeVar("T")


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "- rec/s", style="progress.data.speed")


def with_progress(items: Iterable[T], total: int | None, description: str, enabled: bool = True, completed: int = 0
                  ) -> Iterator[T]:
    """Yield `items` unchanged while a progress bar on stderr counts them (after `completed`) against `total` (None:
    unknown, e.g. stdin)."""
    if not enabled:
        yield from items
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total, completed=completed)
        for item in items:
            yield item
            progress.advance(task)
