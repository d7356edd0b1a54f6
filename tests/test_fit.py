"""`vltrain fit` end to end: real ms-swift training of a tiny random-weight Qwen3-VL on CPU from a real `vlprep cache`,
and the checks that must refuse a run before any model is loaded.

Every `vltrain` and `vlprep` run is a subprocess of the installed console scripts: ms-swift applies the pixel limits
once per process, so training in the test process would poison later runs. The tiny model is the session's
(conftest.py); the caches are built once per module, concurrently; the runs that stop at the checks (refusals, dry runs)
go two at a time, since most of their time is spent importing torch and transformers.
"""

from __future__ import annotations

import json
import math
import os
import runpy
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support import BIN, FIXTURES, Run, child_env, failed_checks, finish, marker_module, run, start
from vlprep.counting.settings import VideoSettings
pytestmark = pytest.mark.train  # every test uses the tiny model (`world`); most train it
VLTRAIN = str(BIN / "vltrain")
VLPREP = str(BIN / "vlprep")
TRAIN = ("--batch-size", "2", "--save-steps", "2", "--eval-steps", "2", "--learning-rate", "1e-2")  # lr: a clear change
TEXT_IDS = [151644, 872, 198, 9707, 11, 1879, 0, 151645, 198, 151644, 77091, 198]  # a fixed text-only input


def safetensors_in(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors: dict = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(path)))
    return tensors


def assert_refused(result: Run, check: str, output_dir: Path, *mentions: str, exit_code: int = 1) -> None:
    """Exit 1 (2 for a refused model folder, as in vlprep) with `check` failing and a fix printed, before ms-swift or
    the model was touched.

    No wall-clock bound: a refusal and a 2-step tiny training differ by seconds, and shared machines stretch both
    several-fold. What proves the stop is structural: `fit` creates the output folder right after the checks pass and
    before ms-swift is imported, and ms-swift logs `[INFO:swift]` lines from its first step on.
    """
    assert result.returncode == exit_code, result
    failed = failed_checks(result.stderr)
    assert check in failed, result
    line, fix = failed[check]
    assert fix.startswith("fix: ") and len(fix) > len("fix: ") + 10, result
    for mention in mentions:
        assert mention in line + " " + fix, result
    assert "nothing was trained" in result.stderr, result
    assert "[INFO:swift]" not in result.stderr, result  # ms-swift never started
    assert not output_dir.exists(), f"{output_dir} was created: the run went past the checks"


# ---------------------------------------------------------------------------------------------------------------
# What the tests train on: a tiny random-weight model and real caches of the bundled demo corpus
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    model: Path  # tiny random-weight Qwen3-VL (weights + the embedded processor)
    cache: Path  # demo corpus, the embedded processor, default pixel limits, --val-ratio 0.3
    other_cache: Path  # the same corpus cached with another processor (one merge fewer: other ids)
    other_processor: Path
    images_cache: Path  # cached from a private copy of the fixtures, whose images a test may delete
    images_copy: Path

    def manifest(self, cache: Path | None = None) -> dict:
        return json.loads(((cache or self.cache) / "manifest.json").read_text())


def edit_merges(folder: Path, change: Callable[[list[list[str]]], list[list[str]]]) -> None:
    """Change a processor folder's BPE merges, in tokenizer.json and merges.txt alike."""
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["model"]["merges"] = change(tokenizer["model"]["merges"])
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("".join(f"{left} {right}\n" for left, right in tokenizer["model"]["merges"]),
                                       encoding="utf-8")


def copy_corpus(target: Path) -> Path:
    """demo.jsonl and the images it names (relative paths), copied with their mtimes."""
    target.mkdir(parents=True)
    shutil.copy2(FIXTURES / "demo.jsonl", target / "demo.jsonl")
    shutil.copytree(FIXTURES / "images", target / "images")
    return target / "demo.jsonl"


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          embedded_processor_path: Path) -> World:
    """The caches are built by three concurrent `vlprep cache` processes (the embedded processor they share is built
    first, by `embedded_processor_path`); the session's tiny model (conftest.py) is built meanwhile in this process."""
    root = tmp_path_factory.mktemp("fit")
    other_processor = root / "other-processor"  # tokenizes " image" differently: one merge fewer
    shutil.copytree(embedded_processor_path, other_processor)
    edit_merges(other_processor, lambda merges: [merge for merge in merges if "".join(merge) != "Ġimage"])
    corpus = copy_corpus(root / "data")
    images_corpus = copy_corpus(root / "data-images")
    common = ("--val-ratio", "0.3", "--workers", "1", "-q")
    side = (*common, "--verify", "0")  # the main cache's ms-swift verification covers the same records
    builds = {
        "cache": start(VLPREP, "cache", corpus, "--out", root / "cache", *common, cwd=root),
        "other_cache": start(VLPREP, "cache", corpus, "--out", root / "other-cache", "--model", other_processor,
                             *side, cwd=root),
        "images_cache": start(VLPREP, "cache", images_corpus, "--out", root / "images-cache", *side, cwd=root),
    }
    model: Path = request.getfixturevalue("tiny_model_dir")
    for name, started in builds.items():
        result = finish(started)
        assert result.returncode in (0, 1), result  # 1: the demo corpus plants two bad records
        assert (root / name.replace("_", "-") / "manifest.json").is_file(), result
    return World(root, model, root / "cache", root / "other-cache", other_processor, root / "images-cache",
                 images_corpus.parent)


