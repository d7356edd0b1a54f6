"""The inputs a command names: files as given, `-` for stdin, a folder for its data files or a `datasets` folder
for its Arrow files in order; anything else is a UsageError naming it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from vlprep.errors import UsageError
from vlprep.inputs.streams import is_stdin


DATA_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst", ".parquet")
_LISTED_NAMES = 10


def saved_dataset_files(folder: Path) -> list[Path] | None:
    """The Arrow files of a `datasets` `save_to_disk` folder, in the dataset's order (None: not such a folder)."""
    splits = folder / "dataset_dict.json"
    if splits.is_file():
        try:
            names = json.loads(splits.read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError):
            names = []
        raise UsageError(f"{folder}: a `datasets` DatasetDict with splits {', '.join(map(str, names)) or '?'}; pass "
                          f"one split's folder (e.g. {folder / str(names[0] if names else 'train')})")
    state = folder / "state.json"
    if not state.is_file():
        return None
    try:
        names = [entry["filename"] for entry in json.loads(state.read_text())["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{state}: not a readable `datasets` state file ({error})") from None
    files = [folder / name for name in names]
    if missing := [str(file) for file in files if not file.is_file()]:
        raise UsageError(f"{folder}: a `datasets` folder whose data file(s) are missing: {', '.join(missing)}")
    return files


def check_inputs(files: list[Path], command: str, announce: Callable[[str], None] = print) -> list[Path]:
    """The input files: each file as given, `-` for stdin (lint only), a folder for its data files (sorted by name and
    listed on stderr)."""
    inputs: list[Path] = []
    for file in files:
        if is_stdin(file):
            if command != "lint":
                why = ("it reads each input twice (first to count its records and fingerprint it for the manifest and "
                       "--resume, then to cache it)" if command == "cache" else "it reads files, not streams")
                raise UsageError(f"-: vlprep {command} cannot read stdin: {why}; save the data to a file and pass "
                                  "its path")
            if file in inputs:
                raise UsageError("-: stdin given twice")
            inputs.append(file)
        elif file.is_dir() and (saved := saved_dataset_files(file)) is not None:
            inputs.extend(saved)
        elif file.is_dir():
            found = sorted(path for path in file.iterdir() if path.is_file() and path.name.endswith(DATA_SUFFIXES))
            if not found:
                raise UsageError(f"{file}: a folder with no data files (vlprep reads "
                                  f"{', '.join('*' + suffix for suffix in DATA_SUFFIXES)} in it, not in subfolders)")
            names = ", ".join(path.name for path in found[:_LISTED_NAMES])
            more = f" and {len(found) - _LISTED_NAMES} more" if len(found) > _LISTED_NAMES else ""
            announce(f"{file}: a folder; reading its {len(found)} data file(s) in name order: {names}{more}")
            inputs.extend(found)
        elif not file.is_file():
            raise UsageError(f"{file}: no such file or folder")
        elif not os.access(file, os.R_OK):
            raise UsageError(f"{file}: not readable (permission denied)")
        else:
            inputs.append(file)
    return inputs
