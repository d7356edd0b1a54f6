"""Turn a FitConfig and its preflight into ms-swift SFT arguments and environment, and run them.

One device: `swift.sft_main(SftArguments(...))` in this process. Several devices or machines: torchrun starts
`vltrain.training.rank` in each process, which runs the model-folder guard and then the same `sft_main` (what ms-swift's own
`swift sft` does under NPROC_PER_NODE, plus the guard); rank 0 hands the trainer's result back for the summary. The
equivalent `swift sft` command line is printed by --dry-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlprep.errors import ProblemsFound, UsageError

from vlprep.counting.processor import resolve_model_dir
from vlprep.counting.settings import IMAGE_ENV, LEGACY_IMAGE_ENV, CountSettings
from vlprep.models.registry import family_for_model_dir
from vltrain.config import FitConfig
from vltrain.guards import Preflight

if TYPE_CHECKING:  # the callback module imports transformers: only training needs it
    from vltrain.training.callback import Sink


class LaunchError(UsageError):
    """A run vltrain cannot start as asked (exit 2): --resume without a checkpoint, a process set for other limits."""


class TrainingFailed(ProblemsFound):
    """ms-swift stopped with an error (exit 1): the message is its cause line; the traceback is in the log."""


def swift_environment(config: FitConfig, manifest: dict[str, Any]) -> dict[str, str]:
    env = CountSettings.from_manifest(manifest).environment()  # resize and sample as the cache counted
    if config.nproc_per_node > 1 or config.nnodes > 1:
        env["NPROC_PER_NODE"] = str(config.nproc_per_node)
        env["NNODES"] = str(config.nnodes)
        env["NODE_RANK"] = str(config.node_rank)
        if config.master_addr:
            env["MASTER_ADDR"] = config.master_addr
        if config.master_port:
            env["MASTER_PORT"] = str(config.master_port)
    return env


def last_checkpoint(output_dir: Path) -> Path | None:
    numbered = [(int(match.group(1)), path) for path in output_dir.glob("checkpoint-*")
                if path.is_dir() and (match := re.fullmatch(r"checkpoint-(\d+)", path.name))]
    return max(numbered)[1] if numbered else None


def swift_arguments(config: FitConfig, preflight: Preflight) -> dict[str, Any]:
    output_dir = Path(config.output_dir)
    model_dir = resolve_model_dir(config.model, config.trust_remote_code)
    args: dict[str, Any] = {
        "model": str(model_dir),
        "model_type": family_for_model_dir(model_dir).model_type,
        "check_model": False,
        "cached_dataset": [source.swift_path("train") for source in preflight.sources],  # ms-swift samples DIR#N
        "strict": True,
        "max_length": preflight.max_length,
        "truncation_strategy": "delete",
        "tuner_type": config.tuner,
        "freeze_vit": config.freeze_vit,
        "freeze_aligner": config.freeze_aligner,
        "freeze_llm": config.freeze_llm,
        "torch_dtype": preflight.torch_dtype,
        "attn_impl": preflight.attn_impl,
        "packing": preflight.packing,
        "padding_free": preflight.packing,
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "per_device_eval_batch_size": config.per_device_eval_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "warmup_ratio": config.warmup_ratio,
        "gradient_checkpointing": config.gradient_checkpointing,
        "save_steps": config.save_steps,
        "eval_steps": config.eval_steps,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": config.report_to,
        "dataloader_num_workers": config.dataloader_num_workers,
        "include_num_input_tokens_seen": True,  # transformers' "all": padded tokens, for tokens/s and padding waste
        "output_dir": str(output_dir),
        "add_version": False,
    }
    validation = [source.swift_path("val") for source in preflight.sources if (source.folder / "val").is_dir()]
    if validation:  # every cache's whole val split, concatenated by ms-swift in this order
        args["cached_val_dataset"] = validation
    else:
        args["eval_strategy"] = "no"
    if config.tuner == "lora":
        args.update(lora_rank=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                    target_modules=config.target_modules)
    if config.deepspeed:
        args["deepspeed"] = config.deepspeed
    if is_distributed(config) and not preflight.cuda:
        args["ddp_backend"] = "gloo"  # CPU processes: NCCL needs GPUs
    if config.save_total_limit is not None:
        args["save_total_limit"] = config.save_total_limit
    if config.resume:
        checkpoint = last_checkpoint(output_dir)
        if checkpoint is None:
            raise LaunchError(f"--resume: no checkpoint-* folder in {output_dir}")
        args["resume_from_checkpoint"] = str(checkpoint)
    args.update(config.swift)  # extra ms-swift arguments, already checked (vltrain.swift_args): none of the above
    return args


def as_cli(args: dict[str, Any]) -> list[str]:
    """ms-swift command-line form of the arguments (`--key value`, lists as several values)."""
    argv: list[str] = []
    for key, value in args.items():
        argv.append(f"--{key}")
        if isinstance(value, list):
            argv += [str(item) for item in value]
        elif isinstance(value, bool):
            argv.append("true" if value else "false")
        else:
            argv.append(str(value))
    return argv


def _prepare_environment(env: dict[str, str]) -> None:
    for name in LEGACY_IMAGE_ENV:
        os.environ.pop(name, None)
    os.environ.update(env)
    _refuse_stale_pixel_limits(env)


def _refuse_stale_pixel_limits(env: dict[str, str]) -> None:
    """ms-swift applies the pixel limits to qwen-vl-utils once per process; refuse to train under other limits."""
    vision_process = sys.modules.get("qwen_vl_utils.vision_process")
    if vision_process is None or not hasattr(vision_process, "_patch"):
        return
    for name in IMAGE_ENV.values():
        if str(getattr(vision_process, name, env[name])) != env[name]:
            raise LaunchError(f"this process already configured ms-swift with {name}="
                              f"{getattr(vision_process, name)}, not the cache's {env[name]}: run vltrain in a new "
                              "process")


def with_progress_callback(args: dict[str, Any], sink: Sink) -> dict[str, Any]:
    """The arguments with vltrain's progress callback registered and listed (after any the user asked for)."""
    from vltrain.training.callback import register  # imports transformers: not on the paths that train nothing

    name = register(sink)
    return {**args, "callbacks": [*args.get("callbacks", []), name]}