def fit(world: World, *args: str | Path, env: dict[str, str] | None = None) -> Run:
    return run(VLTRAIN, "fit", *args, cwd=world.root, env=env)


# ---------------------------------------------------------------------------------------------------------------
# Training runs (real ms-swift on CPU, a few steps)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_run(world: World) -> tuple[Run, Path]:
    out = world.root / "lora"
    return fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, *TRAIN,
               "--max-steps", "2", "--format", "json"), out


def test_lora_run_trains_saves_and_records_what_it_trained_from(world: World, lora_run: tuple[Run, Path]) -> None:
    result, out = lora_run
    assert result.returncode == 0, result
    summary = json.loads((out / "vltrain_summary.json").read_text())
    assert isinstance(summary["train_loss"], float) and math.isfinite(summary["train_loss"]), summary
    assert summary["loss_finite"] is True
    assert (summary["steps"], summary["attn_impl"], summary["packing"]) == (2, "sdpa", False), summary
    assert Path(summary["last_checkpoint"]).name == "checkpoint-2"
    checkpoint = out / "checkpoint-2"
    assert (checkpoint / "adapter_config.json").is_file() and (checkpoint / "adapter_model.safetensors").is_file()
    assert not (checkpoint / "model.safetensors").exists()  # LoRA saves the adapter only
    assert (out / "vlprep_manifest.json").read_bytes() == (world.cache / "manifest.json").read_bytes()
    recorded = yaml.safe_load((out / "vltrain_config.yaml").read_text())
    assert (recorded["cached"], recorded["model"], recorded["tuner"]) == ([str(world.cache)], str(world.model), "lora")
    assert (recorded["max_steps"], recorded["learning_rate"], recorded["output_dir"]) == (2, 0.01, str(out))


def test_lora_adapter_loads_onto_the_base_model_and_changes_its_output(world: World,
                                                                      lora_run: tuple[Run, Path]) -> None:
    import torch
    from peft import PeftModel
    from transformers import Qwen3VLForConditionalGeneration

    result, out = lora_run
    assert result.returncode == 0, result
    model = Qwen3VLForConditionalGeneration.from_pretrained(str(world.model), dtype=torch.float32).eval()
    input_ids = torch.tensor([TEXT_IDS])
    with torch.no_grad():
        base = model(input_ids=input_ids).logits
        tuned_model = PeftModel.from_pretrained(model, str(out / "checkpoint-2")).eval()
        tuned = tuned_model(input_ids=input_ids).logits
    lora_b = [param for name, param in tuned_model.named_parameters() if "lora_B" in name]
    assert lora_b and all(param.abs().max() > 0 for param in lora_b)  # B starts at zero: nonzero means trained
    assert torch.isfinite(tuned).all()
    assert (tuned - base).abs().max().item() > 1e-3


def test_json_summary_on_stdout_is_parseable(lora_run: tuple[Run, Path]) -> None:
    result, out = lora_run
    assert result.returncode == 0, result
    assert result.json() == json.loads((out / "vltrain_summary.json").read_text())


# ---------------------------------------------------------------------------------------------------------------
# What a person watching sees: a quiet console, the full log in train.log, a measured summary, curves.png
# ---------------------------------------------------------------------------------------------------------------

DEMO_FIT = ("--max-steps", "4", "--batch-size", "2", "--learning-rate", "1e-3", "--save-steps", "4", "--eval-steps",
            "4", "--logging-steps", "1")  # scripts/demo.sh step 4
MS_SWIFT_SAYS = ("[INFO:swift]", "with trust_remote_code=True. This will execute")  # ms-swift's own lines
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train_lengths(cache: Path) -> list[int]:
    """Each train row's token count (the cache's `lengths` column, verified against ms-swift when it was built)."""
    import pyarrow as pa

    with pa.memory_map(str(cache / "train" / "data-00000-of-00001.arrow")) as source:
        return pa.ipc.open_stream(source).read_all().column("lengths").to_pylist()


def with_unreadable_images(cache: Path, target: Path) -> Path:
    """A copy of `cache` whose train rows all name a file that is not an image, its manifest checksums updated (the
    rows as a disk fault or a hand edit would leave them); only --verify-images none lets it reach ms-swift."""
    import hashlib

    import pyarrow as pa

    shutil.copytree(cache, target)
    garbage = target.parent / f"{target.name}-not-an-image.jpg"
    garbage.write_bytes(b"not an image")
    arrow = target / "train" / "data-00000-of-00001.arrow"
    with pa.BufferReader(arrow.read_bytes()) as source:
        table = pa.ipc.open_stream(source).read_all()
    images = [[str(garbage) for _ in row] for row in table.column("images").to_pylist()]
    column = table.schema.get_field_index("images")
    table = table.set_column(column, "images", pa.array(images, type=table.schema.field("images").type))
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["data_files"]["train/data-00000-of-00001.arrow"] = hashlib.sha256(arrow.read_bytes()).hexdigest()
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return target


