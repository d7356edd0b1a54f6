"""`vltrain`: guarded ms-swift training from a `vlprep cache` folder.

Exit codes: 0 trained (or dry run with every check passing), 1 a check failed or training failed, 2 usage errors
(a model folder that ships code without --trust-remote-code included, as in every vlprep command). Every command runs
through vlprep.cli.errors.reported, the one place errors (vlprep.errors) become messages and exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlprep.cache.image_staleness import ImagesMode
from vlprep.cli.formats import DocumentFormat

from vlprep.cli.errors import reported
from vlprep.errors import ProblemsFound, UsageError

from vlprep.insight.mixture import read_lengths
from vlprep.insight.stats_text import mixture_table

from vltrain import __version__
from vltrain.config import FitConfig, load_config
from vltrain.guards import Preflight, run_guards, steps_per_epoch
from vltrain.training.capture import output_to_log, terminal_stream
from vltrain.training.launch import (LaunchError, TrainingFailed, as_cli, cause_in_log, is_distributed,
                                    run_distributed, run_in_process, swift_arguments, swift_environment)
from vltrain.training.monitor import RunMonitor, human_bytes
from vltrain.packing_plan import fit_packing_plan
from vltrain.recipes import copy_recipe, recipes
from vltrain.training.summary import run_summary
from vltrain.swift_args import parse_swift_arg

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Train Qwen3-VL with ms-swift from a verified vlprep cache.")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

Opt = typer.Option


def show_version(value: bool) -> None:
    if value:
        out.print(f"vltrain {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[Optional[bool], Opt("--version", callback=show_version, is_eager=True, metavar="",
                                           help="Print the version and exit.")] = None,
) -> None:
    """Train Qwen3-VL with ms-swift from a verified vlprep cache."""


def print_checks(preflight: Preflight) -> None:
    for check in preflight.checks:
        mark = "[green]ok[/]" if check.ok else ("[yellow]OVERRIDDEN[/]" if check.overridden else "[red]FAIL[/]")
        err.print(f"  {mark} {check.name}: {escape(check.detail)}")
        if not check.ok and check.fix:
            err.print(f"       fix: {escape(check.fix)}")


def default_of(name: str) -> str:
    """FitConfig's default for a field, as `--help` shows it (options default to None so that the YAML can set them)."""
    item = next(item for item in fields(FitConfig) if item.name == name)
    value = item.default_factory() if item.default_factory is not MISSING else item.default  # type: ignore[misc]
    if isinstance(value, bool):
        return "true" if value else "false"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def FitOpt(*names: str, field_name: str, help: str = "") -> Any:  # noqa: N802 - used like typer.Option
    """An option whose default lives in FitConfig (the YAML may set it): help shows that default."""
    default = default_of(field_name)
    flag = bool(names) and "/" in names[0]
    if flag:  # --on/--off: the default is one of the two spellings
        default = names[0].split("/")[0 if default == "true" else 1]
    return Opt(*names, help=f"{help} \\[default: {default}]".strip(), metavar="" if flag else None)


def Flag(*names: str, help: str = "") -> Any:  # noqa: N802 - used like typer.Option
    """An on/off option: no value follows it (help shows no type)."""
    return Opt(*names, help=help, metavar="")