def run_in_process(args: dict[str, Any], env: dict[str, str], sink: Sink) -> dict[str, Any]:
    """ms-swift's sft_main in this process, its progress events to `sink`. A failure is a TrainingFailed whose cause
    line is the exception's (its traceback goes to stderr, which `vltrain fit` points at train.log)."""
    _prepare_environment(env)
    with contextlib.redirect_stdout(sys.stderr):
        from swift import SftArguments, sft_main

        try:
            return sft_main(SftArguments(**with_progress_callback(args, sink)))
        except Exception as error:  # noqa: BLE001 - any ms-swift failure: cause line on the console, traceback logged
            traceback.print_exc()
            raise TrainingFailed(cause_line(error)) from None


def cause_line(error: BaseException) -> str:
    """`Type: first line of the message` of the innermost cause (what ms-swift's own failure wraps, if anything)."""
    while error.__cause__ is not None:
        error = error.__cause__
    message = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


_CAUSE = re.compile(r"^(?:\[rank\d+\]: ?)?([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b:?.*)$")


def cause_in_log(log_path: Path) -> str | None:
    """The last `SomeError: ...` line a failed process wrote to the log (torchrun ranks: their tracebacks)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    causes = [match.group(1).strip() for line in lines if (match := _CAUSE.match(line.strip()))
              and "ChildFailedError" not in line]
    return causes[-1] if causes else None


def is_distributed(config: FitConfig) -> bool:
    return config.nproc_per_node > 1 or config.nnodes > 1


def torchrun_command(config: FitConfig, plan_path: Path) -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(config.nproc_per_node),
               "--nnodes", str(config.nnodes), "--node_rank", str(config.node_rank)]
    if config.master_addr:
        command += ["--master_addr", config.master_addr]
    if config.master_port:
        command += ["--master_port", str(config.master_port)]
    return command + ["-m", "vltrain.training.rank", str(plan_path)]


def run_distributed(config: FitConfig, args: dict[str, Any], env: dict[str, str],
                    sink: Sink) -> tuple[int, dict[str, Any] | None]:
    """Run every local process under torchrun; (exit code, the trainer's result from global rank 0, if on this node).
    Global rank 0's progress events come back through a JSON-lines file, followed while the ranks run."""
    child_env = {key: value for key, value in os.environ.items() if key not in LEGACY_IMAGE_ENV}
    with tempfile.TemporaryDirectory(prefix="vltrain-launch-") as folder:
        plan_path, result_path = Path(folder) / "plan.json", Path(folder) / "result.json"
        events_path = Path(folder) / "events.jsonl"
        events_path.touch()
        plan_path.write_text(json.dumps({"swift_args": args, "environment": env, "result": str(result_path),
                                         "events": str(events_path), "trust_remote_code": config.trust_remote_code}))
        done = threading.Event()
        follower = threading.Thread(target=_follow, args=(events_path, sink, done), daemon=True)
        follower.start()
        try:
            code = subprocess.run(torchrun_command(config, plan_path), env={**child_env, **env},
                                  check=False).returncode
        finally:
            done.set()
            follower.join(timeout=30)
        result = json.loads(result_path.read_text()) if result_path.is_file() else None
    return code, result


def _follow(path: Path, sink: Sink, done: threading.Event) -> None:
    """Hand each complete line of the events file to `sink` until `done` is set and the file is read to its end."""
    with path.open() as events:
        pending = ""
        while True:
            finished = done.is_set()
            pending += events.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                if line.strip():
                    sink(json.loads(line))
            if finished:
                return
            done.wait(0.2)