def assert_valid_png(path: Path) -> None:
    from PIL import Image

    assert path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 10_000, path
    with Image.open(path) as image:
        image.verify()


def test_json_run_keeps_stdout_clean_and_ms_swifts_output_in_train_log(lora_run: tuple[Run, Path]) -> None:
    result, out = lora_run
    assert result.returncode == 0, result
    assert result.stdout.lstrip().startswith("{") and result.json()["steps"] == 2  # nothing but the JSON
    assert not any(said in result.stderr for said in MS_SWIFT_SAYS), result
    assert "\x1b" not in result.stderr + result.stdout  # not a terminal: plain lines, no control codes
    assert "step 2/2" in result.stderr and "eval at step 2" in result.stderr, result
    log = (out / "train.log").read_text()
    assert all(said in log for said in MS_SWIFT_SAYS) and len(log.splitlines()) > 200


def test_summary_measures_the_batches_the_trainer_formed(world: World, lora_run: tuple[Run, Path]) -> None:
    """Tokens counted by vltrain's forward hook match the trainer's own count; the real ones are the lengths of 4
    distinct cached rows (2 steps × batch 2); padding, memory, losses and the wall-time split are measured values."""
    from itertools import combinations

    result, out = lora_run
    assert result.returncode == 0, result
    summary = json.loads((out / "vltrain_summary.json").read_text())
    assert summary["measured_tokens"] == summary["tokens_seen"] > 0, summary  # transformers' count: padding included
    real = summary["measured_real_tokens"]
    assert real in {sum(rows) for rows in combinations(train_lengths(world.cache), 4)}, summary
    assert summary["padding_fraction"] == round(1 - real / summary["measured_tokens"], 4)
    assert summary["peak_memory_kind"] in ("gpu", "cpu_rss") and summary["peak_memory_bytes"] > 100 * 2**20
    assert all(math.isfinite(summary[key]) for key in ("train_loss_first", "train_loss_last", "eval_loss_last"))
    wall = summary["wall_s"]
    assert wall["load"] > 0 and wall["train"] > 0 and wall["eval"] > 0 and wall["save"] > 0, wall
    assert wall["load"] + wall["train"] + wall["eval"] + wall["save"] == pytest.approx(wall["total"], abs=0.1)
    # wall times are rounded to 0.01 s and a tiny run trains for a fraction of a second: the rate lies within that
    low, high = (summary["measured_tokens"] / (wall["train"] + slack) for slack in (0.005, -0.005))
    assert low - 0.1 <= summary["measured_tokens_per_s"] <= high + 0.1, summary


def test_curves_png_is_written(lora_run: tuple[Run, Path]) -> None:
    result, out = lora_run
    assert result.returncode == 0, result
    assert_valid_png(out / "curves.png")


def test_demo_fit_step_prints_under_60_lines_with_the_full_log_in_train_log(world: World) -> None:
    out = world.root / "demo-fit"
    result = fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, *DEMO_FIT)
    assert result.returncode == 0, result
    console = result.stdout + result.stderr
    assert len(console.splitlines()) < 60, result
    assert not any(said in console for said in MS_SWIFT_SAYS) and "\x1b" not in console, result
    assert console.count("nothing from it will run") == 1  # said once, in the checks
    for shown in ("Training", "trainable parameters", "step 4/4", "eval at step 4", "vltrain summary", "padding",
                  "peak memory", f"log: {out / 'train.log'}"):
        assert shown in console, (shown, result)
    log = (out / "train.log").read_text()
    assert all(said in log for said in MS_SWIFT_SAYS) and "model_parameter_info" in log and "Train:" in log
    assert_valid_png(out / "curves.png")


def test_verbose_shows_ms_swifts_output_live_and_keeps_train_log(world: World) -> None:
    out = world.root / "verbose"
    result = fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, "--batch-size", "2",
                 "--max-steps", "1", "--verbose")
    assert result.returncode == 0, result
    assert all(said in result.stderr for said in MS_SWIFT_SAYS) and len(result.stderr.splitlines()) > 200, result
    log = (out / "train.log").read_text()
    assert log.count("[INFO:swift]") == result.stderr.count("[INFO:swift]") > 0
    assert "vltrain summary" in result.stdout


def test_a_failing_ms_swift_run_shows_its_cause_and_the_log_path(world: World) -> None:
    broken = with_unreadable_images(world.cache, world.root / "unreadable-images-cache")
    out = world.root / "fails"
    result = fit(world, "--cached", broken, "--model", world.model, "--output-dir", out, "--batch-size", "2",
                 "--max-steps", "2", "--verify-images", "none")
    assert result.returncode == 1, result
    assert "error: training failed: UnidentifiedImageError: cannot identify image file" in result.stderr, result
    assert f"full log: {out / 'train.log'}" in result.stderr, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert "Traceback" in (out / "train.log").read_text() and not (out / "vltrain_summary.json").exists()