def fit(
    cached: Annotated[Optional[list[str]], Opt("--cached", help="A folder made by `vlprep cache`; repeat it to train "
                                                                "on a mixture, each DIR or DIR#N (N rows, sampled "
                                                                "by ms-swift with --seed).")] = None,
    model: Annotated[Optional[str], Opt(help="Hub id or local Qwen3-VL model directory with weights (`vltrain "
                                             "make-model DIR` writes a small test one).")] = None,
    config: Annotated[Optional[Path], Opt("--config", help="YAML recipe: a file, or a packaged recipe's name (`vltrain "
                                                           "configs` lists them); command-line options override it.")
                      ] = None,
    output_dir: Annotated[Optional[str], FitOpt(
        field_name="output_dir", help="Checkpoints, the cache manifest copy and the resolved config; must be empty "
                                      "or new unless --resume or --force.")] = None,
    force: Annotated[Optional[bool], Flag("--force", help="Train into a non-empty --output-dir (ms-swift overwrites "
                                                         "checkpoints of the same step).")] = None,
    tuner: Annotated[Optional[str], FitOpt(field_name="tuner", help="lora or full.")] = None,
    lora_rank: Annotated[Optional[int], FitOpt(field_name="lora_rank")] = None,
    lora_alpha: Annotated[Optional[int], FitOpt(field_name="lora_alpha")] = None,
    lora_dropout: Annotated[Optional[float], FitOpt(field_name="lora_dropout")] = None,
    target_modules: Annotated[Optional[list[str]], FitOpt(field_name="target_modules",
                                                           help="LoRA targets: all-linear or HF module names.")] = None,
    freeze_vit: Annotated[Optional[bool], FitOpt("--freeze-vit/--train-vit", field_name="freeze_vit")] = None,
    freeze_aligner: Annotated[Optional[bool], FitOpt("--freeze-aligner/--train-aligner", field_name="freeze_aligner")
                              ] = None,
    freeze_llm: Annotated[Optional[bool], FitOpt("--freeze-llm/--train-llm", field_name="freeze_llm")] = None,
    learning_rate: Annotated[Optional[float], FitOpt(field_name="learning_rate")] = None,
    num_train_epochs: Annotated[Optional[float], FitOpt("--epochs", "--num-train-epochs",
                                                        field_name="num_train_epochs")] = None,
    max_steps: Annotated[Optional[int], FitOpt(field_name="max_steps", help="-1: run the epochs.")] = None,
    per_device_train_batch_size: Annotated[Optional[int], FitOpt("--batch-size", "--per-device-train-batch-size",
                                                                 field_name="per_device_train_batch_size")] = None,
    gradient_accumulation_steps: Annotated[Optional[int], FitOpt("--grad-accum", "--gradient-accumulation-steps",
                                                                 field_name="gradient_accumulation_steps")] = None,
    warmup_ratio: Annotated[Optional[float], FitOpt(field_name="warmup_ratio")] = None,
    gradient_checkpointing: Annotated[Optional[bool], FitOpt("--gradient-checkpointing/--no-gradient-checkpointing",
                                                             field_name="gradient_checkpointing")] = None,
    torch_dtype: Annotated[Optional[str], FitOpt(field_name="torch_dtype", help="auto (bfloat16 on CUDA, float32 "
                                                                                  "on CPU), bfloat16, float16 or "
                                                                                  "float32.")] = None,
    deepspeed: Annotated[Optional[str], Opt(help="zero2 or zero3 (ms-swift presets).")] = None,
    max_length: Annotated[Optional[int], Opt(help="Default: the cache's --max-length, else its longest record.")] = None,
    packing: Annotated[Optional[bool], Flag("--packing/--no-packing",
                                           help="Default: on when CUDA and flash attention are available.")] = None,
    attn_impl: Annotated[Optional[str], Opt(help="sdpa, eager, flash_attn, flash_attention_3, ... Default: flash_attn "
                                                 "when packing, else sdpa.")] = None,
    image_max_tokens: Annotated[Optional[int], Opt(help="Default: the cache's; another value is refused.")] = None,
    image_min_tokens: Annotated[Optional[int], Opt(help="Default: the cache's; another value is refused.")] = None,
    max_ratio: Annotated[Optional[int], Opt(help="An int, as ms-swift's MAX_RATIO. Default: the cache's; another "
                                                 "value is refused.")] = None,
    fps: Annotated[Optional[float], Opt(help="ms-swift's FPS. Default: the cache's; another value is refused.")] = None,
    fps_min_frames: Annotated[Optional[int], Opt(help="Default: the cache's; another value is refused.")] = None,
    fps_max_frames: Annotated[Optional[int], Opt(help="Default: the cache's; another value is refused.")] = None,
    video_min_tokens: Annotated[Optional[int], Opt(help="Default: the cache's; another value is refused.")] = None,
    video_max_tokens: Annotated[Optional[int], Opt(help="Default: the cache's; another value is refused.")] = None,
    save_steps: Annotated[Optional[int], FitOpt(field_name="save_steps")] = None,
    eval_steps: Annotated[Optional[int], FitOpt(field_name="eval_steps")] = None,
    logging_steps: Annotated[Optional[int], FitOpt(field_name="logging_steps")] = None,
    seed: Annotated[Optional[int], FitOpt(field_name="seed")] = None,
    report_to: Annotated[Optional[list[str]], FitOpt(field_name="report_to",
                                                     help="none, tensorboard, wandb, swanlab, ...")] = None,
    swift_arg: Annotated[Optional[list[str]], Opt(
        "--swift-arg", help="Any other ms-swift argument as KEY=VALUE (repeatable; e.g. weight_decay=0.1), checked by "
                            "ms-swift's own parser before anything loads. YAML: a `swift:` mapping.",
        show_default=False)] = None,
    resume: Annotated[Optional[bool], Flag("--resume", help="Continue from the last checkpoint in --output-dir.")
                      ] = None,
    nproc_per_node: Annotated[Optional[int], FitOpt(field_name="nproc_per_node",
                                                    help="Processes (GPUs) per node: over 1 launches torchrun via "
                                                         "swift sft.")] = None,
    nnodes: Annotated[Optional[int], FitOpt(field_name="nnodes")] = None,
    node_rank: Annotated[Optional[int], FitOpt(field_name="node_rank")] = None,
    master_addr: Annotated[Optional[str], Opt()] = None,
    master_port: Annotated[Optional[int], Opt()] = None,
    allow_processor_mismatch: Annotated[Optional[bool], Flag("--allow-processor-mismatch",
                                                            help="Train even if the processor differs (loudly).")
                                        ] = None,
    verify_images: Annotated[Optional[ImagesMode], FitOpt(
        field_name="verify_images", help="Image files checked before training: a sample of 64, all, or none (also "
                                         "off). A file whose size/mtime moved is compared by content.")] = None,
    trust_remote_code: Annotated[Optional[bool], Flag("--trust-remote-code",
                                                      help="Allow code shipped in the model folder to run.")] = None,
    dry_run: Annotated[bool, Flag("--dry-run", help="Load no model: print the checks, ms-swift arguments, environment "
                                                   "and steps per epoch.")] = False,
    verbose: Annotated[bool, Flag("--verbose", "-v", help="Show ms-swift's and transformers' output live (it is "
                                                         "always written to OUTPUT/train.log).")] = False,
    output_format: Annotated[DocumentFormat, Opt("--format", help="text or json (on stdout: the summary, the dry-run plan, "
                                                             "or the checks when one fails).")] = DocumentFormat.text,
) -> None:
    """Train from a vlprep cache with ms-swift SFT, after checks that need no model weights.

    Example: [bold]vltrain fit --cached arrow/ --model Qwen/Qwen3-VL-8B-Instruct --config lora-8b[/]
    """
    overrides = {key: value for key, value in locals().items()
                 if key not in ("config", "dry_run", "output_format", "swift_arg", "verbose") and value is not None}
    if "cached" in overrides:
        overrides["cached"] = [str(item) for item in overrides["cached"]]
    if "verify_images" in overrides:
        overrides["verify_images"] = overrides["verify_images"].value
    overrides["swift"] = dict(parse_swift_arg(item) for item in swift_arg or [])
    fit_config = load_config(config, overrides)
    refuse_used_output_dir(Path(fit_config.output_dir), fit_config)
    err.print("[bold]Checks before loading the model[/]")
    preflight = run_guards(fit_config)
    print_checks(preflight)
    if preflight.failed:
        err.print(f"[red]{len(preflight.failed)} check(s) failed: nothing was trained.[/]")
        if output_format is DocumentFormat.json:
            emit({"trained": False, "checks": checks_json(preflight)}, output_format.value)
        raise typer.Exit(2 if preflight.refused_model_folder else 1)
    if any(check.overridden for check in preflight.checks):
        err.print("[bold yellow]WARNING: training despite a failed check (overridden on request).[/]")
    args = swift_arguments(fit_config, preflight)
    env = swift_environment(fit_config, preflight.manifest)
    plan = {"swift_args": args, "environment": env, "steps_per_epoch": steps_per_epoch(preflight, fit_config),
            "packing": preflight.packing, "attn_impl": preflight.attn_impl,
            "extra_swift_args": sorted(fit_config.swift), "command": ["swift", "sft", *as_cli(args)],
            "checks": checks_json(preflight), "mixture": mixture_rows(preflight)}
    plan["packing_plan"] = fit_packing_plan(fit_config, preflight)  # vltrain.packing_plan: None without packing
    if plan["packing_plan"]:  # exact (ms-swift's own packing), where steps_per_epoch only estimates from token totals
        plan["steps_per_epoch"] = plan["packing_plan"]["steps_per_epoch"]
    if dry_run:
        if output_format is DocumentFormat.text:
            err.print(mixture_table({"data_seed": fit_config.seed, "sources": plan["mixture"]}))
        emit(plan, output_format.value)
        raise typer.Exit(0)
    output = Path(fit_config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    shutil.copy(preflight.sources[0].folder / "manifest.json", output / "vlprep_manifest.json")
    if len(preflight.sources) > 1:  # every cache's manifest, in the mixture's order
        (output / "vlprep_manifests.json").write_text(json.dumps(preflight.manifests, indent=1) + "\n")
    (output / "vltrain_config.yaml").write_text(fit_config.to_yaml())
    result, measured = train(fit_config, preflight, args, env, output_format, verbose, plan["packing_plan"])
    resumed = args.get("resume_from_checkpoint")
    summary = run_summary(result, preflight, int(Path(resumed).name.split("-")[-1]) if resumed else 0, measured)
    summary["packing_plan"] = plan["packing_plan"]
    summary["sources"] = plan["mixture"]
    (output / "vltrain_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if output_format is DocumentFormat.json:
        emit(summary, output_format.value)
    else:
        print_summary(summary, output)
    raise typer.Exit(0 if summary["loss_finite"] else 1)


def train(fit_config: FitConfig, preflight: Preflight, args: dict[str, Any], env: dict[str, str],
          output_format: DocumentFormat, verbose: bool, packing_plan: dict[str, Any] | None = None
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ms-swift with its output in OUTPUT/train.log (also live with --verbose) and vltrain's display on the
    terminal's stderr; (the trainer's result, what the monitor measured). Failures exit 1 with the cause line."""
    output = Path(fit_config.output_dir)
    log_path = output / "train.log"
    distributed = is_distributed(fit_config)
    started = time.time()
    print_header(fit_config, preflight, args, log_path, verbose, packing_plan)
    interactive = (output_format is DocumentFormat.text and sys.stdout.isatty() and sys.stderr.isatty() and not verbose)
    with terminal_stream() as terminal:
        console = Console(file=terminal, soft_wrap=True, force_terminal=interactive or None,
                          no_color=not interactive or None, highlight=False)
        monitor = RunMonitor(console, live=interactive, output_dir=output, started=started,
                             synchronous=not distributed)
        try:
            with output_to_log(log_path, tee=verbose):
                if distributed:
                    code, result = run_distributed(fit_config, args, env, monitor.handle)
                else:
                    code, result = 0, run_in_process(args, env, monitor.handle)
        except (LaunchError, TrainingFailed) as error:  # exit 1 even for a LaunchError: the run had started
            monitor.finish(time.time())
            raise training_failed(str(error), log_path, output) from None
        except KeyboardInterrupt:
            monitor.finish(time.time())  # stop the live display before the terminal gets the prompt back
            raise
        measured = monitor.finish(time.time())
    if code != 0:
        raise training_failed(cause_in_log(log_path) or f"the training processes exited with {code}", log_path, output)
    if result is None:  # global rank 0 runs on another node: it writes the summary
        err.print(f"this node's training processes finished; node 0 writes the summary into {output}")
        raise typer.Exit(0)
    return result, measured


def training_failed(cause: str, log_path: Path, output: Path) -> ProblemsFound:
    """Exit 1 with the cause line, where the full log is and where the checkpoints so far are."""
    return ProblemsFound(f"training failed: {cause}\n  full log: {log_path}; checkpoints so far are in {output}")


def print_header(config: FitConfig, preflight: Preflight, args: dict[str, Any], log_path: Path, verbose: bool,
                 packing_plan: dict[str, Any] | None = None) -> None:
    """What is about to train, in a few lines (the full argument list is in train.log and vltrain_config.yaml)."""
    tuner = config.tuner if config.tuner == "full" else f"lora (rank {config.lora_rank}, alpha {config.lora_alpha})"
    frozen = ", ".join(part for part, flag in (("vision", config.freeze_vit), ("aligner", config.freeze_aligner),
                                                ("llm", config.freeze_llm)) if flag) or "nothing"
    world = config.nproc_per_node * config.nnodes
    per_epoch = packing_plan["steps_per_epoch"] if packing_plan else steps_per_epoch(preflight, config)
    steps = f"max {config.max_steps} steps" if config.max_steps > 0 else (
        f"{config.num_train_epochs:g} epoch(s) of {per_epoch} steps")
    packed = (f" ({packing_plan['num_packs']:,} packs of up to {packing_plan['packing_length']:,} tokens, "
              f"{packing_plan['fill']:.1%} full)" if packing_plan else "")
    err.print("[bold]Training[/]")
    for line in (f"model: {args['model']}",
                 f"tuner: {tuner}; frozen: {frozen}; dtype {preflight.torch_dtype}",
                 f"attention: {preflight.attn_impl}; packing: {'on' if preflight.packing else 'off'}{packed}; max "
                 f"length {preflight.max_length}",
                 f"batch: {config.per_device_train_batch_size} per device × {config.gradient_accumulation_steps} "
                 f"accumulation × {world} process(es); {steps}",
                 f"output: {config.output_dir} (checkpoints every {config.save_steps} steps, curves.png); log: "
                 f"{log_path}{' (also shown live: --verbose)' if verbose else ''}"):
        err.print(f"  {escape(line)}", highlight=False)


def print_summary(summary: dict[str, Any], output: Path) -> None:
    """The end-of-run table on stdout."""
    table = Table(title="vltrain summary", show_header=False, box=None, title_justify="left")
    wall = summary.get("wall_s") or {}

    def number(value: Any, digits: str = ".4f") -> str:
        return "—" if value is None else format(value, digits)

    memory = summary.get("peak_memory_bytes")
    rows = [
        ("steps", str(summary.get("steps"))),
        ("train loss", f"{number(summary.get('train_loss_first'))} → "
                                      f"{number(summary.get('train_loss_last'))} (first → last)"),
        ("eval loss", f"{number(summary.get('eval_loss_first'))} → "
                                     f"{number(summary.get('eval_loss_last'))}"),
        ("tokens/s", f"{number(summary.get('measured_real_tokens_per_s'), ',.1f')} real, "
                     f"{number(summary.get('measured_tokens_per_s'), ',.1f')} with padding"),
        ("padding", "—" if summary.get("padding_fraction") is None else f"{summary['padding_fraction']:.1%} of "
                                                                         "the positions in the batches formed"),
        ("peak memory", "—" if not memory else f"{human_bytes(memory)} "
                                               f"({'GPU' if summary.get('peak_memory_kind') == 'gpu' else 'RSS'})"),
        ("wall time", " · ".join(f"{key} {value:.0f} s" for key, value in wall.items() if value is not None)),
        ("last checkpoint", str(summary.get("last_checkpoint"))),
        *[(f"source {item['source']}", f"{item['rows_drawn']:,} rows ({item['rows_repeated']:,} repeats), "
                                       f"{item['tokens']:,} tokens per epoch") for item in summary.get("sources") or []],
        ("files", f"{output}/: vltrain_summary.json curves.png train.log"),
    ]
    for name, value in rows:
        table.add_row(f"[bold]{name}[/]", escape(value))
    out.print(table)
    if not summary.get("loss_finite"):
        out.print("[red]the training loss is not finite[/]")


def mixture_rows(preflight: Preflight) -> list[dict[str, Any]]:
    """Per cache: the rows ms-swift draws (after its max_length filter and #N sampling) and their tokens."""
    return [{**item.to_json(), "tokens": int(read_lengths(item.source.folder)[item.indices].sum())}
            for item in preflight.draws]


def checks_json(preflight: Preflight) -> list[dict[str, Any]]:
    return [{"name": check.name, "ok": check.ok, "overridden": check.overridden, "detail": check.detail,
             "fix": check.fix} for check in preflight.checks]


def refuse_used_output_dir(output: Path, config: FitConfig) -> None:
    """Never train silently over an earlier run: a non-empty --output-dir needs --resume or --force (exit 2)."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output-dir {output} exists and is not a folder")
    if config.resume or config.force or not output.is_dir() or not any(output.iterdir()):
        return
    raise UsageError(f"--output-dir {output} is not empty (an earlier run?): nothing was written. Pass --resume to "
                     "continue its last checkpoint, --force to train into it anyway (checkpoints of the same step are "
                     "overwritten), or choose another --output-dir.")


def emit(payload: dict, output_format: str) -> None:
    if output_format == "json":
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    for key, value in payload.items():
        out.print(f"[bold]{key}[/]: {escape(json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))}")


def make_model(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the model to (new or empty).")],
    shape: Annotated[str, Opt(help="tiny (~10 M parameters, CPU) or 2b (Qwen3-VL-2B layer shapes).")] = "tiny",
    seed: Annotated[int, Opt()] = 0,
    dtype: Annotated[str, Opt(help="float32 or bfloat16.")] = "float32",
    force: Annotated[bool, Flag("--force", help="Write into a non-empty folder (its model files are replaced).")
                     ] = False,
) -> None:
    """Write a seeded random-weight Qwen3-VL with the embedded processor (offline; for demos, tests, GPU checks)."""
    from vltrain.tiny import SHAPES, build_random_model

    if shape not in SHAPES:
        raise UsageError(f"--shape must be one of {', '.join(SHAPES)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and not force and (held := sorted(path.name for path in out_dir.iterdir())):
        raise UsageError(f"{out_dir} is not empty ({', '.join(held[:5])}{' …' if len(held) > 5 else ''}): nothing was "
                         "written. Choose a new folder, or pass --force to write the model files (config.json, "
                         "weights, processor files) into it.")
    build_random_model(out_dir, shape, seed, dtype)
    out.print(f"{out_dir}: random-weight Qwen3-VL ({shape})")


configs_app = typer.Typer(rich_markup_mode="rich")


def configs(
    context: typer.Context,
    output_format: Annotated[DocumentFormat, Opt("--format", help="text or json (json: every key of each recipe)."
                                                 )] = DocumentFormat.text,
) -> None:
    """List the training recipes packaged with vltrain.

    Train with one: [bold]vltrain fit --cached arrow/ --config lora-8b[/]; copy one out to edit: [bold]vltrain configs
    cp lora-8b my-recipe.yaml[/].
    """
    if context.invoked_subcommand is not None:
        return
    listed = recipes()
    if output_format is DocumentFormat.json:
        rows = [{"name": item.name, "file": str(item.path), "description": item.description, "usage": item.usage,
                 "settings": item.settings} for item in listed]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    for item in listed:
        out.print(f"[bold]{item.name}[/]: {escape(item.description)}\n  {escape(item.key_settings())}", highlight=False)
        if item.usage:
            out.print(f"  {escape(item.usage)}", highlight=False)


def copy_config(
    name: Annotated[str, typer.Argument(help="A packaged recipe (`vltrain configs` lists them).")],
    dest: Annotated[Path, typer.Argument(help="The file to write, or a folder to write NAME.yaml into.")],
    force: Annotated[bool, Flag("--force", help="Replace an existing file.")] = False,
) -> None:
    """Copy a packaged recipe out for editing; train with it through [bold]vltrain fit --config DEST[/]."""
    target = copy_recipe(name, dest, force)
    err.print(f"{escape(str(target))}: a copy of the packaged recipe {escape(Path(name).stem)}; train with it: vltrain "
              f"fit --cached DIR --config {escape(str(target))}", highlight=False)


app.command()(reported(fit, err))
app.command("make-model")(reported(make_model, err))
configs_app.callback(invoke_without_command=True)(reported(configs, err))
configs_app.command("cp")(reported(copy_config, err))
app.add_typer(configs_app, name="configs")


def main() -> None:
    app()
