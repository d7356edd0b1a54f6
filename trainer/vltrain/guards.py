"""Checks that run before any model weight is loaded; each failure says what is wrong and how to fix it."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlprep.cache.image_staleness import StaleCheckError, check_cached_images
from vlprep.cache.manifest import ManifestError, load_manifest
from vlprep.counting.model_guard import FIX, ShippedCodeRefused, shipped_code
from vlprep.counting.processor import ProcessorError, resolve_model_dir
from vlprep.counting.settings import (IMAGE_ENV, LEGACY_IMAGE_ENV, LEGACY_VIDEO_ENV, READER_ENV, VIDEO_READER_VERSION,
                                      CountSettings)
from vlprep.models.family import ModelFamily
from vlprep.models.registry import family_for_model_dir, family_of_manifest

from vlprep.insight.mixture import Draw, MixtureError, Source, draw, parse_sources, read_lengths

from vltrain.config import FitConfig
from vltrain.mixture_check import mixture_settings

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHTS_FIX = ("pass --model DIR with a model folder that has weights: `vltrain make-model DIR` writes a small "
                "random-weight test model; for a real one download it beforehand (`hf download "
                "Qwen/Qwen3-VL-2B-Instruct --local-dir DIR`) and pass that folder or its Hub id")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    overridden: bool = False


@dataclass
class Preflight:
    """What the guards found and decided: the manifest, the attention/packing choice and the resolved max_length."""

    manifest: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    packing: bool = False
    attn_impl: str = "sdpa"
    torch_dtype: str = "float32"
    max_length: int = 0
    cuda: bool = False
    sources: list[Source] = field(default_factory=list)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    draws: list[Draw] = field(default_factory=list)  # the rows ms-swift draws from each source, in its order

    def drawn_lengths(self) -> Any:
        """The train rows' lengths in the order ms-swift concatenates them (what packing sees)."""
        import numpy as np

        parts = [read_lengths(item.source.folder)[item.indices] for item in self.draws]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok and not check.overridden]

    @property
    def refused_model_folder(self) -> bool:
        """The model folder ships code: a refusal of the request (exit 2), like vlprep's."""
        return any(check.name == "remote code" for check in self.failed)


def flash_attention_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def run_guards(config: FitConfig) -> Preflight:
    """Every check, over every cache of the mixture (one cache is a mixture of one)."""
    preflight = Preflight(cuda=cuda_available())
    preflight.sources = parse_sources(config.cached)  # a MixtureError (exit 2): a source that cannot be read
    for source in preflight.sources:
        try:
            manifest = load_manifest(source.folder)
            family_of_manifest(manifest)  # a family this vlprep knows
        except (ManifestError, ProcessorError) as error:
            preflight.checks.append(Check("cache manifest", False, str(error),
                                          "point --cached at a `vlprep cache` folder"))
            return preflight
        preflight.manifests.append(manifest)
        preflight.checks.append(Check("cache manifest", True, f"{source.folder}: manifest and file checksums "
                                                              "verified"))
    preflight.manifest = preflight.manifests[0]
    model_dir = _model_dir(config)
    preflight.checks.append(_remote_code_check(config, model_dir))
    preflight.checks.append(_weights_check(config, model_dir))
    processors = [_processor_check(config, model_dir, manifest, source.folder)
                  for source, manifest in zip(preflight.sources, preflight.manifests)]
    preflight.checks += [_named(check, source, len(processors)) for check, source in zip(processors, preflight.sources)]
    if len(preflight.sources) > 1:
        preflight.checks.append(Check("mixture", *mixture_settings(preflight.sources, preflight.manifests,
                                                                   [check.ok for check in processors])))
    preflight.checks.append(_pixel_limits_check(config, preflight.manifest))
    preflight.checks.append(_video_settings_check(config, preflight.manifest))
    preflight.checks.append(_max_length_check(config, preflight))
    preflight.checks.append(_draw_check(config, preflight))
    preflight.checks += [_named(_images_check(config, source.folder, manifest), source, len(preflight.sources))
                         for source, manifest in zip(preflight.sources, preflight.manifests)]
    preflight.checks.append(_attention_check(config, preflight))
    preflight.checks.append(_dtype_check(config, preflight))
    return preflight