def run_on_a_terminal(command: list[str], cwd: Path, timeout: float = 600) -> tuple[int, str]:
    """Run `command` with stdout and stderr on one pseudo-terminal (120 columns), as in a shell; (exit code, output)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 120, 0, 0))
    process = subprocess.Popen(command, cwd=cwd, env=child_env({"TERM": "xterm-256color", "COLUMNS": "120"}),
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        try:
            chunk = os.read(leader, 65536) if ready else b""
        except OSError:  # the terminal closed: the command and its children are done
            break
        if ready and not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_one_live_display_replaces_ms_swifts_output(world: World) -> None:
    out = world.root / "on-a-terminal"
    code, shown = run_on_a_terminal([VLTRAIN, "fit", "--cached", str(world.cache), "--model", str(world.model),
                                     "--output-dir", str(out), *DEMO_FIT], cwd=world.root)
    assert code == 0, shown[-3000:]
    assert "\x1b[" in shown and "━" in shown, shown[-3000:]  # rich's live progress bar, redrawn in place
    assert "step 4/4" in shown and "elapsed, ETA" in shown and "vltrain summary" in shown, shown[-3000:]
    assert "step 1/4 epoch" not in shown  # the plain lines are for pipes and CI only
    assert not any(said in shown for said in MS_SWIFT_SAYS), shown[-3000:]
    assert "[INFO:swift]" in (out / "train.log").read_text()


def test_full_fine_tune_with_frozen_vision_tower_changes_only_the_language_model(world: World) -> None:
    out = world.root / "full"
    result = fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, "--tuner", "full",
                 "--freeze-vit", *TRAIN, "--max-steps", "2")
    assert result.returncode == 0, result
    summary = json.loads((out / "vltrain_summary.json").read_text())
    assert summary["loss_finite"] is True and math.isfinite(summary["train_loss"]), summary
    assert summary["steps"] == 2
    checkpoint = out / "checkpoint-2"
    assert list(checkpoint.glob("*.safetensors")) and not (checkpoint / "adapter_config.json").exists()
    base, tuned = safetensors_in(world.model), safetensors_in(checkpoint)
    assert set(tuned) == set(base)
    vision = [name for name in base if name.startswith("model.visual.")]
    language = [name for name in base if name.startswith("model.language_model.")]
    assert vision and language
    # --freeze-vit freezes model.visual.*; the merger (aligner) inside it stays frozen too by default (--freeze-aligner)
    changed_vision = [name for name in vision if not base[name].equal(tuned[name])]
    assert changed_vision == []
    changed_language = [name for name in language if not base[name].equal(tuned[name])]
    assert len(changed_language) > len(language) // 2, changed_language


@pytest.fixture(scope="module")
def resumed_run(world: World, lora_run: tuple[Run, Path]) -> tuple[Run, Path, dict[str, int]]:
    """The LoRA run's output folder (copied, mtimes kept), continued from checkpoint-2 to step 4."""
    first, first_out = lora_run
    assert first.returncode == 0, first
    out = world.root / "lora-resumed"
    shutil.copytree(first_out, out, symlinks=True)
    before = {path.name: path.stat().st_mtime_ns for path in (out / "checkpoint-2").iterdir()}
    result = fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, *TRAIN,
                 "--max-steps", "4", "--resume")
    return result, out, before


