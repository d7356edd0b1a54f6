"""`vltrain`: guarded ms-swift training from a `vlprep cache` folder.

Exit codes: 0 trained (or dry run with every check passing), 1 a check failed or training failed, 2 usage errors
(a model folder that ships code without --trust-remote-code included, as in every vlprep command).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from vltrain.config import ConfigError, FitConfig, load_config
from vltrain.guards import Preflight, run_guards, steps_per_epoch
from vltrain.launch import (LaunchError, as_cli, is_distributed, run_distributed, run_in_process, swift_arguments,
                             swift_environment)
from vltrain.packing_plan import fit_packing_plan
from vltrain.summary import run_summary

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Train Qwen3-VL with ms-swift from a verified vlprep cache.")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

Opt = typer.Option


def print_checks(preflight: Preflight) -> None:
    for check in preflight.checks:
        mark = "[green]ok[/]" if check.ok else ("[yellow]OVERRIDDEN[/]" if check.overridden else "[red]FAIL[/]")
        err.print(f"  {mark} {check.name}: {escape(check.detail)}")
        if not check.ok and check.fix:
            err.print(f"       fix: {escape(check.fix)}")


@app.command()
def fit(
    cached: Annotated[Optional[Path], Opt("--cached", help="A folder made by `vlprep cache`.")] = None,
    model: Annotated[Optional[str], Opt(help="Hub id or local Qwen3-VL model directory (default: embedded processor; "
                                             "needs weights to train).")] = None,
    config: Annotated[Optional[Path], Opt("--config", help="YAML recipe; command-line options override it.")] = None,
    output_dir: Annotated[Optional[str], Opt(help="Checkpoints, the cache manifest copy and the resolved config.")] = None,
    tuner: Annotated[Optional[str], Opt(help="lora or full.")] = None,
    lora_rank: Annotated[Optional[int], Opt()] = None,
    lora_alpha: Annotated[Optional[int], Opt()] = None,
    lora_dropout: Annotated[Optional[float], Opt()] = None,
    target_modules: Annotated[Optional[list[str]], Opt(help="LoRA targets: all-linear or HF module names.")] = None,
    freeze_vit: Annotated[Optional[bool], Opt("--freeze-vit/--train-vit")] = None,
    freeze_aligner: Annotated[Optional[bool], Opt("--freeze-aligner/--train-aligner")] = None,
    freeze_llm: Annotated[Optional[bool], Opt("--freeze-llm/--train-llm")] = None,
    learning_rate: Annotated[Optional[float], Opt()] = None,
    num_train_epochs: Annotated[Optional[float], Opt("--epochs")] = None,
    max_steps: Annotated[Optional[int], Opt()] = None,
    per_device_train_batch_size: Annotated[Optional[int], Opt("--batch-size")] = None,
    gradient_accumulation_steps: Annotated[Optional[int], Opt("--grad-accum")] = None,
    warmup_ratio: Annotated[Optional[float], Opt()] = None,
    gradient_checkpointing: Annotated[Optional[bool], Opt("--gradient-checkpointing/--no-gradient-checkpointing")
                                      ] = None,
    torch_dtype: Annotated[Optional[str], Opt(help="auto, bfloat16, float16 or float32.")] = None,
    deepspeed: Annotated[Optional[str], Opt(help="zero2 or zero3 (ms-swift presets).")] = None,
    max_length: Annotated[Optional[int], Opt(help="Default: the cache's --max-length, else its longest record.")] = None,
    packing: Annotated[Optional[bool], Opt("--packing/--no-packing",
                                           help="Default: on when CUDA and flash attention are available.")] = None,
    attn_impl: Annotated[Optional[str], Opt(help="Override: sdpa, eager, flash_attn, flash_attention_3, ...")] = None,
    image_max_tokens: Annotated[Optional[int], Opt(help="Must equal the cache's (refused otherwise).")] = None,
    image_min_tokens: Annotated[Optional[int], Opt(help="Must equal the cache's (refused otherwise).")] = None,
    max_ratio: Annotated[Optional[int], Opt(help="Must equal the cache's (refused otherwise).")] = None,
    save_steps: Annotated[Optional[int], Opt()] = None,
    eval_steps: Annotated[Optional[int], Opt()] = None,
    logging_steps: Annotated[Optional[int], Opt()] = None,
    seed: Annotated[Optional[int], Opt()] = None,
    report_to: Annotated[Optional[list[str]], Opt(help="none, tensorboard, wandb, swanlab, ...")] = None,
    resume: Annotated[Optional[bool], Opt("--resume", help="Continue from the last checkpoint in --output-dir.")
                      ] = None,
    nproc_per_node: Annotated[Optional[int], Opt(help="Processes (GPUs) per node: launches torchrun via swift sft.")
                              ] = None,
    nnodes: Annotated[Optional[int], Opt()] = None,
    node_rank: Annotated[Optional[int], Opt()] = None,
    master_addr: Annotated[Optional[str], Opt()] = None,
    master_port: Annotated[Optional[int], Opt()] = None,
    allow_processor_mismatch: Annotated[Optional[bool], Opt("--allow-processor-mismatch",
                                                            help="Train even if the processor differs (loudly).")
                                        ] = None,
    verify_images: Annotated[Optional[str], Opt(help="sample or all: image files checked before training.")] = None,
    trust_remote_code: Annotated[Optional[bool], Opt("--trust-remote-code")] = None,
    dry_run: Annotated[bool, Opt("--dry-run", help="Load no model: print the checks, ms-swift arguments, environment "
                                                   "and steps per epoch.")] = False,
    output_format: Annotated[str, Opt("--format", help="text or json (the summary / dry-run plan).")] = "text",
) -> None:
    """Train from a vlprep cache with ms-swift SFT, after checks that need no model weights.

    Example: [bold]vltrain fit --cached arrow/ --model Qwen/Qwen3-VL-8B-Instruct --config lora-8b.yaml[/]
    """
    overrides = {key: value for key, value in locals().items()
                 if key not in ("config", "dry_run", "output_format") and value is not None}
    for key in ("cached",):
        if key in overrides:
            overrides[key] = str(overrides[key])
    try:
        fit_config = load_config(config, overrides)
    except (ConfigError, TypeError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from None
    err.print("[bold]Checks before loading the model[/]")
    preflight = run_guards(fit_config)
    print_checks(preflight)
    if preflight.failed:
        err.print(f"[red]{len(preflight.failed)} check(s) failed: nothing was trained.[/]")
        raise typer.Exit(2 if preflight.refused_model_folder else 1)
    if any(check.overridden for check in preflight.checks):
        err.print("[bold yellow]WARNING: training despite a failed check (overridden on request).[/]")
    try:
        args = swift_arguments(fit_config, preflight)
    except LaunchError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from None
    env = swift_environment(fit_config, preflight.manifest)
    plan = {"swift_args": args, "environment": env, "steps_per_epoch": steps_per_epoch(preflight, fit_config),
            "packing": preflight.packing, "attn_impl": preflight.attn_impl,
            "command": ["swift", "sft", *as_cli(args)]}
    plan["packing_plan"] = fit_packing_plan(fit_config, preflight)  # vltrain.packing_plan: None without packing
    if dry_run:
        emit(plan, output_format)
        raise typer.Exit(0)
    output = Path(fit_config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(fit_config.cached or "") / "manifest.json", output / "vlprep_manifest.json")
    (output / "vltrain_config.yaml").write_text(fit_config.to_yaml())
    distributed = is_distributed(fit_config)
    try:
        if distributed:
            code, ranks_result = run_distributed(fit_config, args, env)
            if code != 0:
                err.print(f"[red]error:[/] the training processes exited with {code} (their output is above); "
                          f"checkpoints so far are in {output}")
                raise typer.Exit(1)
            if ranks_result is None:  # global rank 0 runs on another node: it writes the summary
                err.print(f"this node's training processes finished; node 0 writes the summary into {output}")
                raise typer.Exit(0)
            result = ranks_result
        else:
            result = run_in_process(args, env)
    except LaunchError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(1) from None
    epochs = fit_config.num_train_epochs
    whole = int(epochs) if fit_config.max_steps < 0 and not distributed and float(epochs).is_integer() else None
    resumed = args.get("resume_from_checkpoint")
    summary = run_summary(result, preflight, whole, int(Path(resumed).name.split("-")[-1]) if resumed else 0)
    summary["packing_plan"] = plan["packing_plan"]
    (output / "vltrain_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    emit(summary, output_format)
    raise typer.Exit(0 if summary["loss_finite"] else 1)


def emit(payload: dict, output_format: str) -> None:
    if output_format == "json":
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    for key, value in payload.items():
        out.print(f"[bold]{key}[/]: {escape(json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))}")


@app.command("make-model")
def make_model(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the model to.")],
    shape: Annotated[str, Opt(help="tiny (~10 M parameters, CPU) or 2b (Qwen3-VL-2B layer shapes).")] = "tiny",
    seed: Annotated[int, Opt()] = 0,
    dtype: Annotated[str, Opt(help="float32 or bfloat16.")] = "float32",
) -> None:
    """Write a seeded random-weight Qwen3-VL with the embedded processor (offline; for demos, tests, GPU checks)."""
    from vltrain.tiny import SHAPES, build_random_model

    if shape not in SHAPES:
        err.print(f"[red]error:[/] --shape must be one of {', '.join(SHAPES)}")
        raise typer.Exit(2)
    build_random_model(out_dir, shape, seed, dtype)
    out.print(f"{out_dir}: random-weight Qwen3-VL ({shape})")


def main() -> None:
    app()
