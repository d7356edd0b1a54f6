"""vlprep's arithmetic-only smart_resize is qwen-vl-utils' smart_resize: same sizes, same refusals."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import FIXTURES
from vlprep.counting.resize import smart_resize

SIDES = sorted(set(range(1, 97)) | set(range(97, 1200, 7)) | set(range(1200, 8200, 97)) | {
    15999, 16000, 16001, 32767, 32768, 65535, 100000})
TOKEN_LIMITS = [(4, 16384), (4, 1024), (1, 1), (64, 64), (16, 256), (256, 16384), (4, 4096), (1024, 1280)]
FACTOR = 32


def qwen_vl_utils_answer(height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int] | str:
    from qwen_vl_utils import vision_process

    try:
        return vision_process.smart_resize(height, width, factor=FACTOR, min_pixels=min_pixels, max_pixels=max_pixels)
    except (ValueError, AssertionError) as error:
        return type(error).__name__


def vlprep_answer(height: int, width: int, min_pixels: int, max_pixels: int, max_ratio: float) -> tuple[int, int] | str:
    try:
        return smart_resize(height, width, FACTOR, min_pixels, max_pixels, max_ratio)
    except ValueError as error:
        return type(error).__name__


@pytest.mark.parametrize(("min_tokens", "max_tokens"), TOKEN_LIMITS)
def test_same_size_as_qwen_vl_utils_over_a_dense_grid(min_tokens: int, max_tokens: int) -> None:
    from qwen_vl_utils import vision_process

    min_pixels, max_pixels = min_tokens * FACTOR * FACTOR, max_tokens * FACTOR * FACTOR
    differing = []
    for height, width in itertools.product(SIDES, SIDES):
        theirs = qwen_vl_utils_answer(height, width, min_pixels, max_pixels)
        ours = vlprep_answer(height, width, min_pixels, max_pixels, vision_process.MAX_RATIO)
        if ours != theirs:
            differing.append(((height, width), ours, theirs))
    assert differing == [], differing[:10]


def test_refuses_what_qwen_vl_utils_refuses() -> None:
    from qwen_vl_utils import vision_process

    assert vision_process.MAX_RATIO == 200
    assert qwen_vl_utils_answer(1, 201, 4 * 1024, 16384 * 1024) == vlprep_answer(1, 201, 4 * 1024, 16384 * 1024, 200) \
        == "ValueError"
    assert vlprep_answer(1, 200, 4 * 1024, 16384 * 1024, 200) == qwen_vl_utils_answer(1, 200, 4 * 1024, 16384 * 1024)
    # max_pixels below min_pixels: qwen-vl-utils asserts, vlprep raises ValueError: refused on the same input
    assert qwen_vl_utils_answer(64, 64, 2048, 1024) == "AssertionError"
    assert vlprep_answer(64, 64, 2048, 1024, 200) == "ValueError"



DEMO = FIXTURES / "demo.jsonl"
HEAVY = ("torch", "torchvision", "transformers", "qwen_vl_utils", "swift", "datasets", "pandas")
RUN_THEN_LIST_IMPORTS = f"""
import json, sys
sys.argv = ["vlprep", *sys.argv[1:]]
from vlprep.cli.app import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules)))
"""


def test_counting_imports_no_torch(embedded_processor_path: Path, tmp_path: Path) -> None:
    """`lint --max-length` counts every record's tokens (image tokens included) without importing torch, torchvision,
    transformers, qwen-vl-utils, ms-swift, datasets or pandas, once the processor's facts are memoized (the first run
    memoizes them)."""
    command = [sys.executable, "-c", RUN_THEN_LIST_IMPORTS, "lint", str(DEMO), "--max-length", "64", "-q", "--workers",
               "1", "--format", "json"]
    runs = [subprocess.run(command, capture_output=True, text=True, env=os.environ, timeout=300) for _ in range(2)]
    *report, imported = runs[1].stdout.strip().splitlines()
    too_long = [d for d in json.loads("\n".join(report))["diagnostics"] if d["code"] == "L001"]
    assert too_long, runs[1].stdout  # lengths were counted: records over 64 tokens are reported
    assert json.loads(imported) == [], runs[1].stdout


def test_cache_builds_and_writes_without_heavy_imports(embedded_processor_path: Path, tmp_path: Path) -> None:
    """`vlprep cache` with its default options (verification on) counts and writes the Arrow splits without importing
    any of them in the build process: ms-swift's encoder child imports what verification needs."""
    command = [sys.executable, "-c", RUN_THEN_LIST_IMPORTS, "cache", str(DEMO), "--out", str(tmp_path / "cache"),
               "-q", "--workers", "1"]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, timeout=600)
    *_, imported = done.stdout.strip().splitlines()
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["verification"]["ms_swift_template"]["records_checked"] > 0  # the encoder child did verify
    assert json.loads(imported) == [], done.stdout + done.stderr[-3000:]
