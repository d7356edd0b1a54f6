"""The training recipes packaged with vltrain (vltrain/configs/*.yaml), found by name: `vltrain fit --config lora-8b`.

A path that exists wins over a packaged name. `vltrain configs` lists the recipes; `vltrain configs cp` copies one out
for editing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vlprep.errors import UsageError, closest

SUFFIX = ".yaml"
# what `vltrain configs` shows of each recipe in text form (the JSON form has every key)
KEY_SETTINGS = ("model", "tuner", "lora_rank", "freeze_vit", "freeze_aligner", "freeze_llm", "learning_rate",
                "num_train_epochs", "deepspeed")


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    description: str  # the first line of the file's leading comment
    usage: str | None  # the leading comment's `Usage:` line, if any
    settings: dict[str, Any]

    def key_settings(self) -> str:
        """`key=value ...` of the settings `vltrain configs` shows, as the YAML spells them."""
        return " ".join(f"{key}={str(value).lower() if isinstance(value, bool) else value}"
                        for key in KEY_SETTINGS if (value := self.settings.get(key)) is not None)


def packaged() -> dict[str, Path]:
    """{name: file} of the packaged recipes, by name."""
    folder = Path(str(resources.files("vltrain") / "configs"))
    return {path.stem: path for path in sorted(folder.glob(f"*{SUFFIX}"))}


def packaged_path(name: str) -> Path:
    """The packaged recipe called `name` (`lora-8b` or `lora-8b.yaml`); an unknown name is a usage error."""
    path = packaged().get(name.removesuffix(SUFFIX))
    if path is None:
        raise UsageError(f"no packaged recipe {name!r}{_listed(name)}")
    return path


def find(config: Path) -> Path:
    """The file `--config` means: the path when it exists, else the packaged recipe of that name."""
    if config.exists():
        return config
    if config.parent != Path("."):  # a path to a file that is not there, not a recipe name
        raise UsageError(f"--config {config}: no such file")
    path = packaged().get(config.name.removesuffix(SUFFIX))
    if path is None:
        raise UsageError(f"--config {config}: no such file, and no packaged recipe of that name{_listed(config.name)}")
    return path


def _listed(name: str) -> str:
    """The closest packaged name and all of them, for an unknown one."""
    names = packaged()
    return (f"{closest(name.removesuffix(SUFFIX), names)}; the packaged recipes are {', '.join(names)} "
            "(`vltrain configs` lists them)")


def recipe(name: str) -> Recipe:
    path = packaged_path(name)
    text = path.read_text(encoding="utf-8")
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    usage = next((line.removeprefix("Usage:").strip() for line in comment if line.startswith("Usage:")), None)
    return Recipe(path.stem, path, comment[0] if comment else "", usage, yaml.safe_load(text) or {})


def recipes() -> list[Recipe]:
    return [recipe(name) for name in packaged()]


def copy_recipe(name: str, dest: Path, force: bool) -> Path:
    """Copy a packaged recipe to `dest` (a file, or a folder to put NAME.yaml in); an existing file only with force."""
    source = packaged_path(name)
    target = dest / source.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise UsageError(f"{target} exists: nothing was written. Pass --force to replace it, or choose another DEST.")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
