"""On stderr: a rich progress bar (records, rate, ETA) that wraps any stream of per-line results, and a status line
for the stages before and after it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.status import Status
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


class StatusLine:
    """What a command is doing while no progress bar runs (loading the processor, starting ms-swift, ...), on stderr:
    a spinner on a terminal, one plain line per stage elsewhere (`plain`), nothing when disabled."""

    def __init__(self, enabled: bool = True, plain: bool = True) -> None:
        self._console = Console(stderr=True)
        self._enabled = enabled and (plain or self._console.is_terminal)
        self._status: Status | None = None

    def __call__(self, message: str) -> None:
        if not self._enabled:
            return
        if not self._console.is_terminal:
            self._console.print(f"vlprep: {message}", highlight=False, markup=False, soft_wrap=True)
        elif self._status is None:
            self._status = self._console.status(message)
            self._status.start()
        else:
            self._status.update(message)

    def stop(self) -> None:
        """Clear the spinner (before a progress bar starts, or at the end); the next message starts a new one."""
        if self._status is not None:
            self._status.stop()
            self._status = None
