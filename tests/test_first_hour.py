"""A new user's first hour (issue 17), through the commands a user types: the model needs weights, one set of option
names plus checked ms-swift pass-through arguments, images compared by content, no silent overwrite and no litter,
hints that name the fix, output formats that keep their word, help that tells the truth, a status line while loading.

Every command runs as a subprocess of the installed console scripts (as in test_fit.py); `vltrain fit` runs stop at the
checks or are dry runs, so nothing here trains.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import option_tables
import support
from support import FIXTURES, Run, failed_checks


def run(tool: str, *args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """COLUMNS=200: help and messages are not wrapped at the terminal's width."""
    return support.run(tool, *args, cwd=cwd, env={"COLUMNS": "200", **(env or {})}, timeout=900)


def in_parallel(*calls: tuple) -> list[Run]:
    """Runs that mostly wait on imports, two at a time (the machine has two cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda call: run(*call[:-1], **call[-1]), calls))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


def png(path: Path, width: int, height: int) -> Path:
    """A solid-colour RGB PNG of any size, written without Pillow (small on disk whatever its pixel count)."""
    row = b"\x00" + b"\x80\x40\x20" * width
    data = zlib.compress(row * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def record(text: str, images: list[str], tags: int | None = None) -> str:
    tag_count = len(images) if tags is None else tags
    return json.dumps({"messages": [{"role": "user", "content": "<image>" * tag_count + text},
                                    {"role": "assistant", "content": "An answer."}], "images": images}) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# The world: the demo corpus cached once, and a model made with `vltrain make-model`
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    data: Path  # demo.jsonl beside a private copy of the fixture images
    cache: Path
    model: Path  # made by `vltrain make-model`
    made_model: Run
    make_model_again: Run
    make_model_into_data: Run
    data_before: dict[str, tuple[int, int]]
    model_before: dict[str, tuple[int, int]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedded_processor_path: Path) -> World:
    root = tmp_path_factory.mktemp("first-hour")
    (root / "data").mkdir()
    shutil.copy2(FIXTURES / "demo.jsonl", root / "data" / "demo.jsonl")
    shutil.copytree(FIXTURES / "images", root / "data" / "images")
    data_before = snapshot(root / "data")
    built, made = in_parallel(
        ("vlprep", "cache", root / "data" / "demo.jsonl", "--out", root / "cache", "-j", "1", "--verify", "0", "-q",
         {"cwd": root}),
        ("vltrain", "make-model", root / "model", {"cwd": root}))
    assert built.returncode == 1 and (root / "cache" / "manifest.json").is_file(), built  # 2 planted bad records
    assert made.returncode == 0 and list((root / "model").glob("*.safetensors")), made
    model_before = snapshot(root / "model")
    again, into_data = in_parallel(("vltrain", "make-model", root / "model", {"cwd": root}),
                                   ("vltrain", "make-model", root / "data", {"cwd": root}))
    return World(root, root / "data" / "demo.jsonl", root / "cache", root / "model", made, again, into_data,
                 data_before, model_before)


def fit(world: World, *args: str | Path) -> tuple:
    return ("vltrain", "fit", "--cached", world.cache, *args, {"cwd": world.root})


# ---------------------------------------------------------------------------------------------------------------
# 1. the model has weights
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weightless_runs(world: World, embedded_processor_path: Path) -> dict[str, Run]:
    no_model, processor_only, hub_offline = in_parallel(
        fit(world, "--output-dir", world.root / "out-no-model", "--format", "json"),
        fit(world, "--model", embedded_processor_path, "--output-dir", world.root / "out-processor-only"),
        fit(world, "--model", "Qwen/Qwen3-VL-2B-Instruct", "--output-dir", world.root / "out-hub-offline"))
    return {"no-model": no_model, "processor-only": processor_only, "hub-offline": hub_offline}


@pytest.mark.parametrize("case", ["no-model", "processor-only"])
@pytest.mark.train
def test_fit_refuses_a_model_without_weights_before_loading_anything(world: World, weightless_runs: dict[str, Run],
                                                                     case: str) -> None:
    result = weightless_runs[case]
    assert result.returncode == 1, result
    assert set(failed_checks(result.stderr)) == {"weights"}, result
    line, fix = failed_checks(result.stderr)["weights"]
    assert "weights" in line and "vltrain make-model DIR" in fix and "hf download" in fix, result
    assert "leave out --model" not in result.output and "Traceback" not in result.output, result
    assert "nothing was trained" in result.stderr and "[INFO:swift]" not in result.stderr, result
    assert not (world.root / f"out-{case}").exists()


@pytest.mark.train
def test_a_hub_id_that_cannot_be_fetched_never_suggests_leaving_out_model(world: World,
                                                                         weightless_runs: dict[str, Run]) -> None:
    result = weightless_runs["hub-offline"]  # HF_HUB_OFFLINE=1 and nothing of that model in the Hub cache
    assert result.returncode == 1, result
    failed = failed_checks(result.stderr)
    assert set(failed) == {"weights", "processor"}, result
    assert "hf download Qwen/Qwen3-VL-2B-Instruct" in failed["processor"][0]
    assert "vltrain make-model" in failed["weights"][1]
    assert "leave out --model" not in result.output and "Traceback" not in result.output, result
    assert not (world.root / "out-hub-offline").exists()


@pytest.mark.train
def test_fit_format_json_prints_the_checks_when_one_fails(weightless_runs: dict[str, Run]) -> None:
    result = weightless_runs["no-model"]
    report = result.json()
    assert report["trained"] is False
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["weights"]["ok"] is False and "vltrain make-model" in by_name["weights"]["fix"]
    assert by_name["cache manifest"]["ok"] is True and by_name["processor"]["ok"] is True


# ---------------------------------------------------------------------------------------------------------------
# 2. one set of names; other ms-swift arguments checked by ms-swift's parser
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_runs(world: World) -> dict[str, Run]:
    cli_names = world.root / "cli-names.yaml"
    cli_names.write_text("epochs: 2\nbatch_size: 2\ngrad_accum: 4\nswift:\n  weight_decay: 0.1\n"
                         "  lr_scheduler_type: cosine\n")
    swift_names = world.root / "swift-names.yaml"
    swift_names.write_text("num_train_epochs: 3\nper_device_train_batch_size: 2\ngradient_accumulation_steps: 4\n")
    both = world.root / "both.yaml"
    both.write_text("epochs: 2\nnum_train_epochs: 3\n")
    typo = world.root / "typo.yaml"
    typo.write_text("epoch: 2\n")
    base = ("--model", world.model, "--dry-run", "--format", "json")
    cases = {
        "cli-names": fit(world, *base, "--config", cli_names, "--swift-arg", "loss_scale=default",
                         "--swift-arg", "weight_decay=0.05", "--grad-accum", "8"),
        "swift-names": fit(world, *base, "--config", swift_names, "--num-train-epochs", "5",
                           "--per-device-train-batch-size", "3", "--gradient-accumulation-steps", "1"),
        "both": fit(world, *base, "--config", both),
        "typo": fit(world, *base, "--config", typo),
        "unknown-swift": fit(world, *base, "--swift-arg", "weight_decy=0.1", "--output-dir", world.root / "o-u"),
        "controlled-swift": fit(world, *base, "--swift-arg", "max_length=99"),
        "bad-value": fit(world, *base, "--swift-arg", "weight_decay=heavy"),
    }
    return dict(zip(cases, in_parallel(*cases.values())))


@pytest.mark.train
def test_yaml_takes_the_cli_names_and_a_swift_mapping_the_command_line_wins(config_runs: dict[str, Run]) -> None:
    result = config_runs["cli-names"]
    assert result.returncode == 0, result
    plan = result.json()
    args = plan["swift_args"]
    assert (args["num_train_epochs"], args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) \
        == (2, 2, 8), args  # --grad-accum 8 wins over the file's 4
    # typed by ms-swift's parser; --swift-arg wins over the file's swift: mapping
    assert (args["weight_decay"], args["lr_scheduler_type"], args["loss_scale"]) == (0.05, "cosine", "default")
    assert plan["extra_swift_args"] == ["loss_scale", "lr_scheduler_type", "weight_decay"]
    assert "--weight_decay" in plan["command"]


@pytest.mark.train
def test_yaml_and_cli_take_ms_swift_names_too(config_runs: dict[str, Run]) -> None:
    result = config_runs["swift-names"]
    assert result.returncode == 0, result
    args = result.json()["swift_args"]
    assert (args["num_train_epochs"], args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) \
        == (5, 3, 1), args


@pytest.mark.parametrize(("case", "words"), [
    ("both", ["epochs", "num_train_epochs", "same setting"]),
    ("typo", ["epoch", "did you mean epochs"]),
    ("unknown-swift", ["weight_decy", "did you mean weight_decay"]),
    ("controlled-swift", ["max_length", "use --max-length"]),
    ("bad-value", ["weight_decay", "invalid float value", "heavy"]),
])
@pytest.mark.train
def test_bad_names_and_values_are_usage_errors_before_anything_loads(world: World, config_runs: dict[str, Run],
                                                                     case: str, words: list[str]) -> None:
    result = config_runs[case]
    assert result.returncode == 2, result
    for word in words:
        assert word in result.stderr, result
    assert "Checks before loading the model" not in result.stderr and "Traceback" not in result.output, result
    assert not (world.root / "o-u").exists()


@pytest.mark.parametrize("tuner", ["lora", "full"])
def test_every_argument_vltrain_sets_is_refused_as_a_pass_through(tmp_path: Path, embedded_processor_path: Path,
                                                                  tuner: str) -> None:
    """A pass-through argument can never silently replace one vltrain sets (the swift_args table covers them all)."""
    from vltrain.config import FitConfig
    from vltrain.guards import Preflight
    from vltrain.training.launch import swift_arguments
    from vltrain.swift_args import CONTROLLED

    config = FitConfig(cached=[str(tmp_path)], tuner=tuner, deepspeed="zero2", save_total_limit=2)
    args = swift_arguments(config, Preflight(max_length=128))
    conditional = {"eval_strategy"}  # only set to "no" when the cache has no val split; a user's value may replace it
    assert set(args) - conditional <= set(CONTROLLED), set(args) - conditional - set(CONTROLLED)


def test_yaml_off_means_none_for_verify_images(tmp_path: Path) -> None:
    from vltrain.config import load_config

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("verify_images: off\n")  # YAML 1.1 reads a bare off as false
    assert load_config(recipe, {"cached": "c"}).verify_images == "none"


# ---------------------------------------------------------------------------------------------------------------
# 3. images compared by content; inspect and fit agree; --verify-images none
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_runs(world: World) -> dict[str, Run]:
    root = world.root / "images"
    root.mkdir()
    shutil.copy2(world.data, root / "demo.jsonl")
    shutil.copytree(world.data.parent / "images", root / "images")
    cache = root / "cache"
    built = run("vlprep", "cache", root / "demo.jsonl", "--out", cache, "-j", "1", "--verify", "0", "-q", cwd=root)
    assert built.returncode == 1, built
    touched, edited = root / "images" / "chart.png", root / "images" / "gray.png"
    os.utime(touched, ns=(time.time_ns(), time.time_ns() + 10**9))  # `touch`: same bytes, new mtime
    base = ("vltrain", "fit", "--cached", cache, "--model", world.model, "--dry-run")
    touched_only = in_parallel((*base, {"cwd": root}), ("vlprep", "inspect", cache, {"cwd": root}))
    edited.write_bytes(edited.read_bytes() + b"\0")  # different content
    after_edit = in_parallel((*base, "--verify-images", "all", {"cwd": root}),
                             ("vlprep", "inspect", cache, "--verify-images", "all", {"cwd": root}),
                             (*base, "--verify-images", "none", {"cwd": root}),
                             (*base, "--verify-images", "off", {"cwd": root}))
    names = ("fit-touched", "inspect-touched", "fit-edited", "inspect-edited", "fit-none", "fit-off")
    return dict(zip(names, [*touched_only, *after_edit]))


@pytest.mark.train
def test_a_touched_but_unchanged_image_passes_fit_and_inspect_alike(image_runs: dict[str, Run]) -> None:
    fit_run, inspect_run = image_runs["fit-touched"], image_runs["inspect-touched"]
    assert fit_run.returncode == 0 and failed_checks(fit_run.stderr) == {}, fit_run
    assert inspect_run.returncode == 0, inspect_run
    for result in (fit_run, inspect_run):
        assert "1 touched but unchanged" in result.output and "chart.png" in result.output, result


@pytest.mark.train
def test_a_changed_image_is_refused_by_fit_and_inspect_alike(image_runs: dict[str, Run]) -> None:
    fit_run, inspect_run = image_runs["fit-edited"], image_runs["inspect-edited"]
    assert fit_run.returncode == 1, fit_run
    line, fix = failed_checks(fit_run.stderr)["images"]
    assert "1 changed since caching (content differs)" in line and "gray.png" in line
    assert "--verify-images none" in fix and "--verify-images all" not in fix
    assert inspect_run.returncode == 1, inspect_run
    assert "1 changed since caching (content differs)" in inspect_run.stdout and "gray.png" in inspect_run.stdout
    assert "--verify-images none" in inspect_run.stdout


@pytest.mark.parametrize("case", ["fit-none", "fit-off"])
@pytest.mark.train
def test_verify_images_none_or_off_skips_the_image_check(image_runs: dict[str, Run], case: str) -> None:
    result = image_runs[case]
    assert result.returncode == 0 and failed_checks(result.stderr) == {}, result
    assert "not checked (--verify-images none)" in result.stderr


def test_image_digests_cost_little(tmp_path: Path) -> None:
    """BLAKE2b of every fixture image, as `vlprep cache` records it: measured, and bounded far below a decode."""
    from vlprep.cache.image_staleness import file_digest

    images = sorted((FIXTURES / "images").iterdir())
    started = time.perf_counter()
    digests = {path.name: file_digest(str(path)) for path in images}
    elapsed = time.perf_counter() - started
    total = sum(path.stat().st_size for path in images)
    print(f"blake2b of {len(images)} fixture images ({total:,} bytes): {elapsed * 1000:.2f} ms")
    assert len(set(digests.values())) == len(images) and elapsed < 1.0


# ---------------------------------------------------------------------------------------------------------------
# 4. no silent overwrite, no litter
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.train
def test_fit_refuses_a_non_empty_output_dir_without_resume_or_force(world: World) -> None:
    used = world.root / "used-output"
    (used / "checkpoint-2").mkdir(parents=True)
    (used / "checkpoint-2" / "trainer_state.json").write_text("{}")
    before = snapshot(used)
    refused, forced = in_parallel(fit(world, "--model", world.model, "--output-dir", used),
                                  fit(world, "--model", world.model, "--output-dir", used, "--force", "--dry-run"))
    assert refused.returncode == 2, refused
    assert "not empty" in refused.stderr and "--resume" in refused.stderr and "--force" in refused.stderr
    assert "Checks before loading the model" not in refused.stderr
    assert snapshot(used) == before
    assert forced.returncode == 0, forced  # --force lets the run (here a dry run) go on


@pytest.mark.train
def test_make_model_refuses_a_non_empty_folder(world: World) -> None:
    for result in (world.make_model_again, world.make_model_into_data):
        assert result.returncode == 2, result
        assert "not empty" in result.stderr and "--force" in result.stderr and "nothing was written" in result.stderr
    assert snapshot(world.data.parent) == world.data_before
    assert snapshot(world.model) == world.model_before


@pytest.mark.train
def test_cache_leaves_no_lock_file_on_any_exit_path(world: World, tmp_path: Path) -> None:
    shutil.copy2(world.data, tmp_path / "demo.jsonl")
    shutil.copytree(world.data.parent / "images", tmp_path / "images")
    quick = ("-j", "1", "--verify", "0", "-q")
    data = tmp_path / "demo.jsonl"
    outcomes = {
        "success": run("vlprep", "cache", data, "--out", tmp_path / "a", *quick, cwd=tmp_path),
        "failure": run("vlprep", "cache", data, "--out", tmp_path / "b", "--model", tmp_path / "no-such-model",
                       *quick, cwd=tmp_path),
        "refusal": run("vlprep", "cache", data, "--out", tmp_path / "a", *quick, cwd=tmp_path),
        "resume-failure": run("vlprep", "cache", data, "--out", tmp_path / "c", "--resume", *quick, cwd=tmp_path),
    }
    assert [result.returncode for result in outcomes.values()] == [1, 2, 2, 2], outcomes
    assert "no interrupted build" in outcomes["resume-failure"].stderr
    assert list(tmp_path.glob(".*.vlprep-lock")) == []
    assert list(tmp_path.glob(".*.vlprep-partial")) == []


# ---------------------------------------------------------------------------------------------------------------
# 6. hints that name the fix; the end-of-cache summary
# ---------------------------------------------------------------------------------------------------------------


def l001_message(result: Run, line: int) -> str | None:
    found = [d["message"] for d in result.json()["diagnostics"] if d["code"] == "L001" and d["line"] == line]
    return found[0] if found else None


@pytest.mark.train
def test_l001_names_the_image_max_tokens_that_makes_the_record_fit(world: World) -> None:
    lint = ("vlprep", "lint", world.data, "--select", "L001", "--format", "json", "-q", "-j", "1")
    first = run(*lint, "--max-length", "200", cwd=world.root)
    message = l001_message(first, 4)  # demo line 4: one large photo, 1,106 tokens
    assert message and "would make it fit" in message, first
    limit = int(message.split("--image-max-tokens ")[1].split()[0])
    at_limit, above = in_parallel((*lint, "--max-length", "200", "--image-max-tokens", str(limit), {"cwd": world.root}),
                                  (*lint, "--max-length", "200", "--image-max-tokens", str(limit + 1),
                                   {"cwd": world.root}))
    assert l001_message(at_limit, 4) is None, at_limit  # the largest value that fits ...
    assert l001_message(above, 4) is not None, above  # ... exactly: one more does not
    tight = run(*lint, "--max-length", "30", cwd=world.root)
    assert "no --image-max-tokens makes it fit" in l001_message(tight, 4)
    assert "it has no images: its text alone is" in l001_message(tight, 5)


@pytest.mark.train
def test_i005_names_max_image_pixels(world: World) -> None:
    result = run("vlprep", "lint", world.data, "--select", "I005", "--max-image-pixels", "1000", "--format", "json",
                 "-q", "-j", "1", cwd=world.root)
    messages = [d["message"] for d in result.json()["diagnostics"]]
    assert messages and all("--max-image-pixels" in message for message in messages), result


@pytest.fixture(scope="module")
def summary_runs(tmp_path_factory: pytest.TempPathFactory, embedded_processor_path: Path) -> tuple[Path, Run, Run]:
    root = tmp_path_factory.mktemp("summary")
    png(root / "huge.png", 4096, 4096)  # 16,384 image tokens under ms-swift's default limit
    png(root / "plain.png", 64, 64)
    lines = [record("Describe.", ["plain.png"]), record("Describe.", ["plain.png"]),  # line 2: D001
             record("Big.", ["huge.png"]), record("Two images, one tag.", ["plain.png", "plain.png"], tags=1)]
    data = root / "data.jsonl"
    data.write_text("".join(lines))
    text, as_json = in_parallel(
        ("vlprep", "cache", data, "--out", root / "text", "-j", "1", "--verify", "0", "--fast", {"cwd": root}),
        ("vlprep", "cache", data, "--out", root / "json", "-j", "1", "--verify", "0", "--fast", "--format", "json",
         {"cwd": root}))
    return data, text, as_json


def test_cache_summarizes_records_cached_with_warnings_and_very_long_ones(summary_runs: tuple[Path, Run, Run]) -> None:
    data, text, as_json = summary_runs
    assert text.returncode == 0, text
    # huge.png is plain.png's colour at another size: the same picture (D002), as the near-duplicate check says
    assert ("cached with warnings: D001 duplicate-record 1, D002 near-duplicate-image 1, M002 fewer-tags-than-images 1"
            in text.stdout), text
    manifest = as_json.json()
    assert manifest["cached_with_warnings"] == {"D001": 1, "D002": 1, "M002": 1}
    long = manifest["long_records"]
    assert (long["over"], long["count"], long["longest"]["line"]) == (8192, 1, 3)
    assert long["longest"]["length"] > 16384  # the photo's 16,384 image tokens and the text
    assert (f"long records: 1 over 8,192 tokens; the longest is {long['longest']['length']:,} tokens at {data}:3"
            in text.stdout), text


# ---------------------------------------------------------------------------------------------------------------
# 7. output contracts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.train
def test_commands_accept_only_the_formats_they_implement(world: World) -> None:
    results = in_parallel(("vlprep", "rules", "--format", "github", {"cwd": world.root}),
                          ("vlprep", "inspect", world.cache, "--format", "github", {"cwd": world.root}),
                          ("vlprep", "cache", world.data, "--out", world.root / "gh", "--format", "github",
                           {"cwd": world.root}),
                          ("vltrain", "fit", "--cached", world.cache, "--format", "github", {"cwd": world.root}))
    for result in results:
        assert result.returncode == 2 and "'github' is not one of" in result.stderr, result
    assert not (world.root / "gh").exists()


def test_j001_column_in_json_and_github_and_the_text_report_says_how_to_see_all(tmp_path: Path) -> None:
    data = tmp_path / "broken.jsonl"
    data.write_text("".join('{"messages": [' + " " * index + "oops\n" for index in range(8)))
    lint = ("vlprep", "lint", data, "-q", "-j", "1")
    as_json, github, text, everything = in_parallel((*lint, "--format", "json", {"cwd": tmp_path}),
                                                    (*lint, "--format", "github", {"cwd": tmp_path}),
                                                    (*lint, {"cwd": tmp_path}),
                                                    (*lint, "--show-all", {"cwd": tmp_path}))
    columns = [d["column"] for d in as_json.json()["diagnostics"]]
    assert columns == [15 + index for index in range(8)], as_json
    assert "line=1,col=15,title=J001" in github.stdout, github
    assert "… and 3 more J001 (all of them: --show-all, or --format json)" in text.stdout, text
    assert all(f"broken.jsonl:{line}: J001" in everything.stdout for line in range(1, 9)), everything


# ---------------------------------------------------------------------------------------------------------------
# 9. help that tells the truth
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.train
def test_flags_take_no_value_and_say_so(world: World) -> None:
    result = run("vlprep", "lint", world.data, "--fast", "true", cwd=world.root)
    assert result.returncode == 2, result
    assert "take no value" in result.stderr and "--fast" in result.stderr and "no such file" not in result.stderr


@pytest.mark.train
def test_version_and_defaults_in_help(world: World) -> None:
    from vlprep import __version__ as vlprep_version
    from vltrain import __version__ as vltrain_version

    versions = in_parallel(("vlprep", "--version", {"cwd": world.root}), ("vltrain", "--version", {"cwd": world.root}))
    assert [result.stdout.strip() for result in versions] == [f"vlprep {vlprep_version}", f"vltrain {vltrain_version}"]
    cache_help, fit_help = in_parallel(("vlprep", "cache", "--help", {"cwd": world.root}),
                                       ("vltrain", "fit", "--help", {"cwd": world.root}))
    assert "[default: 16384]" in cache_help.stdout and "<bool>" not in cache_help.stdout.split("--help")[0]
    for shown in ("[default: 0.0001]", "[default: 1.0]", "[default: lora]", "[default: sample]", "[default: 500]"):
        assert shown in fit_help.stdout, shown
    ratio = next(line for line in fit_help.stdout.splitlines() if "--max-ratio" in line)
    assert "<int>" in ratio


def test_cli_reference_option_tables_are_the_clis_own() -> None:
    """docs/cli.md holds every command of both apps, each with the options its --help prints."""
    written = option_tables.CLI_DOC.read_text()
    assert option_tables.render() == written, "docs/cli.md drifted: python tests/option_tables.py --write"


# ---------------------------------------------------------------------------------------------------------------
# 10. a status line until the progress bar starts
# ---------------------------------------------------------------------------------------------------------------


def test_cache_says_what_it_loads_before_the_progress_bar(summary_runs: tuple[Path, Run, Run]) -> None:
    _, text, as_json = summary_runs
    stages = [line for line in text.stderr.splitlines() if line.startswith("vlprep: ")]
    assert stages[0].startswith("vlprep: finding the processor") and any("tokenizer" in line for line in stages), text
    assert text.stderr.index("vlprep: reading the inputs") < text.stderr.index("cache ")  # before the bar
    assert "vlprep: " not in as_json.stderr  # a JSON run piped elsewhere stays quiet on stderr


@pytest.mark.train
def test_quiet_cache_prints_no_status(world: World, tmp_path: Path) -> None:
    result = run("vlprep", "cache", world.data, "--out", tmp_path / "q", "-j", "1", "--verify", "0", "-q",
                 cwd=world.root)
    assert result.returncode == 1 and "vlprep: " not in result.stderr, result
