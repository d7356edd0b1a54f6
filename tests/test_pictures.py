"""Near-duplicate pictures: the fingerprint finds re-encoded, resized, PNG and lightly cropped copies and not other
pictures of the same scene type; lint names them (D002-D004); `vlprep cache --val-ratio` keeps a picture group on one
side of the split with its default options."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import datasets
import pytest
from typer.testing import CliRunner

from picture_fixtures import save_copies, scene
from vlprep.checks.fingerprint import distance
from vlprep.checks.images import ImageLimits, check_image
from vlprep.cli.app import app
from vlprep.lint.pictures import DEFAULT_NEAR_DISTANCE, PictureIndex
from vlprep.records.diagnostics import ImageInfo

runner = CliRunner()


def fingerprint(path: Path, fast: bool = False) -> int:
    checked = check_image(str(path), path.parent, None, ImageLimits(full_decode=not fast))
    assert checked.info is not None and checked.info.phash is not None, checked.problems
    return checked.info.phash


@pytest.mark.parametrize("fast", [False, True], ids=["full-decode", "fast"])
def test_copies_of_a_picture_are_within_the_default_distance(tmp_path: Path, fast: bool) -> None:
    for seed in range(3):
        paths = save_copies(seed, tmp_path)
        original = fingerprint(paths["q95"], fast)
        for name in ("q70", "half", "png", "crop"):
            assert distance(original, fingerprint(paths[name], fast)) <= DEFAULT_NEAR_DISTANCE, (seed, name)


def test_distinct_pictures_of_one_scene_type_are_not_near_duplicates(tmp_path: Path) -> None:
    hashes = []
    for seed in range(30):
        scene(1000 + seed).save(tmp_path / f"{seed}.jpg", quality=90)
        hashes.append(fingerprint(tmp_path / f"{seed}.jpg"))
    close = [(a, b) for a in range(30) for b in range(a + 1, 30)
             if distance(hashes[a], hashes[b]) <= DEFAULT_NEAR_DISTANCE]
    assert len(close) <= 1, close  # measured: 3 pairs in 44,850 of 300 such pictures (docs/lint.md)


def _info(phash: int, path: str) -> ImageInfo:
    return ImageInfo(64, 64, "JPEG", "RGB", path, phash=phash, digest=hash(path))


def test_picture_index_joins_transitively_and_finds_every_neighbour() -> None:
    rng = random.Random(5)
    index = PictureIndex(DEFAULT_NEAR_DISTANCE)
    centres = [rng.getrandbits(64) for _ in range(300)]
    seen: list[int] = []
    for element in range(1500):
        centre = centres[rng.randrange(len(centres))]
        noisy = centre ^ sum(1 << bit for bit in rng.sample(range(64), rng.randint(0, 6)))
        expected = {other for other in seen if distance(noisy, other) <= DEFAULT_NEAR_DISTANCE and other != noisy}
        if noisy not in index.first:
            assert index._neighbours(noisy) == expected  # multi-index probing == a brute-force scan
        index.observe(element, f"f:{element + 1}", [_info(noisy, f"{element}.jpg")], None, False)
        seen.append(noisy)
    # a record with two pictures joins their groups: A (records 0, 1) and B (record 2) through record 3
    bridge = PictureIndex(4)
    a, b = 0x0F0F_0F0F_0F0F_0F0F, 0xF0F0_F0F0_F0F0_F0F0
    for element, pictures in enumerate([[a], [a ^ 1], [b], [a ^ 3, b ^ 7]]):
        bridge.observe(element, f"f:{element + 1}", [_info(p, f"{element}-{i}.jpg") for i, p in enumerate(pictures)],
                       None, False)
    assert {bridge.find(element) for element in range(4)} == {0}


@pytest.fixture(scope="module")
def shared_picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 records whose one picture is saved three ways (JPEG q95, half-size JPEG q70, PNG), 10 with other pictures,
    a record repeating record 1's text with the cropped copy, one with a byte copy of the q95 file."""
    folder = tmp_path_factory.mktemp("shared")
    paths = save_copies(7, folder / "img")
    shutil.copy(paths["q95"], folder / "img" / "copy.jpg")
    ways = [paths["q95"], paths["half"], paths["png"]]

    def record(question: str, *images: Path | str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": "<image>" * len(images) + question},
                             {"role": "assistant", "content": "A landscape."}],
                "images": [str(Path(image).relative_to(folder)) for image in images]}

    lines = [record(f"Question {i}?", ways[i % 3]) for i in range(20)]
    for seed in range(10):
        scene(200 + seed).save(folder / "img" / f"other{seed}.jpg", quality=90)
        lines.append(record(f"What is in picture {seed}?", folder / "img" / f"other{seed}.jpg"))
    lines.append(record("Question 0?", paths["crop"]))
    lines.append(record("Copy?", folder / "img" / "copy.jpg"))
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return data


def test_lint_names_near_duplicate_pictures_files_and_records(shared_picture: Path) -> None:
    result = runner.invoke(app, ["lint", str(shared_picture), "--format", "json", "-q", "-j", "1"])
    report = json.loads(result.output)
    found: dict[str, list[dict[str, Any]]] = {}
    for diagnostic in report["diagnostics"]:
        found.setdefault(diagnostic["code"], []).append(diagnostic)
    near = found["D002"]
    assert [d["line"] for d in near] == [2, 3, 31]  # each copy once, the first time its file appears
    assert "data.jsonl:1 images[0]" in near[0]["message"] and "distance" in near[0]["message"]
    assert [d["line"] for d in found["D003"]] == [32] and "7_q95.jpg" in found["D003"][0]["message"]
    assert [(d["line"], "data.jsonl:1" in d["message"]) for d in found["D004"]] == [(31, True)]
    pictures = report["summary"]["pictures"]
    assert pictures["largest"][0] == {"first": f"{shared_picture}:1", "records": 22}
    assert pictures["groups"] == 11 and pictures["distinct_pictures"] == 12  # distinct fingerprints


def _sides(cache_dir: Path) -> dict[str, set[str]]:
    return {split: {image for row in datasets.load_from_disk(str(cache_dir / split)).to_list()
                    for image in row["images"]} if (cache_dir / split).is_dir() else set() for split in ("train", "val")}


@pytest.mark.slow  # builds two caches
def test_cache_val_ratio_keeps_each_picture_group_on_one_side(shared_picture: Path, tmp_path: Path,
                                                              embedded_processor: Any) -> None:
    out = tmp_path / "cache"
    result = runner.invoke(app, ["cache", str(shared_picture), "--out", str(out), "--val-ratio", "0.3", "-q",
                                 "--verify", "0"])
    assert result.exit_code == 0, result.output
    split = json.loads((out / "manifest.json").read_text())["split"]
    assert split["by"] == "picture" and split["groups_in_both"] == 0
    assert split["groups"]["train"] + split["groups"]["val"] == 11 and split["groups"]["val"] > 0
    sides = _sides(out)
    shared = {path for path in sides["train"] | sides["val"] if "/7_" in path or path.endswith("copy.jpg")}
    assert shared <= sides["train"] or shared <= sides["val"], sides
    record_level = tmp_path / "records"
    runner.invoke(app, ["cache", str(shared_picture), "--out", str(record_level), "--val-ratio", "0.3", "-q",
                        "--verify", "0", "--split-by", "record"])
    old = _sides(record_level)  # the old split leaks: the shared picture trains and validates
    assert any("/7_" in path for path in old["train"]) and any("/7_" in path for path in old["val"])