def test_resume_continues_from_the_last_checkpoint(resumed_run: tuple[Run, Path, dict[str, int]]) -> None:
    result, out, before = resumed_run
    assert result.returncode == 0, result
    assert (out / "checkpoint-4" / "adapter_model.safetensors").is_file()
    summary = json.loads((out / "vltrain_summary.json").read_text())
    assert summary["steps"] == 4 and Path(summary["last_checkpoint"]).name == "checkpoint-4"
    assert json.loads((out / "args.json").read_text())["resume_from_checkpoint"] == str(out / "checkpoint-2")
    # a run started over would have trained steps 1-2 again and rewritten checkpoint-2
    assert {path.name: path.stat().st_mtime_ns for path in (out / "checkpoint-2").iterdir()} == before
    steps_logged = [json.loads(line).get("global_step/max_steps") for line in (out / "logging.jsonl").open()]
    assert "1/4" not in steps_logged and "2/4" not in steps_logged and "4/4" in steps_logged
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_resumed_summary_reports_this_runs_loss(lora_run: tuple[Run, Path],
                                                resumed_run: tuple[Run, Path, dict[str, int]]) -> None:
    result, out, _ = resumed_run
    assert result.returncode == 0, result
    earlier = json.loads((lora_run[1] / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    earlier_losses = {entry["loss"] for entry in earlier if "loss" in entry}
    summary = json.loads((out / "vltrain_summary.json").read_text())
    assert math.isfinite(summary["train_loss"]) and summary["train_loss"] not in earlier_losses


# ---------------------------------------------------------------------------------------------------------------
# Runs that stop at the checks (refusals and dry runs), two at a time
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class GuardRuns:
    runs: dict[str, Run]
    output_dirs: dict[str, Path]
    evil_marker: Path  # written if the code shipped in the model folder is ever imported
    sneaky_marker: Path  # written if the code a tokenizer auto_map points at is ever imported

    def __getitem__(self, name: str) -> tuple[Run, Path]:
        return self.runs[name], self.output_dirs[name]


def tampered_copy(cache: Path, target: Path) -> Path:
    shutil.copytree(cache, target)
    arrow = target / "train" / "data-00000-of-00001.arrow"
    data = bytearray(arrow.read_bytes())
    data[len(data) // 2] ^= 0x01
    arrow.write_bytes(bytes(data))
    return target


def evil_model(world: World, target: Path, marker: Path) -> Path:
    """A model folder (processor + config, no weights) shipping code that writes `marker` when imported."""
    shutil.copytree(world.model, target, ignore=shutil.ignore_patterns("*.safetensors"))
    marker_module(target, "modeling_evil", marker, "\n\nclass EvilModel:\n    pass\n")
    config = json.loads((target / "config.json").read_text())
    config["auto_map"] = {key: "modeling_evil.EvilModel" for key in ("AutoConfig", "AutoModel", "AutoProcessor",
                                                                      "AutoModelForImageTextToText")}
    (target / "config.json").write_text(json.dumps(config, indent=2))
    runpy.run_path(str(target / "modeling_evil.py"))  # the marker works: running the module writes its name
    assert marker.read_text() == "<run_path>"
    marker.unlink()
    return target


def sneaky_model(world: World, target: Path, code_dir: Path, marker: Path) -> Path:
    """A model folder with no Python file whose tokenizer_config.json maps AutoTokenizer to code in another folder
    (transformers' `<repo or folder>--module.Class` form); ms-swift loads tokenizers with trust_remote_code=True."""
    code_dir.mkdir()
    marker_module(code_dir, "evil_tok", marker,
                  "from transformers import Qwen2Tokenizer\n\n\nclass EvilTok(Qwen2Tokenizer):\n    pass\n")
    shutil.copytree(world.model, target, ignore=shutil.ignore_patterns("*.safetensors"))
    tokenizer_config = json.loads((target / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": [f"{code_dir}--evil_tok.EvilTok", None]}
    (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    return target


@pytest.fixture(scope="module")
def guard_runs(world: World, embedded_processor_path: Path) -> GuardRuns:
    root = world.root / "guards"
    root.mkdir()
    marker = root / "evil-code-ran"
    tampered = tampered_copy(world.cache, root / "tampered-cache")
    equivalent = root / "equivalent-model"  # other files, same tokens: a merge listed twice, a template comment
    shutil.copytree(world.model, equivalent)
    edit_merges(equivalent, lambda merges: merges + merges[-1:])
    with open(equivalent / "chat_template.jinja", "a") as template:
        template.write("{# ms-swift renders its own template: this changes no token #}")
    evil = evil_model(world, root / "evil-model", marker)
    sneaky_marker = root / "sneaky-code-ran"
    sneaky = sneaky_model(world, root / "sneaky-model", root / "elsewhere", sneaky_marker)
    deleted = world.images_copy / "images" / "chart.png"
    deleted.unlink()
    recipe = root / "recipe.yaml"
    recipe.write_text("tuner: lora\nlora_rank: 4\nmax_steps: 7\nlearning_rate: 3.0e-4\nseed: 7\n")
    unknown = root / "unknown.yaml"
    unknown.write_text("tuner: lora\nlora_rnak: 4\n")
    string_lr = root / "string-lr.yaml"
    string_lr.write_text("learning_rate: 1e-3\n")  # YAML 1.1 (PyYAML) reads 1e-3 without a dot as a string
    base = ("--model", world.model, "--max-steps", "2")
    cases: dict[str, tuple[tuple[str | Path, ...], dict[str, str] | None]] = {
        "pixels-option": (("--cached", world.cache, *base, "--image-max-tokens", "256"), None),
        "pixels-env": (("--cached", world.cache, *base), {"IMAGE_MAX_TOKEN_NUM": "256"}),
        "processor": (("--cached", world.other_cache, *base), None),
        "processor-equivalent": (("--cached", world.cache, "--model", equivalent, "--dry-run", "--format", "json"),
                                 None),
        "processor-overridden": (("--cached", world.other_cache, *base, "--allow-processor-mismatch", "--dry-run",
                                  "--format", "json"), None),
        "packing": (("--cached", world.cache, *base, "--packing"), None),
        "bfloat16": (("--cached", world.cache, *base, "--torch-dtype", "bfloat16"), None),
        "tampered": (("--cached", tampered, *base), None),
        "missing-image": (("--cached", world.images_cache, *base), None),
        "remote-code": (("--cached", world.cache, "--model", evil, "--max-steps", "2"), None),
        # --dry-run: if the check misses the code, nothing loads it here (a real run would execute it)
        "remote-code-elsewhere": (("--cached", world.cache, "--model", sneaky, "--dry-run"), None),
        "dry-run": (("--cached", world.cache, "--model", world.model, "--batch-size", "4", "--dry-run",
                     "--format", "json"), None),
        "yaml": (("--cached", world.cache, "--model", world.model, "--config", recipe, "--lora-rank", "16",
                  "--dry-run", "--format", "json"), None),
        "yaml-unknown-key": (("--cached", world.cache, "--model", world.model, "--config", unknown, "--dry-run"), None),
        "yaml-string-lr": (("--cached", world.cache, "--model", world.model, "--config", string_lr, "--dry-run",
                            "--format", "json"), None),
    }
    output_dirs = {name: root / f"out-{name}" for name in cases}

    def one(name: str) -> Run:
        args, env = cases[name]
        return fit(world, *args, "--output-dir", output_dirs[name], env=env)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(cases, pool.map(one, cases)))
    return GuardRuns(runs, output_dirs, marker, sneaky_marker)


@pytest.mark.parametrize(("case", "mention"), [("pixels-option", "--image-max-tokens=256"),
                                               ("pixels-env", "$IMAGE_MAX_TOKEN_NUM=256")], ids=["option", "env"])
def test_refuses_other_pixel_limits_than_the_cache(world: World, guard_runs: GuardRuns, case: str,
                                                   mention: str) -> None:
    result, out = guard_runs[case]
    cached = world.manifest()["counting"]["image_max_tokens"]
    assert_refused(result, "pixel limits", out, mention, f"IMAGE_MAX_TOKEN_NUM={cached}")
    assert set(failed_checks(result.stderr)) == {"pixel limits"}


def test_refuses_a_cache_built_with_another_processor(world: World, guard_runs: GuardRuns) -> None:
    ours, theirs = world.manifest()["processor"], world.manifest(world.other_cache)["processor"]
    assert ours["fingerprint"] != theirs["fingerprint"] and theirs["model"] == str(world.other_processor)
    result, out = guard_runs["processor"]
    assert_refused(result, "processor", out, "--allow-processor-mismatch", theirs["fingerprint"][:12],
                   "encodes probe text 1 differently")
    assert set(failed_checks(result.stderr)) == {"processor"}


def test_a_processor_with_other_files_but_the_same_tokens_is_accepted_naming_both(world: World,
                                                                                   guard_runs: GuardRuns) -> None:
    """A merge list that differs without changing any token, and a chat template ms-swift never renders: the
    fingerprints differ, the probe's ids do not, so training goes ahead with a note naming both fingerprints."""
    from vlprep.counting.processor_memo import processor_facts

    result, out = guard_runs["processor-equivalent"]
    assert result.returncode == 0, result
    assert failed_checks(result.stderr) == {}
    cached = world.manifest()["processor"]["fingerprint"]
    model = processor_facts(out.parent / "equivalent-model").fingerprint
    assert model != cached
    note = " ".join(result.stderr.split())
    assert f"ok processor: the model's processor ({model[:12]}) differs from the one the cache was built with " \
           f"({cached[:12]}" in note, result
    assert "gives the cache's ids on all" in note and "the cache's ids and lengths hold" in note, result


def test_allow_processor_mismatch_overrides_the_check_loudly(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["processor-overridden"]
    assert result.returncode == 0, result
    assert "OVERRIDDEN processor:" in result.stderr and "WARNING: training despite a failed check" in result.stderr
    assert failed_checks(result.stderr) == {}
    assert result.json()["swift_args"]["model_type"] == "qwen3_vl"
    assert not out.exists()


def test_refuses_packing_without_flash_attention(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["packing"]
    assert_refused(result, "attention", out, "flash", "--no-packing")


def test_refuses_bfloat16_on_cpu(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["bfloat16"]
    assert_refused(result, "dtype", out, "bfloat16", "--torch-dtype float32")


def test_refuses_a_modified_arrow_file(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["tampered"]
    assert_refused(result, "cache manifest", out, "modified", "train/data-00000-of-00001.arrow")


def test_refuses_a_cache_whose_image_file_is_gone(world: World, guard_runs: GuardRuns) -> None:
    result, out = guard_runs["missing-image"]
    assert_refused(result, "images", out, "1 missing", str(world.images_copy / "images" / "chart.png"))
    assert set(failed_checks(result.stderr)) == {"images"}


def test_refuses_a_model_folder_that_ships_code_and_never_runs_it(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["remote-code"]
    assert_refused(result, "remote code", out, "modeling_evil.py", "--trust-remote-code", exit_code=2)
    assert not guard_runs.evil_marker.exists(), "the model folder's Python code was executed"


def test_refuses_a_tokenizer_auto_map_pointing_at_code_elsewhere(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["remote-code-elsewhere"]
    assert not guard_runs.sneaky_marker.exists(), "the mapped code was executed by the checks"
    assert_refused(result, "remote code", out, "--trust-remote-code", exit_code=2)


@pytest.mark.swift
def test_dry_run_loads_no_weights_and_plans_from_the_manifest(world: World, guard_runs: GuardRuns) -> None:
    """A dry run checks that the model has weights (by file name) but loads none; test_first_hour.py shows a
    weightless model refused."""
    result, out = guard_runs["dry-run"]
    assert result.returncode == 0, result
    assert failed_checks(result.stderr) == {} and "[INFO:swift]" not in result.stderr
    assert not out.exists()
    plan, manifest = result.json(), world.manifest()
    args, counting = plan["swift_args"], manifest["counting"]
    assert args["model"] == str(world.model) and args["model_type"] == "qwen3_vl" and args["strict"] is True
    assert args["cached_dataset"] == [str(world.cache / "train")]
    assert args["cached_val_dataset"] == [str(world.cache / "val")]
    longest = max(stats["max"] for stats in manifest["lengths"].values() if stats["records"])
    assert args["max_length"] == (manifest["max_length"] or longest)
    assert plan["environment"] == {"IMAGE_MAX_TOKEN_NUM": str(counting["image_max_tokens"]),
                                   "IMAGE_MIN_TOKEN_NUM": str(counting["image_min_tokens"]),
                                   "MAX_RATIO": str(counting["max_ratio"]), **VideoSettings().environment()}
    assert plan["steps_per_epoch"] == math.ceil(manifest["lengths"]["train"]["records"] / 4) == 3
    assert (plan["packing"], plan["attn_impl"]) == (False, "sdpa")
    assert plan["command"][:2] == ["swift", "sft"] and "--cached_dataset" in plan["command"]


def test_yaml_config_is_read_and_command_line_options_win(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["yaml"]
    assert result.returncode == 0, result
    args = result.json()["swift_args"]
    assert (args["tuner_type"], args["max_steps"], args["learning_rate"], args["seed"]) == ("lora", 7, 3e-4, 7)
    assert args["lora_rank"] == 16  # the file says 4; --lora-rank 16 wins
    assert not out.exists()


def test_yaml_config_with_an_unknown_key_is_a_usage_error(guard_runs: GuardRuns) -> None:
    result, out = guard_runs["yaml-unknown-key"]
    assert result.returncode == 2, result
    assert "lora_rnak" in result.stderr and "Checks before loading the model" not in result.stderr
    assert not out.exists()


def test_yaml_numbers_without_a_dot_are_numbers_or_refused(guard_runs: GuardRuns) -> None:
    result, _ = guard_runs["yaml-string-lr"]
    assert result.returncode == 2 or result.json()["swift_args"]["learning_rate"] == 1e-3, result


# ---------------------------------------------------------------------------------------------------------------
# Several processes (torchrun, gloo on CPU), and the ms-swift command line vltrain prints
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_process_runs(world: World) -> tuple[Run, Run, Path, dict[str, int]]:
    """2 steps on 2 CPU processes, then --resume to step 4 on 2 processes."""
    out = world.root / "two-processes"
    first = fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, *TRAIN,
                "--max-steps", "2", "--nproc-per-node", "2", "--format", "json")
    before = {path.name: path.stat().st_mtime_ns for path in (out / "checkpoint-2").iterdir()} if (
        out / "checkpoint-2").is_dir() else {}
    resumed = fit(world, "--cached", world.cache, "--model", world.model, "--output-dir", out, *TRAIN,
                  "--max-steps", "4", "--nproc-per-node", "2", "--resume", "--format", "json")
    return first, resumed, out, before


def logged(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "logging.jsonl").open()]


def test_two_processes_train_save_and_summarize_as_one_does(world: World, two_process_runs: tuple) -> None:
    from itertools import combinations

    first, _, out, before = two_process_runs
    assert first.returncode == 0, first
    swift_args = json.loads((out / "args.json").read_text())
    assert (swift_args["global_world_size"], swift_args["ddp_backend"]) == (2, "gloo"), first
    summary = first.json()
    assert before and (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert summary["steps"] == 2 and summary["loss_finite"] is True and Path(summary["last_checkpoint"]).name == (
        "checkpoint-2")
    first_run = [entry for entry in logged(out) if entry.get("global_step/max_steps", "").endswith("/2")]
    seen_logged = max(entry.get("num_input_tokens_seen", 0) for entry in first_run)
    assert summary["tokens_seen"] == seen_logged > 0  # the trainer's own count, as it logged it
    # vltrain counts every rank's batches (2 steps x batch 2 on each of 2 processes: 8 distinct rows); the trainer's
    # tokens_seen, gathered through accelerate, holds only rank 0's under gloo on CPU
    real = summary["measured_real_tokens"]
    assert real in {sum(rows) for rows in combinations(train_lengths(world.cache), 8)}, summary
    assert summary["measured_tokens"] >= max(real, summary["tokens_seen"])
    assert "step 2/2" in first.stderr and not any(said in first.stderr for said in MS_SWIFT_SAYS), first
    assert (out / "train.log").read_text().count("[INFO:swift]") > 0  # both ranks' output
    assert_valid_png(out / "curves.png")
    # each process reads half the train split in batches of 2: one epoch is ceil(ceil(rows / 2) / 2) steps (one
    # process would need ceil(rows / 2))
    epoch = max(entry.get("epoch", 0) for entry in first_run)
    rows = world.manifest()["counts"]["train"]
    assert epoch == pytest.approx(2 / math.ceil(math.ceil(rows / 2) / 2), abs=0.01)


def test_two_process_run_resumes_from_its_checkpoint(two_process_runs: tuple) -> None:
    _, resumed, out, before = two_process_runs
    assert resumed.returncode == 0, resumed
    summary = json.loads((out / "vltrain_summary.json").read_text())
    assert resumed.json() == summary
    assert summary["steps"] == 4 and Path(summary["last_checkpoint"]).name == "checkpoint-4"
    assert json.loads((out / "args.json").read_text())["resume_from_checkpoint"] == str(out / "checkpoint-2")
    assert {path.name: path.stat().st_mtime_ns for path in (out / "checkpoint-2").iterdir()} == before
    steps_logged = [entry.get("global_step/max_steps") for entry in logged(out)]
    assert "1/4" not in steps_logged and "2/4" not in steps_logged and "4/4" in steps_logged


PARSE_WITH_MS_SWIFT = """
import json, sys
from transformers import HfArgumentParser
from swift import SftArguments
parser = HfArgumentParser([SftArguments])
answers = []
for argv in json.load(open(sys.argv[1])):
    try:
        namespace, rest = parser.parse_known_args(argv)
        answers.append({"parsed": {key: value for key, value in vars(namespace).items()}, "rest": rest})
    except SystemExit:
        answers.append({"error": "refused"})
print(json.dumps(answers, default=str))
"""


@pytest.mark.swift
def test_every_argument_vltrain_passes_is_what_ms_swifts_own_parser_reads(world: World, tmp_path: Path) -> None:
    """The `swift sft` command line of --dry-run, with every option vltrain can set (both tuners, several processes,
    resume, deepspeed, a cache without val), parsed by ms-swift's own parser: nothing refused or left over, and each
    argument read back as the value vltrain meant."""
    resume_dir = tmp_path / "out-resume"
    (resume_dir / "checkpoint-3").mkdir(parents=True)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("save_total_limit: 2\ndataloader_num_workers: 1\nper_device_eval_batch_size: 3\n")
    no_val = tmp_path / "no-val-cache"
    built = run(VLPREP, "cache", FIXTURES / "clean_messages.jsonl", "--out", no_val, "--verify", "0", "-q",
                cwd=FIXTURES)
    assert built.returncode == 0, built
    every_lora_option = ("--tuner", "lora", "--lora-rank", "4", "--lora-alpha", "8", "--lora-dropout", "0.1",
                         "--target-modules", "q_proj", "--target-modules", "v_proj", "--train-vit", "--train-aligner",
                         "--freeze-llm", "--learning-rate", "1e-3", "--epochs", "2", "--max-steps", "3",
                         "--batch-size", "2", "--grad-accum", "2", "--warmup-ratio", "0.1",
                         "--no-gradient-checkpointing", "--torch-dtype", "float32", "--max-length", "4096",
                         "--no-packing", "--attn-impl", "eager", "--save-steps", "3", "--eval-steps", "3",
                         "--logging-steps", "1", "--seed", "3", "--report-to", "none", "--nproc-per-node", "2",
                         "--nnodes", "1", "--node-rank", "0", "--master-addr", "127.0.0.1", "--master-port", "29555",
                         "--deepspeed", "zero2", "--resume", "--output-dir", resume_dir)
    plans = [
        fit(world, "--cached", world.cache, "--model", world.model, *every_lora_option, "--dry-run", "--format", "json"),
        fit(world, "--cached", no_val, "--model", world.model, "--tuner", "full", "--freeze-vit", "--config", recipe,
            "--deepspeed", "zero3", "--output-dir", tmp_path / "out-full", "--dry-run", "--format", "json"),
    ]
    for plan in plans:
        assert plan.returncode == 0, plan
    commands = [plan.json()["command"] for plan in plans]
    assert all(command[:2] == ["swift", "sft"] for command in commands)
    argv_file = tmp_path / "argv.json"
    argv_file.write_text(json.dumps([command[2:] for command in commands]))
    parsed = subprocess.run([sys.executable, "-c", PARSE_WITH_MS_SWIFT, str(argv_file)], capture_output=True,
                            text=True, env=child_env(), timeout=300)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    for plan, answer in zip(plans, json.loads(parsed.stdout.splitlines()[-1])):
        args = plan.json()["swift_args"]
        assert "error" not in answer and answer["rest"] == [], (answer, args)
        for key, value in args.items():
            read = answer["parsed"][key]
            expected = [str(item) for item in value] if isinstance(value, list) else value
            read = [str(item) for item in read] if isinstance(read, list) else read
            assert read == expected or str(read) == str(expected), (key, read, value)
    lora, full = (plan.json()["swift_args"] for plan in plans)
    assert lora["ddp_backend"] == "gloo" and lora["resume_from_checkpoint"] == str(resume_dir / "checkpoint-3")
    assert lora["include_num_input_tokens_seen"] is True and full["eval_strategy"] == "no"
    assert (full["save_total_limit"], full["deepspeed"], full["tuner_type"]) == (2, "zero3", "full")
