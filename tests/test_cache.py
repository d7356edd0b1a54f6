"""`vlprep cache` through its CLI: every line accounted for, a manifest that matches its schema, rows ms-swift reads,
deterministic output, refusals that touch nothing, resumable interruption, and a cache that really trains.

The bundled demo corpus (fixtures/demo.jsonl) has 14 lines, two of them planted rejects: line 13 (truncated JPEG,
I004) and line 14 (two <image> tags, one image, M001).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import jsonschema
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from child_process import signal_build_after_shards, start_vlprep
from support import FIXTURES, SCHEMAS
from vlprep.checks.images import ImageLimits, check_image
from vlprep.cache import writer
from vlprep.cli.app import app
from vlprep.counting.settings import CountSettings
from vlprep.counting.tokens import TokenCounter
from vlprep.cache.writer import cache_features

runner = CliRunner()

DEMO = FIXTURES / "demo.jsonl"
DEMO_LINES = 14
DEMO_REJECTS = {13: ["I004"], 14: ["M001"]}
COLUMNS = {"messages", "images", "tools", "objects", "channel", "label", "lengths", "vlprep_source", "vlprep_line",
           "vlprep_index", "vlprep_image_grid_thw", "vlprep_image_tokens", "vlprep_image_size", "vlprep_image_mtime_ns",
           "vlprep_image_blake2b", "videos", "vlprep_video_grid_thw", "vlprep_video_tokens", "vlprep_trained_tokens",
           "vlprep_turn_roles", "vlprep_turn_tokens", "vlprep_turn_trained"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache(*args: str | Path) -> Any:
    """Run `vlprep cache` in this process (the processor is loaded once per session); returns click's Result."""
    result = runner.invoke(app, ["cache", "-q", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"vlprep cache raised {type(result.exception).__name__}: {result.exception}\n{result.output}")
    return result


def rows(cache_dir: Path, split: str) -> list[dict[str, Any]]:
    return datasets.load_from_disk(str(cache_dir / split)).to_list()


def all_rows(cache_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: rows(cache_dir, split) if (cache_dir / split).is_dir() else [] for split in ("train", "val")}


def rejects(cache_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (cache_dir / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]


def manifest(cache_dir: Path) -> dict[str, Any]:
    return json.loads((cache_dir / "manifest.json").read_text())


def tree(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (or 'dir') of everything under a folder."""
    return {str(path.relative_to(folder)): "dir" if path.is_dir() else sha256(path)
            for path in sorted(folder.rglob("*"))}


def with_demo_images(folder: Path) -> Path:
    """A folder whose `images` is the fixtures' image folder, so demo lines copied there resolve their images."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    return folder


@dataclass
class Built:
    out: Path
    exit_code: int
    output: str
    input_sha256_before: str


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> Built:
    """fixtures/demo.jsonl cached with a 30 % val split, 2 workers, every record verified by ms-swift."""
    before = sha256(DEMO)
    out = tmp_path_factory.mktemp("demo") / "cache"
    result = cache(DEMO, "--out", out, "--val-ratio", "0.3", "--verify", "all", "--workers", "2")
    return Built(out, result.exit_code, result.output, before)


# ---------------------------------------------------------------------------------------------------------------
# The demo cache
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.swift
def test_demo_cache_accounts_for_every_line(demo_cache: Built) -> None:
    assert demo_cache.exit_code == 1, demo_cache.output  # two planted rejects
    out = demo_cache.out
    assert {path.name for path in out.iterdir()} == {"train", "val", "rejects.jsonl", "manifest.json", "token_probe.json"}
    train, val, rejected = len(rows(out, "train")), len(rows(out, "val")), len(rejects(out))
    assert train > 0 and val > 0
    assert train + val + rejected == DEMO_LINES
    assert rejected == len(DEMO_REJECTS)
    counts = manifest(out)["counts"]
    assert counts == {"input_lines": DEMO_LINES, "train": train, "val": val, "rejected": rejected,
                      "identity_holds": True}
    assert sha256(DEMO) == demo_cache.input_sha256_before  # the input is never modified


@pytest.mark.swift
def test_demo_manifest_matches_its_schema_and_the_build(demo_cache: Built, embedded_processor: Any) -> None:
    from vlprep.counting.processor import processor_fingerprint

    built = manifest(demo_cache.out)
    jsonschema.validate(built, json.loads((SCHEMAS / "manifest.schema.json").read_text()))
    assert built["inputs"] == [{"path": str(DEMO), "role": "train", "size": DEMO.stat().st_size, "sha256": sha256(DEMO),
                                "lines": DEMO_LINES}]
    split = built["split"]
    assert (split["val_ratio"], split["seed"], split["val_files"], split["by"], split["groups_in_both"]) == (
        0.3, 42, [], "picture", 0)
    assert sum(split["groups"].values()) <= DEMO_LINES - 2 and split["groups"]["val"] > 0
    assert built["rejects_by_code"] == {"I004": 1, "M001": 1}
    assert built["processor"]["fingerprint"] == processor_fingerprint(embedded_processor)
    assert built["counting"]["image_max_tokens"] == CountSettings().image_max_tokens
    verified = built["verification"]["ms_swift_template"]
    assert (verified["mode"], verified["records_checked"], verified["mismatches"]) == ("all", DEMO_LINES - 2, 0)
    assert set(built["data_files"]) == {str(p.relative_to(demo_cache.out)) for p in demo_cache.out.rglob("*")
                                        if p.is_file() and p.name != "manifest.json"}
    assert runner.invoke(app, ["inspect", str(demo_cache.out)]).exit_code == 0


@pytest.mark.swift
def test_demo_rejects_carry_file_line_codes_and_text(demo_cache: Built) -> None:
    original = DEMO.read_text(encoding="utf-8").splitlines()
    found = rejects(demo_cache.out)
    assert {entry["line"]: entry["codes"] for entry in found} == DEMO_REJECTS
    for entry in found:
        assert entry["file"] == str(DEMO)
        assert entry["text"] == original[entry["line"] - 1]
        assert entry["message"]
        assert "length" not in entry  # not counted: it has errors


@pytest.mark.swift
def test_demo_rows_are_what_ms_swift_reads_with_vlprep_counts(demo_cache: Built, embedded_processor: Any) -> None:
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, CountSettings())
    accepted = set(range(1, DEMO_LINES + 1)) - set(DEMO_REJECTS)
    seen = []
    for split in ("train", "val"):
        dataset = datasets.load_from_disk(str(demo_cache.out / split))
        assert COLUMNS <= set(dataset.column_names)
        assert all(name.startswith("vlprep_") for name in set(dataset.column_names) - COLUMNS)
        for row in dataset:
            seen.append(row["vlprep_line"])
            assert row["vlprep_source"] == str(DEMO)
            infos = []
            for ref, size, mtime, digest in zip(row["images"], row["vlprep_image_size"], row["vlprep_image_mtime_ns"],
                                                row["vlprep_image_blake2b"]):
                if ref.startswith("data:"):
                    assert (size, mtime, digest) == (-1, -1, "")
                else:
                    path = Path(ref)
                    assert path.is_absolute() and path.is_file(), ref
                    assert (size, mtime) == (path.stat().st_size, path.stat().st_mtime_ns)
                    assert digest == hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()
                info = check_image(ref, FIXTURES, None, ImageLimits()).info
                assert info is not None
                infos.append(info)
            assert all(isinstance(turn["content"], str) for turn in row["messages"])  # typed parts flattened
            counted = counter.count({"messages": row["messages"], "images": row["images"]}, infos)
            assert row["lengths"] == counted.length
            assert row["vlprep_image_grid_thw"] == [list(grid) for grid in counted.grids]
            assert row["vlprep_image_tokens"] == counted.image_tokens
    assert sorted(seen) == sorted(accepted)
    stats = manifest(demo_cache.out)["lengths"]
    assert stats["train"]["records"] + stats["val"]["records"] == len(accepted)


@pytest.mark.swift
def test_cache_folder_is_what_datasets_itself_writes(demo_cache: Built, tmp_path: Path) -> None:
    """vlprep writes the `save_to_disk` layout with pyarrow alone; `datasets` re-saving the loaded split gives the same
    schema (with its feature metadata), dataset_info.json and state.json keys, and the rows read back unchanged."""
    for split in ("train", "val"):
        ours = demo_cache.out / split
        loaded = datasets.load_from_disk(str(ours))
        theirs = tmp_path / split
        loaded.save_to_disk(str(theirs))
        assert json.loads((ours / "dataset_info.json").read_text()) == json.loads(
            (theirs / "dataset_info.json").read_text())
        our_state, their_state = (json.loads((folder / "state.json").read_text()) for folder in (ours, theirs))
        assert {key: value for key, value in our_state.items() if key != "_fingerprint"} == {
            key: value for key, value in their_state.items() if key != "_fingerprint"}
        files = [entry["filename"] for entry in our_state["_data_files"]]
        schemas = [pa.ipc.open_stream(str(folder / name)).schema for folder, name in ((ours, files[0]),
                                                                                    (theirs, files[0]))]
        assert schemas[0].equals(schemas[1], check_metadata=True)
        assert datasets.load_from_disk(str(theirs)).to_list() == loaded.to_list()
        assert loaded.features == datasets.Features.from_dict(cache_features(embed_images=False))


@pytest.mark.swift
def test_a_split_larger_than_a_data_file_rolls_over_like_save_to_disk(demo_cache: Built, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "BATCH_ROWS", 2)
    monkeypatch.setattr(writer, "MAX_SHARD_BYTES", 1)  # every batch starts a new data file
    out = tmp_path / "rolled"
    result = cache(DEMO, "--out", out, "--val-ratio", "0.3", "--verify", "0", "--workers", "2")
    assert result.exit_code == 1, result.output
    files = json.loads((out / "train" / "state.json").read_text())["_data_files"]
    assert len(files) > 1 and files[-1]["filename"] == f"data-{len(files) - 1:05d}-of-{len(files):05d}.arrow"
    assert all_rows(out) == all_rows(demo_cache.out)


@pytest.mark.swift
def test_same_command_gives_the_same_rows_whatever_the_worker_count(demo_cache: Built, tmp_path: Path) -> None:
    out = tmp_path / "again"
    first = cache(DEMO, "--out", out, "--val-ratio", "0.3", "--verify", "0", "--workers", "1")
    assert first.exit_code == 1, first.output
    rows_first = all_rows(out)
    second = cache(DEMO, "--out", out, "--val-ratio", "0.3", "--verify", "0", "--workers", "1", "--force")
    assert second.exit_code == 1, second.output
    assert all_rows(out) == rows_first
    assert all_rows(demo_cache.out) == rows_first  # built with --workers 2
    assert rejects(out) == rejects(demo_cache.out)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------


def test_val_file_records_go_to_val(tmp_path: Path, embedded_processor: Any) -> None:
    folder = with_demo_images(tmp_path / "val-data")
    val_lines = DEMO.read_text(encoding="utf-8").splitlines()[:3]
    val_file = folder / "val.jsonl"
    val_file.write_text("\n".join(val_lines) + "\n", encoding="utf-8")
    out = tmp_path / "cache"
    result = cache(DEMO, "--val", val_file, "--out", out, "--verify", "0", "--workers", "1")
    assert result.exit_code == 1, result.output
    split = all_rows(out)
    assert [(row["vlprep_source"], row["vlprep_line"]) for row in split["val"]] == [(str(val_file), 1),
                                                                                     (str(val_file), 2),
                                                                                     (str(val_file), 3)]
    assert {row["vlprep_source"] for row in split["train"]} == {str(DEMO)}
    assert len(split["train"]) == DEMO_LINES - len(DEMO_REJECTS)
    for row in split["val"]:
        assert all(Path(ref).is_file() and Path(ref).is_relative_to(folder) for ref in row["images"])
    built = manifest(out)
    assert [entry["role"] for entry in built["inputs"]] == ["train", "val"]
    assert built["split"]["val_files"] == [str(val_file)]
    assert built["counts"]["input_lines"] == DEMO_LINES + 3

    both = cache(DEMO, "--val", val_file, "--val-ratio", "0.1", "--out", tmp_path / "both")
    assert both.exit_code == 2
    assert not (tmp_path / "both").exists()


@pytest.mark.swift
def test_max_length_moves_longer_records_to_rejects(demo_cache: Built, tmp_path: Path) -> None:
    lengths = {row["vlprep_line"]: row["lengths"] for split in all_rows(demo_cache.out).values() for row in split}
    limit = sorted(lengths.values())[len(lengths) // 2]
    too_long = {line for line, length in lengths.items() if length > limit}
    assert too_long and len(too_long) < len(lengths)
    out = tmp_path / "short"
    result = cache(DEMO, "--out", out, "--max-length", str(limit), "--verify", "0", "--workers", "1")
    assert result.exit_code == 1, result.output
    found = {entry["line"]: entry for entry in rejects(out)}
    assert set(found) == too_long | set(DEMO_REJECTS)
    for line in too_long:
        assert found[line]["codes"] == ["L001"]
        assert found[line]["length"] == lengths[line]
    kept = [row for split in all_rows(out).values() for row in split]
    assert sorted(row["vlprep_line"] for row in kept) == sorted(set(lengths) - too_long)
    assert all(row["lengths"] <= limit for row in kept)
    built = manifest(out)
    assert built["max_length"] == limit
    assert built["rejects_by_code"]["L001"] == len(too_long)


@pytest.mark.swift
def test_embed_images_stores_the_file_bytes(demo_cache: Built, tmp_path: Path) -> None:
    out = tmp_path / "embedded"
    result = cache(DEMO, "--out", out, "--embed-images", "--val-ratio", "0.3", "--verify", "0", "--workers", "1")
    assert result.exit_code == 1, result.output
    assert manifest(out)["images"]["embedded"] is True
    plain = all_rows(demo_cache.out)
    embedded = all_rows(out)
    images = 0
    for split in ("train", "val"):
        assert len(embedded[split]) == len(plain[split])
        for row, reference in zip(embedded[split], plain[split]):
            assert row["lengths"] == reference["lengths"]
            assert [image["path"] for image in row["images"]] == reference["images"]
            for image in row["images"]:
                images += 1
                assert set(image) == {"bytes", "path"}
                if image["path"].startswith("data:"):
                    assert image["bytes"] is None  # a data URI carries its bytes itself
                else:
                    assert image["bytes"] == Path(image["path"]).read_bytes()
    assert images > 0


# ---------------------------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------------------------


def test_refuses_a_folder_that_is_not_a_cache(tmp_path: Path, embedded_processor: Any) -> None:
    out = tmp_path / "precious"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me\n")
    (out / "sub" / "data.bin").write_bytes(b"\0\1\2")
    before, around = tree(out), sorted(p.name for p in tmp_path.iterdir())
    result = cache(DEMO, "--out", out, "--force")
    assert result.exit_code == 2
    assert "not a vlprep cache" in result.output
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around


@pytest.mark.swift
def test_refuses_an_existing_cache_without_force(demo_cache: Built) -> None:
    before = tree(demo_cache.out)
    result = cache(DEMO, "--out", demo_cache.out)
    assert result.exit_code == 2
    assert "--force" in result.output
    assert tree(demo_cache.out) == before


# ---------------------------------------------------------------------------------------------------------------
# Interruption
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.signals
def test_interrupted_build_leaves_no_cache_and_resumes_to_the_same_rows(tmp_path: Path, embedded_processor: Any
                                                                        ) -> None:
    folder = with_demo_images(tmp_path / "data")
    demo_lines = DEMO.read_text(encoding="utf-8").splitlines()
    big = folder / "big.jsonl"
    big.write_text("".join(demo_lines[i % len(demo_lines)] + "\n" for i in range(1200)), encoding="utf-8")
    out = tmp_path / "big-cache"
    partial = tmp_path / ".big-cache.vlprep-partial"
    # --val-ratio: the picture groups (every demo picture repeats) are decided after the last shard, from resumed state
    command = [str(big), "--out", str(out), "--workers", "1", "--verify", "0", "--shard-lines", "100", "-q",
               "--val-ratio", "0.3"]
    code, stderr = signal_build_after_shards(out, [str(big), *command[3:]], shards=2)
    assert code == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    hidden = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
    assert hidden <= {partial.name, ".big-cache.vlprep-lock"}  # no other half-built folder beside the target
    assert (partial / "state.pkl").is_file()  # kept for --resume
    done_before = json.loads((partial / "journal.jsonl").read_text().splitlines()[-1])
    assert done_before["shards"] >= 1 and 0 < done_before["position"][1] < 1200

    state_bytes = (partial / "state.pkl").read_bytes()  # a build left by another vlprep version is not mixed in
    state = pickle.loads(state_bytes)
    state.vlprep_version = "0.0.1"
    (partial / "state.pkl").write_bytes(pickle.dumps(state))
    refused = cache(*command, "--resume")
    assert refused.exit_code == 2 and "made by vlprep 0.0.1" in " ".join(refused.output.split()), refused.output
    (partial / "state.pkl").write_bytes(state_bytes)

    resumed = cache(*command, "--resume")
    assert resumed.exit_code == 1, resumed.output
    assert not partial.exists()
    whole = tmp_path / "uninterrupted"
    baseline = cache(big, "--out", whole, *command[3:])
    assert baseline.exit_code == 1, baseline.output
    assert all_rows(out) == all_rows(whole)
    assert rejects(out) == rejects(whole)
    resumed_counts, whole_counts = manifest(out)["counts"], manifest(whole)["counts"]
    assert resumed_counts == whole_counts
    assert resumed_counts["input_lines"] == 1200
    assert manifest(out)["split"] == manifest(whole)["split"] and manifest(out)["split"]["groups_in_both"] == 0


@pytest.mark.parametrize(("verify", "workers", "expected"), [("3", "1", 3), ("40", "2", DEMO_LINES - 2)])
@pytest.mark.swift
def test_verification_sample_is_n_or_every_accepted_record(tmp_path: Path, embedded_processor: Any, verify: str,
                                                           workers: str, expected: int) -> None:
    """The random part is drawn among all lines up front; drawn lines that are rejected are made up from the others.
    Every record shape the random part misses adds its cheapest record; all records cover every shape."""
    out = tmp_path / "cache"
    result = cache(DEMO, "--out", out, "--verify", verify, "--workers", workers)
    assert result.exit_code == 1, result.output  # the two planted rejects
    verified = manifest(out)["verification"]["ms_swift_template"]
    assert (verified["mode"], verified["random"], verified["mismatches"]) == ("sample", expected, 0)
    assert verified["records_checked"] == expected + verified["for_coverage"] <= DEMO_LINES - 2
    everything = cache(DEMO, "--out", tmp_path / "all", "--verify", "all", "--workers", workers)
    assert everything.exit_code == 1, everything.output
    assert set(verified["shapes"]) == set(manifest(tmp_path / "all")["verification"]["ms_swift_template"]["shapes"])


@pytest.mark.signals
@pytest.mark.swift
def test_interrupt_during_verification_is_resumable_as_the_message_says(tmp_path: Path, embedded_processor: Any
                                                                        ) -> None:
    import psutil

    out = tmp_path / "cache"
    command = [str(DEMO), "--out", str(out), "--workers", "1", "--verify", "all", "-q"]
    child = start_vlprep("cache", *command)
    try:
        deadline = time.monotonic() + 240
        state = out.parent / f".{out.name}.vlprep-partial" / "state.pkl"
        while child.poll() is None and time.monotonic() < deadline:  # the build has begun and ms-swift is encoding
            try:
                kids = psutil.Process(child.pid).children(recursive=True)
                if state.is_file() and any("vlprep.cache.swift_oracle" in " ".join(kid.cmdline()) for kid in kids):
                    break
            except psutil.Error:
                pass
            time.sleep(0.05)
        time.sleep(0.5)
        assert child.poll() is None, f"the build ended before it could be interrupted:\n{child.stderr.read()}"
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stderr
    assert not out.exists()
    assert "--resume" in stderr
    resumed = cache(*command, "--resume")
    assert resumed.exit_code == 1, resumed.output
    assert manifest(out)["counts"]["input_lines"] == DEMO_LINES


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------

TRAIN = textwrap.dedent("""
    import json, sys
    from swift import SftArguments, sft_main
    cache, model, output = sys.argv[1:4]
    result = sft_main(SftArguments(
        model=model, model_type="qwen3_vl", cached_dataset=[cache + "/train"], cached_val_dataset=[cache + "/val"],
        tuner_type="lora", torch_dtype="float32", attn_impl="sdpa", check_model=False, max_length=2048, strict=True,
        output_dir=output, max_steps=2, per_device_train_batch_size=2, per_device_eval_batch_size=2, eval_steps=2,
        save_steps=2, logging_steps=1, dataloader_num_workers=0, report_to=["none"], lora_rank=4, lora_alpha=8,
        target_modules=["all-linear"]))
    print("VLPREP-TEST-RESULT " + json.dumps({"log_history": result["log_history"],
                                              "last_model_checkpoint": result.get("last_model_checkpoint")}))
""")


@pytest.mark.train
@pytest.mark.swift
def test_cache_trains_with_ms_swift(demo_cache: Built, tiny_model_dir: Path, tmp_path: Path) -> None:
    counting = manifest(demo_cache.out)["counting"]
    env = {key: value for key, value in os.environ.items() if key not in ("MAX_PIXELS", "MIN_PIXELS")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="",
               IMAGE_MAX_TOKEN_NUM=str(counting["image_max_tokens"]),
               IMAGE_MIN_TOKEN_NUM=str(counting["image_min_tokens"]), MAX_RATIO=str(counting["max_ratio"]))
    output = tmp_path / "sft"
    done = subprocess.run([sys.executable, "-c", TRAIN, str(demo_cache.out), str(tiny_model_dir), str(output)],
                          env=env, capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("VLPREP-TEST-RESULT "))
    result = json.loads(line.removeprefix("VLPREP-TEST-RESULT "))
    losses = [entry["loss"] for entry in result["log_history"] if "loss" in entry]
    eval_losses = [entry["eval_loss"] for entry in result["log_history"] if "eval_loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), result["log_history"]
    assert eval_losses and all(math.isfinite(loss) for loss in eval_losses), result["log_history"]
    checkpoints = list(output.glob("v*/checkpoint-2"))
    assert len(checkpoints) == 1, list(output.rglob("*"))
    assert (checkpoints[0] / "adapter_model.safetensors").is_file()
    assert Path(result["last_model_checkpoint"]) == checkpoints[0]
