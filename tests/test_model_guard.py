"""Code shipped in a model folder never runs without --trust-remote-code, whichever command reads the folder.

ms-swift loads model folders with trust_remote_code=True, so every command that hands a folder to it (the ms-swift
encoder of `vlprep cache`'s verification, `vltrain fit` and its ranks) must refuse a folder that ships or maps code
before anything reads it. The matrix: each command with its default options, against folders shipping code each way
(`auto_map` in config.json, tokenizer_config.json, processor_config.json, preprocessor_config.json; a lone `*.py`).
Every refusal is exit 2 with what ships code and the fix, and the marker the code writes when imported never appears.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support import FIXTURES, marker_module, run

# file -> (auto_map it declares, the module it names); the module writes the marker when imported
AUTO_MAPS = {
    "config.json": ({"AutoConfig": "configuration_evil.EvilConfig"}, "configuration_evil"),
    "tokenizer_config.json": ({"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}, "tokenization_evil"),
    "processor_config.json": ({"AutoProcessor": "processing_evil.EvilProcessor"}, "processing_evil"),
    "preprocessor_config.json": ({"AutoImageProcessor": "image_processing_evil.EvilImageProcessor"},
                                 "image_processing_evil"),
}
WAYS = [f"auto_map-in-{name}" for name in AUTO_MAPS] + ["a-lone-py-file"]


def ship_code(model: Path, way: str, marker: Path) -> Path:
    """Make `model` ship code the given way; the code writes `marker` when imported."""
    if way == "a-lone-py-file":
        marker_module(model, "helpers", marker)
        return model
    name = way.removeprefix("auto_map-in-")
    auto_map, module = AUTO_MAPS[name]
    marker_module(model, module, marker)
    path = model / name
    config = json.loads(path.read_text()) if path.is_file() else {"image_processor_type": "Qwen2VLImageProcessor"}
    config["auto_map"] = auto_map
    path.write_text(json.dumps(config, indent=2))
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    """A small cache of the demo corpus (built with the embedded processor) and the data it came from."""
    root = tmp_path_factory.mktemp("model-guard")
    (root / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    data = root / "data.jsonl"
    lines = (FIXTURES / "demo.jsonl").read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    built = run("vlprep", "cache", data, "--out", root / "cache", "-q", "--verify", "0", cwd=root)
    assert built.returncode in (0, 1), built.stderr
    return {"root": root, "data": data, "cache": root / "cache", "tiny": tiny_model_dir}


@pytest.fixture(scope="module")
def refusals(world: dict[str, Path], embedded_processor_path: Path) -> dict[tuple[str, str], tuple[Path, object]]:
    """Every command of the matrix against every way of shipping code, two at a time; (way, command) -> (marker, run)."""
    root = world["root"]
    commands = {
        "lint --max-length --model": lambda m, o: ("vlprep", "lint", world["data"], "--max-length", "4096",
                                                   "--model", m),
        "cache --model": lambda m, o: ("vlprep", "cache", world["data"], "--out", o, "--model", m),
        "cache --resume": lambda m, o: ("vlprep", "cache", world["data"], "--out", o, "--model", m, "--resume"),
        "fit": lambda m, o: ("vltrain", "fit", "--cached", world["cache"], "--model", m, "--output-dir", o),
        "fit --dry-run": lambda m, o: ("vltrain", "fit", "--cached", world["cache"], "--model", m, "--output-dir", o,
                                       "--dry-run"),
    }
    jobs = {}
    for way in WAYS:
        marker = root / f"ran-{way}"
        processor = ship_code(_copy(embedded_processor_path, root / f"processor-{way}"), way, marker)
        weights = ship_code(_copy(world["tiny"], root / f"model-{way}"), way, marker)
        for name, command in commands.items():
            model = weights if name.startswith("fit") else processor
            jobs[(way, name)] = (marker, command(model, root / f"out-{way}-{name.replace(' ', '')}"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(run, command[0], *command[1:], cwd=root) for key, (_, command) in jobs.items()}
        return {key: (jobs[key][0], future.result()) for key, future in futures.items()}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("command", ["lint --max-length --model", "cache --model", "cache --resume", "fit",
                                     "fit --dry-run"])
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.train
def test_a_model_folder_that_ships_code_is_refused_and_its_code_never_runs(refusals: dict, way: str,
                                                                           command: str) -> None:
    marker, result = refusals[(way, command)]
    shown = " ".join((result.stdout + result.stderr).split())
    assert not marker.exists(), f"the folder's code ran under `{command}`: {marker.read_text()}\n{shown}"
    assert result.returncode == 2, shown
    assert "ships Python code" in shown and "--trust-remote-code" in shown, shown
    shipped = "helpers.py" if way == "a-lone-py-file" else f"auto_map in {way.removeprefix('auto_map-in-')}"
    assert shipped in shown, shown
    assert "Traceback" not in shown, shown


@pytest.mark.swift
def test_the_ms_swift_encoder_refuses_such_a_folder_itself(embedded_processor_path: Path, tmp_path: Path) -> None:
    """Defence in depth: the encoder child runs the same guard before ms-swift (which trusts remote code) reads the
    folder, even if its parent did not."""
    from vlprep.counting.settings import CountSettings
    from vlprep.cache.swift_oracle import OracleExited, SwiftOracle

    marker = tmp_path / "ran"
    model = ship_code(_copy(embedded_processor_path, tmp_path / "model"), "auto_map-in-config.json", marker)
    record = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
              "images": []}
    with pytest.raises(OracleExited) as exited:
        with SwiftOracle(str(model), CountSettings().environment()) as oracle:
            oracle.encode(record)
    assert exited.value.code == 2
    assert "ShippedCodeRefused" in exited.value.cause and "auto_map in config.json" in exited.value.cause
    assert not marker.exists()


@pytest.mark.swift
def test_an_encoder_that_cannot_load_the_model_is_one_message_and_the_build_resumes(
        embedded_processor_path: Path, tmp_path: Path) -> None:
    """A folder vlprep can count with but ms-swift cannot load (no config.json): the default build (verification on)
    stops with ms-swift's own error line, the exit code and the way to resume; no traceback. Restored, --resume
    finishes the same build."""
    model = _copy(embedded_processor_path, tmp_path / "model")
    config = (model / "config.json").read_bytes()
    (model / "config.json").unlink()
    (tmp_path / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    data = tmp_path / "data.jsonl"
    shutil.copy(FIXTURES / "demo.jsonl", data)
    out = tmp_path / "cache"
    failed = run("vlprep", "cache", data, "--out", out, "--model", model, cwd=tmp_path)
    shown = " ".join(failed.stderr.split())
    assert failed.returncode == 1, shown
    assert "Traceback" not in failed.stderr
    assert "ms-swift encoder" in shown and "exited with code 1" in shown, shown
    assert "ValueError: Unrecognized model" in shown, shown  # ms-swift's (transformers') own last error line
    assert "--resume" in shown and not out.exists()
    log = tmp_path / ".cache.vlprep-partial" / "encoder.log"
    assert "Traceback" in log.read_text(), "the full output is kept for the curious"
    (model / "config.json").write_bytes(config)
    resumed = run("vlprep", "cache", data, "--out", out, "--model", model, "--resume", cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr  # the demo corpus plants two rejects
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["input_lines"] == len(data.read_text().splitlines())
    assert manifest["verification"]["ms_swift_template"]["records_checked"] > 0
