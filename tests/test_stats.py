"""`vlprep stats`: the packing plan is ms-swift's own (its PackingDataset built on the cached split agrees pack for
pack), the what-if pixel limits match hand-computed grids, and the plot is a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from insight_data import IMAGE_SIZES, varied_records, write_images, write_jsonl
from support import runner, stats_json
from vlprep.cli.app import app

RECORDS = 1500  # over ms-swift's 1,000-row packing batch: the carried-over open bin is exercised


def invoke(*args: Any) -> Any:
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def varied_cache(tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> Path:
    root = tmp_path_factory.mktemp("stats")
    data = write_jsonl(root / "data.jsonl", varied_records(RECORDS, write_images(root / "images")))
    runner_result = runner.invoke(app, ["cache", "-q", str(data), "--out", str(root / "cache"), "--verify", "0",
                                        "-j", "1"])
    assert runner_result.exit_code == 0, runner_result.output
    return root / "cache"


def swift_packs(cache_dir: Path, max_length: int, packing_length: int, strategy: str, num_proc: int
                ) -> list[list[int]]:
    """ms-swift's own path: load_from_disk, `_select_dataset` (truncation_strategy delete), PackingDataset."""
    from datasets import load_from_disk
    from swift.dataset.packing import PackingDataset
    from swift.pipelines.utils import _select_dataset

    dataset = _select_dataset(SimpleNamespace(max_length=max_length, truncation_strategy="delete"),
                              load_from_disk(str(cache_dir / "train")))
    template = SimpleNamespace(max_length=max_length, packing=False, padding_free=False)
    packed = PackingDataset(template, dataset, packing_length=packing_length, packing_strategy=strategy,
                            packing_num_proc=num_proc)
    return [packed.packed_length, packed.packed_idx]


@pytest.mark.parametrize("strategy", ["binpack", "sequential"])
@pytest.mark.parametrize("packing_length,num_proc", [(4096, 1), (8192, 2)])
@pytest.mark.swift
def test_packing_plan_is_ms_swifts_packing_dataset(varied_cache: Path, strategy: str, packing_length: int,
                                                   num_proc: int) -> None:
    max_length = 4000  # under the longest rows: some are dropped before packing, as ms-swift drops them
    lengths = json.loads((varied_cache / "manifest.json").read_text())["lengths"]["train"]
    assert lengths["records"] == RECORDS and lengths["max"] > max_length
    doc = stats_json(varied_cache, "--max-length", max_length, "--packing-length", packing_length,
                     "--packing-strategy", strategy, "--packing-num-proc", num_proc)
    plan = doc["packing"]
    theirs_lengths, theirs_idx = swift_packs(varied_cache, max_length, packing_length, strategy, num_proc)
    assert plan["num_packs"] == len(theirs_idx)
    assert sorted(plan["pack_lengths"]) == sorted(theirs_lengths)
    assert plan["pack_lengths"] == theirs_lengths  # same order too
    assert plan["dropped_over_max_length"] > 0 and plan["rows"] == sum(len(pack) for pack in theirs_idx)
    assert plan["fill"] == pytest.approx(sum(theirs_lengths) / (len(theirs_lengths) * packing_length), abs=1e-6)
    assert {"packing_length", "strategy", "num_packs", "fill", "steps_per_epoch"} <= plan.keys()


@pytest.mark.swift
def test_steps_per_epoch_follow_the_trainers_arithmetic(varied_cache: Path) -> None:
    doc = stats_json(varied_cache, "--batch-size", 3, "--grad-accum", 4, "--gpus", 2, "--epochs", 2)
    plan = doc["packing"]
    packs = plan["num_packs"]
    batches = math.ceil(math.ceil(packs / 2) / 3)
    assert plan["steps_per_epoch"] == math.ceil(batches / 4) and plan["total_steps"] == 2 * plan["steps_per_epoch"]
    assert plan["packing_length"] == 8192  # the cache has no max_length: the default
    assert doc["records"] == RECORDS and doc["tokens"] == sum(plan["pack_lengths"])


