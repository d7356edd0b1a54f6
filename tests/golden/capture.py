"""Capture ms-swift's answers on the bundled record sets once, into tests/golden/counting.json (`make golden`).

For every record: ms-swift's loader row (`swift.dataset.load_dataset` on a file of that one line, run from its folder,
as `swift sft --dataset FILE` loads it) and ms-swift's `qwen3_vl` template encode of that line (loader + template, in a
`SwiftOracle` child per pixel setting): input_ids, labels, length and grids. tests/test_golden.py compares vlprep's
normalize() and TokenCounter with them in seconds, without starting ms-swift. Run it again (and commit the file) when
ms-swift, the embedded processor or a record set changes.

The record sets: every JSON object line of the bundled fixtures (fixtures/*.jsonl), and the records of
tests/test_counting.py (both pixel settings) and tests/test_swift_formats.py, whose images the test setup writes (only
their sizes and modes matter to counting, and the writers are deterministic).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent
sys.path.insert(0, str(GOLDEN.parent))  # the test modules whose record sets are captured

import golden_cases  # noqa: E402 - needs the path above
from golden_cases import Case  # noqa: E402


def loader_row(case: Case, base_dir: Path, scratch: Path) -> dict[str, Any] | str:
    """ms-swift's loader on a one-line file of the case's line, from its folder: the row, or the loader's error."""
    from swift.dataset import load_dataset

    folder = Path(tempfile.mkdtemp(dir=scratch))
    (folder / "records.jsonl").write_text(case.line + "\n", encoding="utf-8")
    os.environ["MODELSCOPE_CACHE"] = str(folder)  # the loader's caches stay in the scratch folder
    previous = Path.cwd()
    try:
        os.chdir(base_dir)
        dataset, _ = load_dataset([str(folder / "records.jsonl")], split_dataset_ratio=0.0, num_proc=1)
    except Exception as error:  # noqa: BLE001 - the loader's verdict is what is captured
        return f"{type(error).__name__}: {error}"
    finally:
        os.chdir(previous)
    if len(dataset) != 1:
        return "the loader dropped the line"
    row = dict(dataset[0])
    row.pop("dataset", None)  # the temporary file's path
    return row


def with_absolute_images(row: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """The row as a cache hands it to ms-swift: image paths absolute (the oracle child does not run from base_dir)."""
    def absolute(image: Any) -> Any:
        path = image.get("path") if isinstance(image, dict) else None
        if isinstance(path, str) and path and not path.startswith("data:") and "://" not in path:
            return {**image, "path": str(base_dir / path)}
        return image  # anything else as the loader gave it

    images = row.get("images")
    return {**row, "images": [absolute(image) for image in images]} if isinstance(images, list) else row


@contextlib.contextmanager
def oracles(model_dir: Path) -> Iterator[dict[str, Any]]:
    from vlprep.cache.swift_oracle import SwiftOracle

    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(SwiftOracle(str(model_dir), settings.swift_env()))
               for name, settings in golden_cases.SETTINGS.items()}


def capture(out: Path) -> dict[str, Any]:
    from vlprep.counting.processor import resolve_model_dir

    with tempfile.TemporaryDirectory(prefix="vlprep-golden-") as work:
        work_dir = Path(work)
        bases = golden_cases.write_bases(work_dir / "bases")
        cases = golden_cases.cases(bases)
        folders = bases.folders
        scratch = work_dir / "loader"
        scratch.mkdir()
        rows = {(case.base, case.line): loader_row(case, folders[case.base], scratch) for case in cases}
        captured = []
        with oracles(resolve_model_dir(None)) as started:
            for case in cases:
                row = rows[(case.base, case.line)]
                entry: dict[str, Any] = {"base": case.base, "name": case.name, "setting": case.setting,
                                         "line": case.line}
                if isinstance(row, str):
                    entry["loader_error"] = row
                else:
                    answer = started[case.setting].encode(with_absolute_images(row, folders[case.base]),
                                                          raw={"text": case.line, "base_dir": str(folders[case.base])})
                    of_row = {key: value for key, value in answer.items() if key != "raw"}
                    if of_row != answer["raw"] and not ("error" in of_row and "error" in answer["raw"]):
                        raise SystemExit(f"{case.name}: its loader row encodes unlike its line: {answer}")
                    entry["loader_row"] = golden_cases.as_json(row)
                    entry["swift"] = golden_cases.packed(answer["raw"])
                captured.append(entry)
                print(f"{case.base} {case.name} [{case.setting}]: "
                      f"{entry.get('loader_error') or entry['swift'].get('error') or entry['swift']['length']}")
    document = {"about": "ms-swift's loader rows and qwen3_vl template encodes of the bundled record sets, captured "
                         "by tests/golden/capture.py (input_ids and labels run-length packed: [value, times])",
                "ms_swift": version("ms-swift"), "transformers": version("transformers"),
                "settings": {name: settings.to_json() for name, settings in golden_cases.SETTINGS.items()},
                "cases": captured}
    out.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "counting.json")
    arguments = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="vlprep-golden-processor-") as processor_cache:
        os.environ.setdefault("VLPREP_CACHE_DIR", processor_cache)  # ~/.cache is never touched
        document = capture(arguments.out)
    print(f"{len(document['cases'])} cases written to {arguments.out} ({arguments.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