def _named(check: Check, source: Source, sources: int) -> Check:
    """A per-cache check, its detail prefixed with the cache in a mixture."""
    if sources > 1 and not check.detail.startswith(str(source.folder)):
        check.detail = f"{source.spec}: {check.detail}"
    return check


def _draw_check(config: FitConfig, preflight: Preflight) -> Check:
    """The rows ms-swift will draw from each cache (its max_length filter, then #N from RandomState(data_seed))."""
    try:
        preflight.draws = draw(preflight.sources, [read_lengths(source.folder) for source in preflight.sources],
                               preflight.max_length, config.seed)
    except MixtureError as error:
        return Check("mixture rows", False, str(error), "raise --max-length or leave that cache out")
    drawn = ", ".join(f"{item.source.spec}: {len(item.indices):,}" for item in preflight.draws)
    return Check("mixture rows", True, f"rows drawn per cache (data_seed {config.seed}): {drawn}")


def _model_dir(config: FitConfig) -> Path | ProcessorError:
    """The model's processor directory, resolved once (a Hub id means a snapshot lookup), or why there is none."""
    try:
        return resolve_model_dir(config.model, config.trust_remote_code)
    except ProcessorError as error:
        return error


def _weights_check(config: FitConfig, model_dir: Path | ProcessorError) -> Check:
    """The model folder holds weights (file names only: nothing is read); the embedded processor has none."""
    if config.model is None:
        return Check("weights", False, "no --model given: the embedded processor that vlprep caches with has no "
                                       "weights to train", _WEIGHTS_FIX)
    if isinstance(model_dir, ShippedCodeRefused):
        return Check("weights", False, "not inspected: the model folder was refused (remote code)")
    if isinstance(model_dir, ProcessorError):
        return Check("weights", False, f"--model {config.model}: no model folder to look in (the processor check "
                                       "says why)", _WEIGHTS_FIX)
    for index_name in _WEIGHT_INDEXES:
        if (model_dir / index_name).is_file():
            try:
                shards = set(json.loads((model_dir / index_name).read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                return Check("weights", False, f"{model_dir / index_name} is not a readable weight index ({error})",
                             "download the model again")
            absent = sorted(name for name in shards if not (model_dir / name).is_file())
            if absent:
                return Check("weights", False, f"{model_dir}: {len(absent)} of the {len(shards)} weight files its "
                                               f"{index_name} lists are missing (e.g. {absent[0]})",
                             "finish the download (`hf download` resumes) or pass another --model")
            return Check("weights", True, f"{model_dir}: {len(shards)} weight file(s) listed in {index_name}")
    found = sorted(path.name for pattern in _WEIGHT_PATTERNS for path in model_dir.glob(pattern))
    if found:
        return Check("weights", True, f"{model_dir}: {', '.join(found[:3])}{' …' if len(found) > 3 else ''}")
    return Check("weights", False, f"{model_dir} has no weight files (*.safetensors, *.bin or a weight index): "
                                   "a processor-only folder or an incomplete download", _WEIGHTS_FIX)


def _processor_check(config: FitConfig, model_dir: Path | ProcessorError, manifest: dict[str, Any],
                     cache_dir: Path) -> Check:
    """Same fingerprint: the same processor. Another fingerprint: the same only if the model is of the cache's family,
    its tokenizer gives the ids the cache's gave on its token probe (vlprep.counting.token_probe) and its image
    geometry is the family's."""
    from vlprep.counting.processor_memo import processor_facts

    try:
        if isinstance(model_dir, ShippedCodeRefused):
            return Check("processor", False, "not inspected: the model folder was refused (remote code)")
        if isinstance(model_dir, ProcessorError):
            raise model_dir  # reported like a processor that does not load
        facts = processor_facts(model_dir, config.trust_remote_code)
        family = family_for_model_dir(model_dir)
    except ProcessorError as error:
        return Check("processor", False, str(error), "pass --model with a Qwen3-VL model directory or Hub id")
    cached = manifest["processor"]["fingerprint"]
    if facts.fingerprint == cached:
        return Check("processor", True, f"the model's processor matches the cache's ({facts.fingerprint[:12]})")
    differs = (f"the model's processor ({facts.fingerprint[:12]}) differs from the one the cache was built with "
               f"({cached[:12]}, model {manifest['processor']['model']!r})")
    same, evidence = _same_tokens(config, model_dir, family, facts, manifest, cache_dir)
    if same:
        return Check("processor", True, f"{differs} in its files, but {evidence}: the cache's ids and lengths hold")
    return Check("processor", False, f"{differs}: {evidence}, so token ids and lengths would not match",
                 f"rebuild the cache with `vlprep cache ... --model {config.model}`, or pass "
                 "--allow-processor-mismatch if you know the difference is harmless",
                 overridden=config.allow_processor_mismatch)


def _same_tokens(config: FitConfig, model_dir: Path, family: ModelFamily, facts: Any, manifest: dict[str, Any],
                 cache_dir: Path) -> tuple[bool, str]:
    """Whether the model's processor encodes the cache's token probe to the same ids; and the evidence either way."""
    from vlprep.counting.counter import counter_for_model_dir
    from vlprep.counting.token_probe import PROBE_NAME, compare_probe, load_probe

    settings = CountSettings.from_manifest(manifest)
    if not family.counts_like(settings.family):
        return False, f"it is a {family.title} model and the cache was counted for {settings.family.title}"
    geometry, expected = _image_geometry(model_dir, family), family.geometry()
    if geometry != expected:
        return False, f"its image geometry {geometry} is not {family.title}'s {expected}"
    probe = load_probe(cache_dir)
    if probe is None:
        return False, f"the cache has no {PROBE_NAME} to compare tokens with (built by an older vlprep)"
    counter = counter_for_model_dir(model_dir, config.trust_remote_code, settings, facts)
    compared, mismatch = compare_probe(probe, counter)
    if mismatch is None:
        return True, f"its tokenizer gives the cache's ids on all {compared} probe texts and cached records"
    return False, (f"its tokenizer encodes {mismatch.where} differently from token {mismatch.position} on: cache "
                   f"{mismatch.cache_ids} {mismatch.cache_text!r}, model {mismatch.model_ids} {mismatch.model_text!r}")


def _image_geometry(model_dir: Path, family: ModelFamily) -> dict[str, Any]:
    """patch, temporal patch and merge sizes from the folder's image-processor config (what decides the grids); the
    family's where the config does not say."""
    expected = family.geometry()
    settings: dict[str, Any] = {}
    for name in ("preprocessor_config.json", "processor_config.json"):
        try:
            config = json.loads((model_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        image = config.get("image_processor", config) if isinstance(config, dict) else {}
        settings.update({key: image[key] for key in expected if isinstance(image, dict) and key in image})
    return {key: settings.get(key, value) for key, value in expected.items()}


def _remote_code_check(config: FitConfig, model_dir: Path | ProcessorError) -> Check:
    """ms-swift loads configs, tokenizers and processors with trust_remote_code=True: the folder was refused while it
    was resolved (vlprep.counting.model_guard) if it ships or maps code and --trust-remote-code was not given."""
    if isinstance(model_dir, ShippedCodeRefused):
        return Check("remote code", False, model_dir.problem, FIX)
    if isinstance(model_dir, ProcessorError):
        return Check("remote code", True, "no model directory to inspect (the processor check reports why)")
    shipped = shipped_code(model_dir)
    if shipped:
        return Check("remote code", True, f"{model_dir} ships code ({', '.join(shipped)}); allowed by "
                                          "--trust-remote-code")
    return Check("remote code", True, f"{model_dir} ships no Python code and maps none: nothing from it will run, "
                                      "although ms-swift loads it with trust_remote_code=True (its warnings saying so "
                                      "go to train.log only)")


def _requested_pixel_limits(config: FitConfig, family: ModelFamily) -> dict[str, tuple[int, str]]:
    """Pixel limits asked for by options/config, else by ms-swift's environment variables (legacy ones converted)."""
    requested: dict[str, tuple[int, str]] = {}
    for key, env_name in IMAGE_ENV.items():
        value = getattr(config, key)
        if value is not None:
            requested[key] = (int(value), f"--{key.replace('_', '-')}")
        elif os.environ.get(env_name):
            requested[key] = (int(os.environ[env_name]), f"${env_name}")
    for legacy, key in LEGACY_IMAGE_ENV.items():
        if key not in requested and os.environ.get(legacy):
            requested[key] = (int(os.environ[legacy]) // family.pixels_per_token, f"${legacy}")
    return requested


def _pixel_limits_check(config: FitConfig, manifest: dict[str, Any]) -> Check:
    counting = manifest["counting"]
    requested = _requested_pixel_limits(config, CountSettings.from_manifest(manifest).family)
    differing = [f"{source}={value} (cache: {counting[key]})"
                 for key, (value, source) in requested.items() if value != counting[key]]
    limits = ", ".join(f"{env}={counting[key]}" for key, env in IMAGE_ENV.items())
    if differing:
        return Check("pixel limits", False, "training would resize images differently from the cache: "
                                            + "; ".join(differing) + ", so lengths and image tokens would change",
                     f"train with the cache's limits ({limits}) or rebuild the cache with the new ones")
    return Check("pixel limits", True, f"ms-swift gets the cache's {limits}")


_VIDEO_OPTIONS = ("fps", "fps_min_frames", "fps_max_frames", "video_min_tokens", "video_max_tokens")


def _video_settings_check(config: FitConfig, manifest: dict[str, Any]) -> Check:
    """ms-swift reads the video settings and the reader from the environment: one asked for (by an option, the config
    or the environment) that differs from the cache's would sample or resize video frames differently, and another
    reader (or version) may sample other frames."""
    from importlib.metadata import PackageNotFoundError, version

    cached = CountSettings.from_manifest(manifest).video
    expected = cached.environment()
    differing = [f"--{key.replace('_', '-')}={getattr(config, key)} (cache: {getattr(cached, key)})"
                 for key in _VIDEO_OPTIONS
                 if getattr(config, key) is not None and float(getattr(config, key)) != float(getattr(cached, key))]
    differing += [f"${name}={os.environ[name]} (cache: {value})" for name, value in expected.items()
                  if os.environ.get(name) and not _same_setting(os.environ[name], value)]
    differing += [f"${name}={os.environ[name]} (converted by ms-swift to VIDEO_*_TOKEN_NUM)"
                  for name in LEGACY_VIDEO_ENV if os.environ.get(name)]
    cached_reader = (manifest["counting"].get("video") or {}).get("reader_version", VIDEO_READER_VERSION)
    try:
        installed = version(expected[READER_ENV])
    except PackageNotFoundError:
        installed = None
    if installed != cached_reader:
        differing.append(f"{expected[READER_ENV]} {installed or 'not installed'} "
                         f"(cache: {cached_reader})")
    settings = ", ".join(f"{name}={value}" for name, value in expected.items())
    if differing:
        return Check("video settings", False, "training would read or sample videos differently from the cache: "
                                              + "; ".join(differing),
                     f"train with the cache's video settings ({settings}) or rebuild the cache with the new ones")
    return Check("video settings", True, f"ms-swift gets the cache's {settings}")


def _same_setting(given: str, cached: str) -> bool:
    try:
        return float(given) == float(cached)
    except ValueError:
        return given == cached


def _max_length_check(config: FitConfig, preflight: Preflight) -> Check:
    """max_length: --max-length, else the largest of the caches' --max-length or longest record; never under one."""
    longest = {source.spec: max((stats.get("max", 0) for stats in manifest["lengths"].values()), default=0)
               for source, manifest in zip(preflight.sources, preflight.manifests)}
    limits = {source.spec: manifest.get("max_length") for source, manifest in zip(preflight.sources,
                                                                                  preflight.manifests)}
    preflight.max_length = config.max_length or max(limits[spec] or longest[spec] for spec in longest)
    named = len(longest) > 1
    for spec in longest:
        where = f" of {spec}" if named else ""
        if limits[spec] and preflight.max_length < limits[spec]:
            return Check("max_length", False, f"--max-length {preflight.max_length} is smaller than the cache's"
                                              f"{where} --max-length {limits[spec]}",
                         f"use --max-length {limits[spec]} or rebuild the cache with --max-length "
                         f"{preflight.max_length}")
        if preflight.max_length < longest[spec]:
            return Check("max_length", False, f"--max-length {preflight.max_length} is smaller than the longest "
                                              f"cached record{where} ({longest[spec]} tokens): ms-swift would drop "
                                              "those rows",
                         f"use --max-length {longest[spec]} or rebuild the cache with --max-length "
                         f"{preflight.max_length}")
    return Check("max_length", True, f"max_length {preflight.max_length} (longest cached record: "
                                     f"{max(longest.values())})")


def _images_check(config: FitConfig, cache_dir: Path, manifest: dict[str, Any]) -> Check:
    """Image files referenced by the cache are still there with the content they had when cached."""
    try:
        report = check_cached_images(cache_dir, manifest, config.verify_images)
    except StaleCheckError as error:
        return Check("images", False, str(error), "rebuild the cache with this vlprep")
    return Check("images", report.ok, report.describe(), report.fix())


def _attention_check(config: FitConfig, preflight: Preflight) -> Check:
    flash = flash_attention_available()
    packing = config.packing if config.packing is not None else (preflight.cuda and flash)
    preflight.packing = packing
    preflight.attn_impl = config.attn_impl or ("flash_attn" if packing or (preflight.cuda and flash) else "sdpa")
    if packing and not flash:
        return Check("attention", False, "packing needs a flash-attention implementation and `flash_attn` is not "
                                         "importable",
                     "install flash-attn on a CUDA machine (`pip install flash-attn`), or pass --no-packing")
    if packing and not preflight.cuda:
        return Check("attention", False, "packing needs flash attention on a CUDA GPU; this machine has none",
                     "pass --no-packing (CPU training uses sdpa without packing)")
    reason = "" if config.packing is not None else " (auto: CUDA and flash_attn " + (
        "available)" if packing else "not both available)")
    return Check("attention", True, f"attn_impl {preflight.attn_impl}, packing {'on' if packing else 'off'}{reason}")


def _dtype_check(config: FitConfig, preflight: Preflight) -> Check:
    dtype = config.torch_dtype
    if dtype == "auto":
        dtype = "bfloat16" if preflight.cuda else "float32"
    preflight.torch_dtype = dtype
    if dtype in ("bfloat16", "float16") and not preflight.cuda:
        return Check("dtype", False, f"{dtype} requested on a machine without a CUDA GPU",
                     "pass --torch-dtype float32 on CPU")
    return Check("dtype", True, f"torch_dtype {dtype}")


def steps_per_epoch(preflight: Preflight, config: FitConfig) -> int:
    """Optimizer steps per epoch: exact without packing; with packing, estimated from token totals."""
    world = config.nproc_per_node * config.nnodes
    per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps * world
    records = sum(len(item.indices) for item in preflight.draws)
    if not records:
        return 0
    units = math.ceil(int(preflight.drawn_lengths().sum()) / preflight.max_length) if preflight.packing else records
    return max(1, math.ceil(units / per_step))
