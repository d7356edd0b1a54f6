"""A mixture of caches (`vlprep stats a/ b/#N`, `vltrain fit --cached a/ --cached b/#N`): the rows drawn per source and
the packs are ms-swift's own (its get_cached_dataset, then its PackingDataset, on the same folders); bad sources are
clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from insight_data import varied_records, write_images, write_jsonl
from vlprep.cli.app import app
from vlprep.insight.mixture import plan_mixture

runner = CliRunner()
ROWS = 60


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> list[Path]:
    """One small cache and two copies of it (identical rows; different sources to ms-swift)."""
    root = tmp_path_factory.mktemp("mixture")
    data = write_jsonl(root / "data.jsonl", varied_records(ROWS, write_images(root / "images"), seed=3))
    result = runner.invoke(app, ["cache", "-q", str(data), "--out", str(root / "a"), "--verify", "0", "-j", "1"])
    assert result.exit_code == 0, result.output
    for name in ("b", "c"):
        shutil.copytree(root / "a", root / name)
    return [root / name for name in ("a", "b", "c")]


def swift_draw(paths: list[str], max_length: int, seed: int) -> list[Any]:
    """ms-swift's own loading and sampling of `--cached_dataset PATHS` (swift sft's get_cached_dataset)."""
    from swift.pipelines.utils import get_cached_dataset

    train, _ = get_cached_dataset(SimpleNamespace(data_seed=seed, cached_dataset=paths, cached_val_dataset=[],
                                                  max_length=max_length, truncation_strategy="delete",
                                                  dataset_shuffle=True))
    return train


def swift_packs(datasets: list[Any], packing_length: int) -> list[int]:
    from swift.dataset import DatasetLoader
    from swift.dataset.packing import PackingDataset

    template = SimpleNamespace(max_length=packing_length, packing=False, padding_free=False)
    packed = PackingDataset(template, DatasetLoader.concat_datasets(datasets), packing_length=packing_length,
                            packing_strategy="binpack", packing_num_proc=1)
    return packed.packed_length


def stats_json(*args: Any) -> dict[str, Any]:
    result = runner.invoke(app, ["stats", *map(str, args), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.mark.swift
@pytest.mark.parametrize("seed", [42, 7])
def test_mixture_stats_draw_and_pack_as_ms_swift_does(caches: list[Path], seed: int) -> None:
    a, b, c = caches
    lengths = json.loads((a / "manifest.json").read_text())["lengths"]["train"]
    max_length = lengths["p50"] if "p50" in lengths else 2000  # some rows dropped before sampling, as ms-swift does
    specs = [f"{a}", f"{b}#{ROWS * 2 + 7}", f"{c}#{ROWS // 3}"]  # all, repeated + remainder, a subsample
    doc = stats_json(*specs, "--max-length", max_length, "--packing-length", 4096, "--data-seed", seed)
    theirs = swift_draw([f"{a}/train", f"{b}/train#{ROWS * 2 + 7}", f"{c}/train#{ROWS // 3}"], max_length, seed)
    sources = doc["mixture"]["sources"]
    assert [item["rows_drawn"] for item in sources] == [len(part) for part in theirs]
    assert [item["tokens"] for item in sources] == [sum(part["lengths"]) for part in theirs]
    assert sources[0]["dropped_over_max_length"] > 0
    assert sources[1]["rows_repeated"] == len(theirs[1]) - len(set(theirs[1]["vlprep_line"]))
    assert doc["packing"]["pack_lengths"] == swift_packs(theirs, 4096)  # the same packs, in the same order
    assert doc["records"] == sum(len(part) for part in theirs)
    # row for row: the drawn indices are the rows ms-swift selected, in its order
    from datasets import load_from_disk

    lines = load_from_disk(str(a / "train"))["vlprep_line"]
    draws = plan_mixture(specs, max_length, seed)
    for drawn, part in zip(draws, theirs):
        assert [lines[int(index)] for index in drawn.indices] == part["vlprep_line"]


@pytest.mark.swift  # stats of a mixture plans packing with ms-swift's PackingDataset
def test_mixture_stats_text_shows_the_table(caches: list[Path]) -> None:
    a, b, _ = caches
    result = runner.invoke(app, ["stats", str(a), f"{b}#10"])
    assert result.exit_code == 0, result.output
    assert "mixture" in result.stdout and f"{b}#10" in result.stdout and "total" in result.stdout


@pytest.mark.parametrize(("spec", "message"), [
    ("{a}#x", "whole number of rows"), ("{a}#0", "size of 0"), ("{root}/nowhere", "no such folder"),
    ("{root}/images", "is not a cache"), ("{a}/", "same cache"),
])
def test_bad_sources_are_clear_errors(caches: list[Path], spec: str, message: str) -> None:
    a = caches[0]
    result = runner.invoke(app, ["stats", str(a), spec.format(a=a, root=a.parent)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_source_that_loses_every_row_to_max_length_is_named(caches: list[Path]) -> None:
    a, b, _ = caches
    result = runner.invoke(app, ["stats", str(a), f"{b}#5", "--max-length", "3"])
    assert result.exit_code == 2, result.output
    assert "over max_length 3" in result.output


# ---------------------------------------------------------------------------------------------------------------
# vltrain fit on a mixture of six caches (the tiny model, CPU)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_caches(tmp_path_factory: pytest.TempPathFactory, embedded_processor_path: Path) -> dict[str, Path]:
    """The demo corpus cached once (--verify 0: test_fit verifies the same records) and copied five times, plus the
    same corpus cached with other pixel limits."""
    from test_fit import VLPREP, copy_corpus, finish, start

    root = tmp_path_factory.mktemp("fit-mixture")
    corpus = copy_corpus(root / "data")
    common = ("--val-ratio", "0.3", "--workers", "1", "-q", "--verify", "0")
    builds = {"m0": start(VLPREP, "cache", corpus, "--out", root / "m0", *common, cwd=root),
              "small": start(VLPREP, "cache", corpus, "--out", root / "small", "--image-max-tokens", "256", *common,
                             cwd=root)}
    for name, started in builds.items():
        result = finish(started)
        assert result.returncode in (0, 1) and (root / name / "manifest.json").is_file(), result
    for index in range(1, 6):
        shutil.copytree(root / "m0", root / f"m{index}")
    return {name: root / name for name in ("m0", "m1", "m2", "m3", "m4", "m5", "small")}


SIX = ("m0", "m1#3", "m2#1", "m3#17", "m4", "m5#2")  # all, a subsample, one row, repeats + remainder, all, two


def six_args(caches: dict[str, Path]) -> list[str]:
    args = []
    for spec in SIX:
        name, _, size = spec.partition("#")
        args += ["--cached", f"{caches[name]}#{size}" if size else str(caches[name])]
    return args


@pytest.mark.swift
@pytest.mark.train
@pytest.mark.slow
def test_six_caches_train_and_the_summary_counts_what_ms_swift_drew(demo_caches: dict[str, Path],
                                                                    tiny_model_dir: Path) -> None:
    from test_fit import TRAIN, VLTRAIN, run

    out = demo_caches["m0"].parent / "six"
    result = run(VLTRAIN, "fit", *six_args(demo_caches), "--model", tiny_model_dir, "--output-dir", out, *TRAIN,
                 "--max-steps", "2", "--format", "json", cwd=out.parent)
    assert result.returncode == 0, result
    summary = result.json()
    assert summary["steps"] == 2 and summary["loss_finite"]
    paths = [f"{demo_caches[spec.partition('#')[0]]}/train" + (f"#{spec.partition('#')[2]}" if "#" in spec else "")
             for spec in SIX]
    lengths = json.loads((demo_caches["m0"] / "manifest.json").read_text())["lengths"]
    max_length = max(stats.get("max", 0) for stats in lengths.values())  # vltrain's default: the longest record
    theirs = swift_draw(paths, max_length, 42)
    assert [item["rows_drawn"] for item in summary["sources"]] == [len(part) for part in theirs]
    assert [item["tokens"] for item in summary["sources"]] == [sum(part["lengths"]) for part in theirs]
    assert summary["real_tokens_per_epoch"] == sum(sum(part["lengths"]) for part in theirs)
    assert summary["sources"][3]["rows_repeated"] > 0
    assert json.loads((out / "vltrain_summary.json").read_text())["sources"] == summary["sources"]
    assert len(json.loads((out / "vlprep_manifests.json").read_text())) == 6


@pytest.mark.train
def test_dry_run_prints_the_mixture_table_and_hands_ms_swift_the_sizes(demo_caches: dict[str, Path],
                                                                       tiny_model_dir: Path) -> None:
    from test_fit import VLTRAIN, run

    out = demo_caches["m0"].parent / "dry"
    result = run(VLTRAIN, "fit", *six_args(demo_caches), "--model", tiny_model_dir, "--output-dir", out, "--dry-run",
                 cwd=out.parent)
    assert result.returncode == 0, result
    assert "mixture (ms-swift's order and sampling, data_seed 42)" in result.stderr
    assert f"{demo_caches['m3']}#17" in result.stderr and "total" in result.stderr
    plan = json.loads(run(VLTRAIN, "fit", *six_args(demo_caches), "--model", tiny_model_dir, "--output-dir", out,
                          "--dry-run", "--format", "json", cwd=out.parent).stdout)
    assert plan["swift_args"]["cached_dataset"][3] == f"{demo_caches['m3']}/train#17"
    assert len(plan["swift_args"]["cached_val_dataset"]) == 6  # every cache's val split, whole
    assert [item["rows_drawn"] for item in plan["mixture"]][1:4] == [3, 1, 17]


@pytest.mark.train
def test_incompatible_caches_are_refused_naming_both(demo_caches: dict[str, Path], tiny_model_dir: Path) -> None:
    from test_fit import VLTRAIN, failed_checks, run

    out = demo_caches["m0"].parent / "refused"
    result = run(VLTRAIN, "fit", "--cached", demo_caches["m0"], "--cached", demo_caches["small"], "--model",
                 tiny_model_dir, "--output-dir", out, cwd=out.parent)
    assert result.returncode == 1, result
    line, fix = failed_checks(result.stderr)["mixture"]
    assert str(demo_caches["m0"]) in line and str(demo_caches["small"]) in line and "IMAGE_MAX_TOKEN_NUM" in line
    assert fix.startswith("fix: ") and not out.exists()


@pytest.mark.train
def test_the_same_cache_twice_is_a_usage_error(demo_caches: dict[str, Path], tiny_model_dir: Path) -> None:
    from test_fit import VLTRAIN, run

    out = demo_caches["m0"].parent / "twice"
    result = run(VLTRAIN, "fit", "--cached", demo_caches["m0"], "--cached", f"{demo_caches['m0']}/#5", "--model",
                 tiny_model_dir, "--output-dir", out, cwd=out.parent)
    assert result.returncode == 2 and "same cache" in result.stderr and "Traceback" not in result.stderr, result


def test_a_yaml_recipe_lists_the_caches_and_the_command_line_replaces_them(tmp_path: Path) -> None:
    from vltrain.config import load_config

    recipe = tmp_path / "mix.yaml"
    recipe.write_text("cached: [general/, domain/#300]\n")
    assert load_config(recipe, {}).cached == ["general/", "domain/#300"]
    assert load_config(recipe, {"cached": ["other/"]}).cached == ["other/"]
    recipe.write_text("cached: one/\n")
    assert load_config(recipe, {}).cached == ["one/"]