def hand_tokens(width: int, height: int, max_tokens: int, min_tokens: int = 4) -> int:
    """smart_resize by hand: round each side to a multiple of 32, then scale into [min, max] tokens."""
    h, w = max(32, round(height / 32) * 32), max(32, round(width / 32) * 32)
    if h * w > max_tokens * 1024:
        beta = math.sqrt(height * width / (max_tokens * 1024))
        h, w = math.floor(height / beta / 32) * 32, math.floor(width / beta / 32) * 32
    elif h * w < min_tokens * 1024:
        beta = math.sqrt(min_tokens * 1024 / (height * width))
        h, w = math.ceil(height * beta / 32) * 32, math.ceil(width * beta / 32) * 32
    return h * w // 1024


# Hand-computed token counts (the arithmetic above, done on paper for these sizes):
#   small 320x240 → 10x8 blocks (240/32 = 7.5 rounds to 8) = 80 tokens under 1024 and 16384; under 64 (65,536 px):
#     beta = sqrt(76800/65536) = 1.0825 → floor(221.7/32) = 6 rows, floor(295.6/32) = 9 columns → 54
#   large 2048x1536 → 64x48 = 3072 under 16384; under 1024: beta = sqrt(3) = 1.732 → 27x36 = 972;
#     under 64: beta = sqrt(48) = 6.928 → 6x9 = 54
#   tiny 40x30 → 1x1 = 1 token < 4: raised, beta = sqrt(4096/1200) = 1.8475 → ceil(1.73) = 2, ceil(2.31) = 3 → 6
HAND = {64: (54, 54, 6), 1024: (80, 972, 6), 16384: (80, 3072, 6)}
NAMES = ("small", "large", "tiny")


@pytest.mark.swift
def test_what_if_table_matches_hand_computed_grids(tmp_path: Path, embedded_processor: Any) -> None:
    images = write_images(tmp_path / "images")
    records = [{"messages": [{"role": "user", "content": "<image>Describe it."},
                             {"role": "assistant", "content": "A colour."}], "images": [str(images[name])]}
               for name in NAMES]
    data = write_jsonl(tmp_path / "data.jsonl", records)
    base = stats_json(data, "--max-length", 1000)
    text, remainder = divmod(base["tokens"] - sum(HAND[16384]), 3)  # the same text in each record
    assert remainder == 0 and base["image_tokens"] == sum(HAND[16384])
    table = {column["image_max_tokens"]: column for column in stats_json(
        data, "--max-length", 1000, "--image-max-tokens", "64,1024,16384")["what_if"]}
    assert sorted(table) == [64, 1024, 16384]
    for limit, column in table.items():
        assert tuple(hand_tokens(*IMAGE_SIZES[name], limit) for name in NAMES) == HAND[limit]
        lengths = [text + tokens for tokens in HAND[limit]]
        assert column["tokens"] == sum(lengths)
        assert column["max"] == max(lengths) and column["p50"] == sorted(lengths)[1]
        assert column["image_token_share"] == pytest.approx(sum(HAND[limit]) / sum(lengths), abs=1e-6)
        assert column["over_max_length"] == sum(1 for length in lengths if length > 1000)
        assert column["records"] == 3 and column["unencodable"] == 0
    assert table[64]["over_max_length"] == 0 and table[16384]["over_max_length"] == 1


@pytest.mark.swift
def test_plot_is_a_png_with_three_panels(varied_cache: Path, tmp_path: Path) -> None:
    from PIL import Image

    plot = tmp_path / "stats.png"
    invoke("stats", varied_cache, "--plot", plot)
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 800 and image.height > 300


