"""Extra ms-swift arguments (`swift:` in the YAML, `--swift-arg KEY=VALUE`), checked by ms-swift's own parser.

Names must be fields of ms-swift's `SftArguments`; values are converted by its `HfArgumentParser` exactly as
`swift sft --KEY VALUE` would convert them, so a bad value fails here, before anything loads. Arguments vltrain sets
itself are refused with the reason: they have a vltrain option, or they are what makes the run match the cache.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import fields
from functools import lru_cache
from typing import Any

from vlprep.errors import UsageError, closest

_CACHE = "the cache decides it (--cached DIR)"
_PIXELS = "the pixel limits are the cache's (IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, MAX_RATIO); rebuild the cache " \
          "to change them"

# ms-swift arguments vltrain controls, and why (an option to use instead, or the guarantee it keeps)
CONTROLLED: dict[str, str] = {
    "model": "use --model",
    "model_type": "vltrain sets it from the model folder's family (its config.json model_type)",
    "check_model": "vltrain checks the model folder itself, offline",
    "cached_dataset": _CACHE, "cached_val_dataset": _CACHE, "dataset": _CACHE, "val_dataset": _CACHE,
    "split_dataset_ratio": "the validation split is the cache's (vlprep cache --val-ratio / --val)",
    "strict": "vltrain always trains with strict true: a row that fails to encode is an error, never replaced",
    "max_length": "use --max-length (checked against the cache's longest record)",
    "truncation_strategy": "rows over max_length are refused by the checks, never truncated",
    "max_pixels": _PIXELS,
    "tuner_type": "use --tuner", "train_type": "use --tuner",
    "freeze_vit": "use --freeze-vit/--train-vit", "freeze_aligner": "use --freeze-aligner/--train-aligner",
    "freeze_llm": "use --freeze-llm/--train-llm",
    "torch_dtype": "use --torch-dtype (checked against the machine)",
    "attn_impl": "use --attn-impl (checked with --packing)",
    "packing": "use --packing/--no-packing (checked against the machine)",
    "padding_free": "follows --packing",
    "learning_rate": "use --learning-rate", "num_train_epochs": "use --epochs", "max_steps": "use --max-steps",
    "per_device_train_batch_size": "use --batch-size",
    "per_device_eval_batch_size": "use per_device_eval_batch_size: in the YAML",
    "gradient_accumulation_steps": "use --grad-accum", "warmup_ratio": "use --warmup-ratio",
    "gradient_checkpointing": "use --gradient-checkpointing/--no-gradient-checkpointing",
    "save_steps": "use --save-steps", "eval_steps": "use --eval-steps", "logging_steps": "use --logging-steps",
    "save_total_limit": "use save_total_limit: in the YAML",
    "seed": "use --seed", "data_seed": "follows --seed", "report_to": "use --report-to",
    "dataloader_num_workers": "use dataloader_num_workers: in the YAML",
    "include_num_input_tokens_seen": "the summary's tokens/s needs it",
    "output_dir": "use --output-dir", "add_version": "checkpoints go straight into --output-dir",
    "resume_from_checkpoint": "use --resume (continues from the last checkpoint in --output-dir)",
    "lora_rank": "use --lora-rank", "lora_alpha": "use --lora-alpha", "lora_dropout": "use --lora-dropout",
    "target_modules": "use --target-modules", "deepspeed": "use --deepspeed",
}


@lru_cache(maxsize=1)
def _parser() -> tuple[Any, frozenset[str]]:
    """ms-swift's argument parser for SftArguments and its field names (importing ms-swift takes seconds)."""
    with contextlib.redirect_stdout(sys.stderr):
        from swift.arguments.sft_args import SftArguments
        from transformers import HfArgumentParser

        return HfArgumentParser([SftArguments]), frozenset(item.name for item in fields(SftArguments))


def _argv(key: str, value: Any) -> list[str]:
    """`--key value...` as `swift sft` takes it: lists as several values, booleans as true/false, mappings as JSON."""
    values = value if isinstance(value, list) else [value]
    words = [("true" if item else "false") if isinstance(item, bool)
             else json.dumps(item) if isinstance(item, dict) else str(item) for item in values]
    return [f"--{key}", *words]


def parse_swift_arg(item: str) -> tuple[str, str]:
    """`KEY=VALUE` from the command line."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--swift-arg {item!r}: write KEY=VALUE (e.g. --swift-arg weight_decay=0.1)")
    return key.strip(), value


def _refuse(heading: str, problems: list[str], hint: str = "") -> None:
    if problems:
        raise UsageError(f"{heading}: " + "; ".join(problems) + hint)


def checked_swift_args(items: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments as ms-swift's parser types them; unknown names, vltrain's own and bad values refused."""
    normalized = {str(key).replace("-", "_"): value for key, value in items.items()}
    _refuse("ms-swift argument(s) that vltrain sets itself cannot be passed through",
            [f"{key}: {CONTROLLED[key]}" for key in normalized if key in CONTROLLED])
    parser, known = _parser()
    _refuse("unknown ms-swift argument(s)", [f"{key}{closest(key, known)}" for key in normalized if key not in known],
            " (the names of `swift sft --help`, with underscores)")
    argv = [word for key, value in normalized.items() for word in _argv(key, value)]
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            parsed, rest = parser.parse_known_args(argv)
    except SystemExit:
        problem = messages.getvalue().strip().splitlines()[-1:] or ["invalid value"]
        raise UsageError(f"ms-swift refuses the extra argument(s): {problem[0].split('error: ', 1)[-1]}") from None
    if rest:
        raise UsageError(f"ms-swift's parser left {' '.join(rest)} unread: give one value per KEY=VALUE")
    return {key: getattr(parsed, key) for key in normalized}
