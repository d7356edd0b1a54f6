"""The model seam (vlprep.models): every model-family specific lives there, agrees with the real processor and
ms-swift, and a cache from before the manifest recorded its family still inspects and trains."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vlprep.counting.counter import counter_for_manifest
from vlprep.counting.settings import CountSettings
from vlprep.errors import ProcessorError
from vlprep.models.family import Token
from vlprep.models.qwen3_5 import QWEN3_5, QWEN3_5_MOE
from vlprep.models.qwen3_vl import QWEN3_VL, QWEN3_VL_MOE
from vlprep.models.registry import DEFAULT_FAMILY, FAMILIES, family_for_model_dir, family_named, family_of_manifest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "toolkit", ROOT / "trainer")
MODELS = ROOT / "toolkit" / "vlprep" / "models"
FIXTURES = ROOT / "fixtures"
BIN = Path(sys.executable).parent


def _source_files() -> list[Path]:
    return sorted(path for root in SOURCES for path in root.rglob("*") if path.is_file()
                  and path.suffix in (".py", ".json", ".yaml", ".jinja") and MODELS not in path.parents)


def test_nothing_outside_the_models_package_names_a_family_or_a_token_id() -> None:
    """ms-swift names (template, model_type) and special token ids are asked of a family, never written out."""
    names = {name for family in FAMILIES for name in (family.template, family.model_type, *family.config_model_types)}
    ids = {spec["id"] for family in FAMILIES for spec in family.special_tokens()}
    pattern = re.compile("|".join([*(re.escape(name) for name in sorted(names)),
                                   *(rf"\b{token_id}\b" for token_id in sorted(ids))]))
    files = _source_files()
    assert len(files) > 50 and ROOT / "toolkit" / "vlprep" / "counting" / "tokens.py" in files
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in files
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("family", [QWEN3_VL, QWEN3_5], ids=lambda family: family.name)  # MoE: same build
def test_a_family_agrees_with_its_embedded_processor(family: Any, vlprep_cache_dir: Path) -> None:
    """Token ids, geometry and model_type as the family states them are what the built processor has."""
    from vlprep.counting.processor import embedded_processor_dir, load_processor

    folder = embedded_processor_dir(family)
    processor = load_processor(str(folder))
    tokens = [value for value in vars(family).values() if isinstance(value, Token)]
    assert len(tokens) == 6
    assert {token.text: processor.tokenizer.convert_tokens_to_ids(token.text) for token in tokens} == \
        {token.text: token.id for token in tokens}
    image = processor.image_processor
    assert {"patch_size": image.patch_size, "temporal_patch_size": image.temporal_patch_size,
            "merge_size": image.merge_size} == family.geometry()
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] in family.config_model_types
    assert family_for_model_dir(folder) is family
    assert family.tokens_per_grid((2, 6, 8)) == 2 * 6 * 8 // family.spatial_merge ** 2


@pytest.mark.swift
def test_ms_swift_knows_the_family_by_its_names() -> None:
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING

    for family in FAMILIES:
        assert family.model_type in MODEL_MAPPING and family.template in TEMPLATE_MAPPING


def test_which_family_a_folder_is(tmp_path: Path) -> None:
    assert family_for_model_dir(tmp_path) is DEFAULT_FAMILY  # processor-only: no config.json
    (tmp_path / "config.json").write_text(json.dumps({"architectures": list(QWEN3_VL.architectures)}))
    assert family_for_model_dir(tmp_path) is QWEN3_VL
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava", "architectures": ["LlavaForCausalLM"]}))
    with pytest.raises(ProcessorError, match="'llava'.*not a model family vlprep counts for"):
        family_for_model_dir(tmp_path)
    for family in (QWEN3_VL_MOE, QWEN3_5, QWEN3_5_MOE):
        (tmp_path / "config.json").write_text(json.dumps({"model_type": family.config_model_types[0]}))
        assert family_for_model_dir(tmp_path) is family
    assert QWEN3_VL_MOE.counts_like(QWEN3_VL) and QWEN3_5_MOE.counts_like(QWEN3_5)  # fit takes the dense cache
    assert not QWEN3_5.counts_like(QWEN3_VL)  # fit refuses a Qwen3-VL cache for a Qwen3.5 model
    assert family_named(QWEN3_VL.name) is QWEN3_VL
    with pytest.raises(ProcessorError, match="unknown model family 'nope'"):
        family_named("nope")


def test_an_unsupported_model_folder_is_one_clear_refusal(tmp_path: Path) -> None:
    """No traceback: exit 2 and a message naming the supported families, before anything loads the folder."""
    from typer.testing import CliRunner

    from vlprep.cli.app import app

    (tmp_path / "llava").mkdir()
    (tmp_path / "llava" / "config.json").write_text(json.dumps({"model_type": "llava"}))
    (tmp_path / "d.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                               {"role": "assistant", "content": "yo"}]}) + "\n")
    result = CliRunner().invoke(app, ["lint", str(tmp_path / "d.jsonl"), "--model", str(tmp_path / "llava"),
                                      "--max-length", "64"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert all(family.title in " ".join(result.output.split()) for family in FAMILIES), result.output
    result = CliRunner().invoke(app, ["lint", str(tmp_path / "d.jsonl"), "--family", "nope", "--max-length", "64"])
    assert result.exit_code == 2 and all(family.name in result.output for family in FAMILIES), result.output


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("IMAGE_", "MAX_", "MIN_"))}
    return subprocess.run([str(part) for part in command], cwd=cwd, env={**env, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=600)


@pytest.mark.train
def test_a_cache_from_before_the_family_was_recorded_inspects_counts_and_trains(tmp_path: Path,
                                                                              tiny_model_dir: Path) -> None:
    """The manifest's `processor.family` is new: a cache without it is the default family's, for every reader."""
    shutil.copy2(FIXTURES / "demo.jsonl", tmp_path / "demo.jsonl")
    shutil.copytree(FIXTURES / "images", tmp_path / "images")
    cache = tmp_path / "cache"
    built = _run(BIN / "vlprep", "cache", "demo.jsonl", "--out", cache, "--verify", "0", "--workers", "1", "-q",
                 cwd=tmp_path)
    assert built.returncode in (0, 1), built.stderr  # 1: the demo corpus plants two bad records
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["processor"]["family"] == QWEN3_VL.name and manifest["processor"]["template"] == QWEN3_VL.template
    del manifest["processor"]["family"]
    (cache / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    assert family_of_manifest(manifest) is DEFAULT_FAMILY
    assert CountSettings.from_manifest(manifest).to_json() == {key: value for key, value in manifest["counting"].items()
                                                                if key != "fingerprint"}
    assert counter_for_manifest(manifest).settings.family is DEFAULT_FAMILY
    inspected = _run(BIN / "vlprep", "inspect", cache, cwd=tmp_path)
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    planned = _run(BIN / "vltrain", "fit", "--cached", cache, "--model", tiny_model_dir, "--dry-run", "--format",
                   "json", "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["swift_args"]["model_type"] == DEFAULT_FAMILY.model_type
    assert plan["environment"] == CountSettings.from_manifest(manifest).environment()