@pytest.mark.swift
def test_stats_on_jsonl_counts_rejects_and_writes_nothing(tmp_path: Path, embedded_processor: Any) -> None:
    images = write_images(tmp_path / "images")
    data = write_jsonl(tmp_path / "data.jsonl", varied_records(20, images), extra_lines=("{not json",))
    before = sorted(path.name for path in tmp_path.iterdir())
    doc = stats_json(data)
    assert doc["records"] == 20 and doc["rejected"] == 1 and doc["rejects_by_rule"] == {"J001": 1}
    assert doc["reject_examples"]["J001"][0]["where"] == f"{data}:21"
    assert 0 < doc["trained_token_share"] < 1 and doc["image_token_share"] > 0
    assert sorted(path.name for path in tmp_path.iterdir()) == before


@pytest.mark.swift
def test_vltrain_packing_plan_is_vlprep_stats_plan_for_its_settings(varied_cache: Path) -> None:
    """What `vltrain fit --dry-run` prints (and `fit` writes into vltrain_summary.json) when packing is on."""
    from vltrain.config import FitConfig
    from vltrain.guards import Preflight
    from vltrain.packing_plan import fit_packing_plan
    from vlprep.insight.mixture import plan_mixture

    config = FitConfig(cached=[str(varied_cache)], per_device_train_batch_size=2, gradient_accumulation_steps=4,
                       nproc_per_node=8, num_train_epochs=3)
    assert fit_packing_plan(config, Preflight(packing=False, max_length=4000)) is None
    draws = plan_mixture([varied_cache], 4000, config.seed)  # what the guards draw: ms-swift's rows, in its order
    plan = fit_packing_plan(config, Preflight(packing=True, max_length=4000, draws=draws))
    expected = stats_json(varied_cache, "--max-length", 4000, "--batch-size", 2, "--grad-accum", 4, "--gpus", 8,
                          "--epochs", 3)["packing"]
    del expected["pack_lengths"]
    assert plan == expected and plan["packing_length"] == 4000 and plan["dropped_over_max_length"] > 0


def test_stats_refuses_what_is_not_a_cache_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    for target, message in ((tmp_path / "folder", "not a vlprep cache"), (tmp_path / "missing.jsonl", "no such file")):
        result = runner.invoke(app, ["stats", str(target)])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    result = runner.invoke(app, ["stats", str(tmp_path / "folder"), "--image-max-tokens", "1024,lots"])
    assert result.exit_code == 2 and "comma-separated whole numbers" in " ".join(result.output.split())


@pytest.mark.swift
def test_text_output_shows_the_same_plan_and_what_if(varied_cache: Path) -> None:
    args = ("--max-length", 4000, "--packing-length", 4096, "--image-max-tokens", "1024,16384")
    doc = stats_json(varied_cache, *args)
    text = " ".join(invoke("stats", varied_cache, *args).stdout.split())
    plan = doc["packing"]
    assert f"{plan['rows']:,} rows ({plan['dropped_over_max_length']:,} over max_length dropped first) -> " \
           f"{plan['num_packs']:,} packs" in text
    assert f"{plan['steps_per_epoch']:,} steps per epoch packed" in text and "what-if IMAGE_MAX_TOKEN_NUM" in text
    assert all(f"{column['tokens']:,}" in text for column in doc["what_if"])


def test_stats_read_the_facts_the_cache_stored_equal_to_encoding_again(varied_cache: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-row columns written at cache time (trained tokens, turns) are what encoding each row again gives; a
    cache without them is encoded again, with a note."""
    from vlprep.insight import stats as stats_module

    def facts(rows: list) -> list:
        return [(row.length, row.image_tokens, row.trained_tokens, row.images, row.video_tokens, row.videos,
                 [(turn.role, turn.tokens, turn.trained) for turn in row.turns]) for row in rows]

    stored = stats_module.collect_cache(varied_cache, with_sizes=True)
    assert not stored.notes
    monkeypatch.setattr(stats_module, "STORED_FACTS", (*stats_module.STORED_FACTS, "vlprep_not_written"))
    older = stats_module.collect_cache(varied_cache, with_sizes=True, workers=2)
    assert facts(older.rows) == facts(stored.rows) and "encoded again" in older.notes[0]
    assert [row.image_sizes for row in older.rows] == [row.image_sizes for row in stored.rows]
