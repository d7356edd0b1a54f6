"""The training recipes packaged with vltrain (vltrain/configs/*.yaml): found by name, listed, copied out, and each one
dry-run through `vltrain fit --config NAME`, its settings reaching the printed `swift sft` plan.

Every command runs as a subprocess of the installed console scripts (test_first_hour.run). The recipes name Hub models
(Qwen/Qwen3-VL-8B-Instruct) and bfloat16: offline on a CPU machine those fail the processor, weights and dtype checks,
so the dry runs pass --model (the session's tiny model) and --torch-dtype float32, which override the recipe's two
keys; every other key must reach the plan unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from test_first_hour import FIXTURES, Run, in_parallel, run
from vltrain.recipes import find, packaged

OVERRIDDEN = ("model", "torch_dtype")  # see the module docstring
SWIFT_NAMES = {"tuner": "tuner_type"}  # recipe keys ms-swift spells otherwise; the rest are ms-swift's own names


@dataclass
class World:
    root: Path
    model: Path
    dry_runs: dict[str, Run]  # recipe name: `vltrain fit --config NAME ... --dry-run --format json`


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> World:
    root = tmp_path_factory.mktemp("recipes")
    built = run("vlprep", "cache", FIXTURES / "demo.jsonl", "--out", root / "cache", "-j", "1", "--verify", "0", "-q",
                cwd=root)  # reads the fixtures, writes only under root
    assert built.returncode == 1 and (root / "cache" / "manifest.json").is_file(), built  # 2 planted bad records
    runs = in_parallel(*(("vltrain", "fit", "--config", name, "--cached", root / "cache", "--model", tiny_model_dir,
                          "--torch-dtype", "float32", "--dry-run", "--format", "json", {"cwd": root})
                         for name in packaged()))
    return World(root, tiny_model_dir, dict(zip(packaged(), runs)))


def test_vltrain_packages_its_recipes() -> None:
    assert set(packaged()) >= {"full-vit-frozen", "lora-2b", "lora-8b"}


@pytest.mark.train
@pytest.mark.parametrize("name", sorted(packaged()))
def test_every_packaged_recipe_dry_runs_and_its_settings_reach_the_swift_plan(world: World, name: str) -> None:
    result = world.dry_runs[name]
    assert result.returncode == 0, result
    plan = result.json()
    assert all(check["ok"] for check in plan["checks"]), result
    args, command = plan["swift_args"], plan["command"]
    settings = yaml.safe_load(packaged()[name].read_text())
    assert set(OVERRIDDEN) <= set(settings)  # the recipe names a model and a dtype; the command line won
    assert args["model"] == str(world.model) and args["torch_dtype"] == "float32"
    for key, value in settings.items():
        if key in OVERRIDDEN:
            continue
        swift_name = SWIFT_NAMES.get(key, key)
        assert args[swift_name] == value, (key, args.get(swift_name), value)
        assert f"--{swift_name}" in command, key
    assert not (world.root / settings["output_dir"]).exists()  # a dry run writes nothing


def test_a_name_finds_the_packaged_recipe_and_an_existing_path_wins(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find(Path("lora-8b")) == find(Path("lora-8b.yaml")) == packaged()["lora-8b"]
    (tmp_path / "lora-8b.yaml").write_text("lora_rank: 3\n")
    assert find(Path("lora-8b.yaml")) == Path("lora-8b.yaml")  # the file here, not the packaged one
    assert find(Path("lora-8b")) == packaged()["lora-8b"]


def test_an_unknown_recipe_is_a_usage_error_naming_the_closest_and_all(tmp_path: Path) -> None:
    result = run("vltrain", "fit", "--config", "lora-9b", "--cached", tmp_path, "--dry-run", cwd=tmp_path)
    assert result.returncode == 2, result
    assert "did you mean lora-8b?" in result.stderr, result
    assert all(name in result.stderr for name in packaged()), result
    assert "Checks before loading the model" not in result.stderr and "Traceback" not in result.stderr, result


def test_configs_lists_every_recipe_with_its_description_and_settings(tmp_path: Path) -> None:
    listed = run("vltrain", "configs", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed
    rows = {row["name"]: row for row in listed.json()}
    assert set(rows) == set(packaged())
    text = run("vltrain", "configs", cwd=tmp_path)
    assert text.returncode == 0, text
    for name, path in packaged().items():
        first_line = path.read_text().splitlines()[0]
        assert first_line.startswith("# ") and rows[name]["description"] == first_line[2:]
        assert rows[name]["settings"] == yaml.safe_load(path.read_text())
        assert f"{name}: {rows[name]['description']}" in text.stdout, text
        assert f"model={rows[name]['settings']['model']}" in text.stdout, text


def test_configs_cp_copies_a_recipe_out_and_never_overwrites_without_force(tmp_path: Path) -> None:
    source = packaged()["lora-2b"]
    copied = run("vltrain", "configs", "cp", "lora-2b", tmp_path, cwd=tmp_path)
    assert copied.returncode == 0, copied
    target = tmp_path / "lora-2b.yaml"
    assert target.read_bytes() == source.read_bytes()
    target.write_text("lora_rank: 3\n")  # edited
    again = run("vltrain", "configs", "cp", "lora-2b.yaml", target, cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr and "nothing was written" in again.stderr, again
    assert target.read_text() == "lora_rank: 3\n"
    forced = run("vltrain", "configs", "cp", "lora-2b", target, "--force", cwd=tmp_path)
    assert forced.returncode == 0 and target.read_bytes() == source.read_bytes(), forced
    unknown = run("vltrain", "configs", "cp", "lora-2", tmp_path / "x.yaml", cwd=tmp_path)
    assert unknown.returncode == 2 and "did you mean lora-2b?" in unknown.stderr, unknown
    assert not (tmp_path / "x.yaml").exists()
