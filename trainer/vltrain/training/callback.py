"""The trainer's side of the progress display: a transformers TrainerCallback that turns training events into plain
dicts handed to a sink (the console monitor in this process, or a JSON-lines file the launching `vltrain fit` follows
when torchrun runs the ranks).

It reaches ms-swift through its supported extension point: a name in `swift.callbacks.callbacks_map` (what ms-swift's
`external_plugins` files do) listed in SftArguments' `callbacks`. Only global rank 0 emits events; every rank counts the
tokens of the batches it is fed and the counts are summed over ranks when a step is logged.

Tokens are counted in a forward pre-hook (torch's public `register_forward_pre_hook`) on the model the trainer hands
the callback: per training batch, positions = the elements of `attention_mask` (or of `input_ids` when packing without
padding), real = its ones. The padding fraction is 1 - real/positions over the batches actually formed.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

Event = dict[str, Any]
Sink = Callable[[Event], None]
CALLBACK_NAME = "vltrain_progress"


def register(sink: Sink) -> str:
    """Register the callback under ms-swift's callbacks registry; the name to list in SftArguments' `callbacks`."""
    from swift.callbacks import callbacks_map

    callbacks_map[CALLBACK_NAME] = lambda args, trainer: ProgressCallback(sink)
    return CALLBACK_NAME


def is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def peak_memory() -> dict[str, Any]:
    """Peak GPU memory allocated by torch on CUDA, else this process's peak resident set size (never 0 for unknown)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return {"kind": "gpu", "bytes": int(torch.cuda.max_memory_allocated())}
    return {"kind": "cpu_rss", "bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024}


class TokenCounter:
    """Real and padded tokens of the training batches fed to the model (eval batches are not counted)."""

    def __init__(self) -> None:
        self.real = 0
        self.positions = 0
        self._handle: Any = None

    def attach(self, model: Any) -> None:
        self._handle = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _count(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        if not module.training:
            return
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        if mask is not None and getattr(mask, "dim", lambda: 0)() == 2:
            self.positions += mask.numel()
            self.real += int(mask.sum())
        elif ids is not None:  # packed without padding: every position is a real token
            self.positions += ids.numel()
            self.real += ids.numel()

    def totals(self) -> tuple[int, int]:
        """(real, positions) summed over every rank."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self.real, self.positions
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        counts = torch.tensor([self.real, self.positions], dtype=torch.int64, device=device)
        dist.all_reduce(counts)
        return int(counts[0]), int(counts[1])


class ProgressCallback(TrainerCallback):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.tokens = TokenCounter()
        self.main = is_main_rank()

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.main:
            self.sink({"kind": kind, "time": time.time(), **fields})

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        trainable = total = 0
        if model is not None:
            self.tokens.attach(model)
            for parameter in model.parameters():
                total += parameter.numel()
                trainable += parameter.numel() if parameter.requires_grad else 0
        world = int(os.environ.get("WORLD_SIZE", "1"))
        self._emit("begin", max_steps=state.max_steps, start_step=state.global_step,
                   num_train_epochs=state.num_train_epochs, trainable_parameters=trainable, parameters=total,
                   global_batch=args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
                   world_size=world)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._emit("step", step=state.global_step, epoch=state.epoch)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        real, positions = self.tokens.totals()  # every rank logs at the same steps: the sum is collective
        values = {key: value for key, value in (logs or {}).items() if isinstance(value, (int, float))}
        self._emit("log", step=state.global_step, epoch=state.epoch, logs=values, real_tokens=real,
                   positions=positions, memory=peak_memory())

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kwargs: Any) -> None:
        values = {key: value for key, value in (metrics or {}).items() if isinstance(value, (int, float))}
        self._emit("eval", step=state.global_step, metrics=values)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._emit("save", step=state.global_step,
                   checkpoint=os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        real, positions = self.tokens.totals()
        self.tokens.detach()
        self._emit("end", step=state.global_step, real_tokens=real, positions=positions, memory=peak_memory())
