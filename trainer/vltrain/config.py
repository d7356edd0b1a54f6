"""The training recipe: defaults < YAML config file < command-line options, resolved into one FitConfig.

YAML keys are the command-line option names with underscores (`epochs`, `batch_size`, `grad_accum`, ...) or, where
they differ, ms-swift's names (`num_train_epochs`, `per_device_train_batch_size`, `gradient_accumulation_steps`).
Any other ms-swift argument goes in a `swift:` mapping (or `--swift-arg KEY=VALUE`), checked by vltrain.swift_args.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from vlprep.errors import UsageError, closest
from vltrain.recipes import find as find_recipe
from vltrain.swift_args import checked_swift_args


class ConfigError(UsageError):
    """A recipe or option vltrain cannot train with (exit 2)."""


@dataclass
class FitConfig:
    # caches, each `DIR` or `DIR#N` (N rows, sampled by ms-swift): several make a mixture, read in this order
    cached: list[str] = field(default_factory=list)
    model: str | None = None
    output_dir: str = "output"
    # tuning
    tuner: str = "lora"  # lora | full
    lora_rank: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    freeze_vit: bool = True
    freeze_aligner: bool = True
    freeze_llm: bool = False
    # optimisation
    learning_rate: float = 1e-4
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    per_device_eval_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.0
    gradient_checkpointing: bool = True
    torch_dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    deepspeed: str | None = None  # zero2 | zero3
    max_length: int | None = None  # default: the cache's --max-length, else its longest record
    packing: bool | None = None  # None: on when CUDA and flash attention are available
    attn_impl: str | None = None  # None: flash_attn when packing, else sdpa
    # pixel limits: None means "the cache's"; a different value is refused (the cache's lengths would be wrong)
    image_max_tokens: int | None = None
    image_min_tokens: int | None = None
    max_ratio: int | None = None
    # video settings (ms-swift's FPS, FPS_MIN_FRAMES, ...): None means "the cache's"; a different value is refused
    fps: float | None = None
    fps_min_frames: int | None = None
    fps_max_frames: int | None = None
    video_min_tokens: int | None = None
    video_max_tokens: int | None = None
    # bookkeeping
    save_steps: int = 500
    eval_steps: int = 500
    logging_steps: int = 5
    save_total_limit: int | None = None
    seed: int = 42
    report_to: list[str] = field(default_factory=lambda: ["none"])
    dataloader_num_workers: int = 0
    resume: bool = False
    # distributed
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    # guards
    allow_processor_mismatch: bool = False
    verify_images: str = "sample"  # sample | all | none
    trust_remote_code: bool = False
    force: bool = False  # train into a non-empty --output-dir
    # any other ms-swift SftArguments field, checked against ms-swift's own parser (vltrain.swift_args)
    swift: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)


_FIELDS = {item.name for item in fields(FitConfig)}
# the command line's names for fields named as ms-swift names them; both spellings are accepted everywhere
ALIASES = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size",
           "grad_accum": "gradient_accumulation_steps"}
VERIFY_IMAGES = ("sample", "all", "none")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """A YAML value as the field's type (YAML reads `1e-3` as a string, `5` where a float is meant as an int)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        origin = typing.get_origin(kind)
        if origin is list:
            items = value if isinstance(value, list) else [value]
            return [str(item) for item in items]
        if kind is bool:
            if isinstance(value, bool):
                return value
            continue
        if kind in (int, float, str):
            try:
                if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
                    continue
                return kind(float(value)) if kind is int else kind(value)
            except (TypeError, ValueError):
                continue
    raise ConfigError(f"{name}: {value!r} is not a valid {' or '.join(getattr(k, '__name__', str(k)) for k in allowed)}")


def load_config(path: Path | None, overrides: dict[str, Any]) -> FitConfig:
    """Defaults, then the YAML file's keys (`path`, or a packaged recipe's name: vltrain.recipes), then the options given
    on the command line (those not None)."""
    values: dict[str, Any] = {}
    if path is not None:
        path = find_recipe(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read config {path}: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config must be a mapping of option names to values")
        values.update(_file_values(path, loaded))
    swift_items = {**values.pop("swift", {}), **overrides.pop("swift", {})}
    values.update({key: value for key, value in overrides.items() if value is not None})
    if values.get("verify_images") == "off":
        values["verify_images"] = "none"
    config = FitConfig(**values)
    if config.tuner not in ("lora", "full"):
        raise ConfigError(f"tuner must be lora or full, not {config.tuner!r}")
    if config.deepspeed not in (None, "zero2", "zero3"):
        raise ConfigError(f"deepspeed must be zero2 or zero3, not {config.deepspeed!r}")
    if config.verify_images not in VERIFY_IMAGES:
        raise ConfigError(f"verify_images must be sample, all or none (also: off), not {config.verify_images!r}")
    if isinstance(config.target_modules, str):
        config.target_modules = [config.target_modules]
    if isinstance(config.cached, (str, Path)):  # one cache given as a plain value
        config.cached = [str(config.cached)]
    if not config.cached:
        raise ConfigError("no cache given: pass --cached DIR (a folder made by `vlprep cache`; repeat it, with DIR#N "
                          "for N rows, to train on a mixture)")
    if swift_items:
        config.swift = checked_swift_args(swift_items)
    return config


def _file_values(path: Path, loaded: dict[str, Any]) -> dict[str, Any]:
    """The YAML file's keys as FitConfig fields: aliases resolved, unknown keys refused with the closest name."""
    known = _FIELDS | set(ALIASES)
    unknown = sorted(str(key) for key in loaded if key not in known)
    if unknown:
        hints = "; ".join(f"{key}{closest(key, known)}" for key in unknown)
        raise ConfigError(f"{path}: unknown key(s): {hints}. Keys are `vltrain fit` option names with underscores "
                          "(or ms-swift's names); other ms-swift arguments go in a `swift:` mapping")
    values: dict[str, Any] = {}
    field_types = typing.get_type_hints(FitConfig)
    for key, value in loaded.items():
        name = ALIASES.get(key, key)
        if name in values:
            raise ConfigError(f"{path}: {key} and {name} are the same setting; give one of them")
        if name == "swift":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: swift: must be a mapping of ms-swift argument names to values")
            values[name] = value
            continue
        if name == "verify_images" and value is False:  # YAML 1.1 reads a bare `off` as false
            value = "none"
        values[name] = _coerce(key, value, field_types[name])
    return values
