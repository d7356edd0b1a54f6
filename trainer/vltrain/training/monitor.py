"""The console's side of the progress display: consumes the callback's events (vltrain.training.callback), draws one live rich
progress display on a terminal or plain periodic lines elsewhere, writes curves.png at each save and at the end, and
measures what the summary reports (tokens/s, padding, peak memory, losses, wall time split into load/train/eval/save).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vltrain.training.curves import write_curves

if TYPE_CHECKING:  # the callback module imports transformers, which only training needs
    from vltrain.training.callback import Event

_SMOOTHING = 0.3  # weight of the newest logged loss in the displayed moving average


def human_bytes(count: int) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


class RunMonitor:
    """Thread-safe: events may come from a thread following the ranks' event file."""

    def __init__(self, console: Console, live: bool, output_dir: Path, started: float, synchronous: bool) -> None:
        """`synchronous`: events come from the training loop itself (one process), so the time spent drawing the
        curves at a save holds training up and counts as save time."""
        self.console, self.live, self.output_dir, self.started = console, live, output_dir, started
        self.synchronous = synchronous
        self.lock = threading.Lock()
        self.points: list[dict[str, Any]] = []  # per logged step: loss, lr, grad_norm, tokens/s
        self.evals: list[dict[str, Any]] = []
        self.begin: Event = {}
        self.end: Event = {}
        self.eval_s = self.save_s = 0.0
        self.mark = started  # end of the last step, evaluation or save: where the next eval or save began
        self.last_log: Event = {}
        self.memory: dict[str, Any] = {}
        self.smoothed: float | None = None
        self.progress: Progress | None = None
        self.task: Any = None

    # ----- events
    def handle(self, event: Event) -> None:
        with self.lock:
            getattr(self, f"_on_{event['kind']}")(event)

    def _on_begin(self, event: Event) -> None:
        self.begin, self.mark = event, event["time"]
        share = event["trainable_parameters"] / event["parameters"] if event["parameters"] else 0
        resumed = f" (from step {event['start_step']})" if event["start_step"] else ""
        self.console.print(f"  trainable parameters: {event['trainable_parameters']:,} of {event['parameters']:,} "
                           f"({share:.2%}) · global batch {event['global_batch']} · steps "
                           f"{event['max_steps']}{resumed}",
                           highlight=False)
        if self.live:
            self.progress = Progress(
                TextColumn("step {task.completed}/{task.total}"), BarColumn(bar_width=24),
                TextColumn("{task.fields[metrics]}"), TextColumn("·"), TimeElapsedColumn(), TextColumn("elapsed, ETA"),
                TimeRemainingColumn(),
                console=self.console, redirect_stdout=False, redirect_stderr=False, refresh_per_second=4)
            self.progress.start()
            self.task = self.progress.add_task("train", total=event["max_steps"], completed=event["start_step"],
                                               metrics="")

    def _on_step(self, event: Event) -> None:
        self.mark = event["time"]
        if self.progress is not None:
            self.progress.update(self.task, completed=event["step"], metrics=self._metrics_text(event["epoch"]))

    def _on_log(self, event: Event) -> None:
        logs = event["logs"]
        self.memory = event["memory"]
        if "loss" not in logs:  # the evaluation's or the end-of-training log line
            return
        previous = self.last_log or {"time": self.begin.get("time", self.started), "real_tokens": 0}
        seconds = event["time"] - previous["time"]
        rate = (event["real_tokens"] - previous["real_tokens"]) / seconds if seconds > 0 else None
        self.last_log = event
        loss = float(logs["loss"])
        if math.isfinite(loss):
            self.smoothed = loss if self.smoothed is None else _SMOOTHING * loss + (1 - _SMOOTHING) * self.smoothed
        self.points.append({"step": event["step"], "loss": loss, "learning_rate": logs.get("learning_rate"),
                            "grad_norm": logs.get("grad_norm"), "tokens_per_s": rate, "epoch": event["epoch"]})
        if self.progress is not None:
            self.progress.update(self.task, completed=event["step"], metrics=self._metrics_text(event["epoch"]))
        else:
            self.console.print(f"  step {event['step']}/{self.begin.get('max_steps', '?')} "
                               f"{self._metrics_text(event['epoch'])} · elapsed {self._elapsed()}", highlight=False)

    def _on_eval(self, event: Event) -> None:
        self.eval_s += event["time"] - self.mark
        self.mark = event["time"]
        self.evals.append({"step": event["step"], **event["metrics"]})
        shown = " · ".join(f"{key.removeprefix('eval_')} {value:.4g}" for key, value in event["metrics"].items()
                           if key in ("eval_loss", "eval_token_acc", "eval_runtime"))
        self.console.print(f"  eval at step {event['step']}: {shown}", highlight=False)

    def _on_save(self, event: Event) -> None:
        self.save_s += event["time"] - self.mark
        self.mark = event["time"]
        write_curves(self.points, self.evals, self.output_dir / "curves.png")
        if self.synchronous:
            now = time.time()
            self.save_s += now - self.mark
            self.mark = now

    def _on_end(self, event: Event) -> None:
        self.end = event
        self.memory = event["memory"]
        if self.progress is None:
            self.console.print(f"  step {event['step']}/{self.begin.get('max_steps', '?')}: training done · elapsed "
                               f"{self._elapsed()}", highlight=False)
        self._stop_display()

    # ----- display
    def _metrics_text(self, epoch: float | None) -> str:
        last = self.points[-1] if self.points else {}
        parts = [f"epoch {epoch:.2f}" if epoch is not None else ""]
        if self.smoothed is not None:
            parts.append(f"loss (smoothed) {self.smoothed:.4f}")
        if last.get("learning_rate") is not None:
            parts.append(f"lr {last['learning_rate']:.2e}")
        if last.get("grad_norm") is not None:
            parts.append(f"grad {last['grad_norm']:.3g}")
        if last.get("tokens_per_s") is not None:
            parts.append(f"{last['tokens_per_s']:,.0f} tok/s")
        if self.memory.get("kind") == "gpu":
            parts.append(f"mem {human_bytes(self.memory['bytes'])}")
        return escape(" · ".join(part for part in parts if part))

    def _elapsed(self) -> str:
        seconds = int(time.time() - self.begin.get("time", self.started))
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _stop_display(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # ----- the end
    def finish(self, finished: float) -> dict[str, Any]:
        """Stop drawing, write the curves, and return the measured part of the summary (`finished`: when ms-swift
        returned; what followed the end of training, the final save and state, counts as save time)."""
        with self.lock:
            self._stop_display()
            if self.points or self.evals:
                write_curves(self.points, self.evals, self.output_dir / "curves.png")
            return self.measured(finished)

    def measured(self, finished: float) -> dict[str, Any]:
        begin, end = self.begin.get("time"), self.end.get("time")
        train_total = (end - begin) if begin and end else None
        real, positions = self.end.get("real_tokens", 0), self.end.get("positions", 0)
        train_s = train_total - self.eval_s - self.save_s if train_total is not None else None
        eval_losses = [entry["eval_loss"] for entry in self.evals if "eval_loss" in entry]
        losses = [point["loss"] for point in self.points]
        memory = self.memory or {}
        return {
            "measured_tokens": positions or None,  # elements fed to the model in training batches, padding included
            "measured_real_tokens": real or None,  # of which not padding
            "measured_tokens_per_s": round(positions / train_s, 1) if positions and train_s else None,
            "measured_real_tokens_per_s": round(real / train_s, 1) if real and train_s else None,
            "padding_fraction": round(1 - real / positions, 4) if positions else None,
            "peak_memory_bytes": memory.get("bytes") or None,
            "peak_memory_kind": memory.get("kind"),  # gpu: torch's max allocated; cpu_rss: the process's peak RSS
            "train_loss_first": losses[0] if losses else None,
            "train_loss_last": losses[-1] if losses else None,
            "eval_loss_first": eval_losses[0] if eval_losses else None,
            "eval_loss_last": eval_losses[-1] if eval_losses else None,
            "wall_s": {
                "load": round(begin - self.started, 2) if begin else round(finished - self.started, 2),
                "train": round(train_s, 2) if train_s is not None else None,
                "eval": round(self.eval_s, 2),
                "save": round(self.save_s + (finished - end), 2) if end else round(self.save_s, 2),
                "total": round(finished - self.started, 2),
            },
        }
