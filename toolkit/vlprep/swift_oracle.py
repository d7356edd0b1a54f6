"""ms-swift's own `qwen3_vl` template as an oracle, in a child process (`python -m vlprep.swift_oracle`).

A child process because ms-swift and qwen-vl-utils read the pixel limits (IMAGE_MAX_TOKEN_NUM, ...) from the environment
when they are imported: the only way to encode with a cache's limits, whatever this process imported before, is a fresh
interpreter with that environment. Protocol, one JSON document per line: the first line sent is
`{"model_dir": ...}`, then one canonical record (absolute image paths) per line; the child answers each record with
`{"input_ids", "labels", "length", "image_grid_thw"}` or `{"error"}`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any


class SwiftOracle:
    """A long-lived child process encoding records with ms-swift's template under the given pixel-limit environment."""

    def __init__(self, model_dir: str, env: dict[str, str]) -> None:
        child_env = {**os.environ, **env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        for legacy in ("MAX_PIXELS", "MIN_PIXELS"):  # the token-count settings are authoritative
            child_env.pop(legacy, None)
        self._log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty child can never block on it
        self._child = subprocess.Popen([sys.executable, "-m", "vlprep.swift_oracle"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=self._log, text=True, env=child_env)
        self._send({"model_dir": model_dir})

    def _send(self, message: dict[str, Any]) -> None:
        assert self._child.stdin is not None
        self._child.stdin.write(json.dumps(message) + "\n")
        self._child.stdin.flush()

    def encode(self, record: dict[str, Any]) -> dict[str, Any]:
        self._send(record)
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line:
            code = self._child.wait()
            self._log.seek(0)
            raise RuntimeError(f"the ms-swift encoder process exited ({code}):\n{self._log.read()[-4000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self._child.stdin:
            self._child.stdin.close()
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        self._log.close()

    def __enter__(self) -> "SwiftOracle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode(template: Any, record: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = template.encode(record, return_length=True)
    except Exception as error:  # noqa: BLE001 - reported back per record
        return {"error": f"{type(error).__name__}: {error}"}
    grid = encoded.get("image_grid_thw")
    return {
        "input_ids": list(map(int, encoded["input_ids"])),
        "labels": list(map(int, encoded["labels"])),
        "length": int(encoded["length"]),
        "image_grid_thw": grid.tolist() if grid is not None else [],
    }


def _serve() -> None:
    answers = sys.stdout
    sys.stdout = sys.stderr  # ms-swift logs to stdout; keep the real stdout for answers
    from swift import get_model_processor, get_template

    model_dir = json.loads(sys.stdin.readline())["model_dir"]
    _, processor = get_model_processor(model_dir, model_type="qwen3_vl", load_model=False)
    template = get_template(processor, template_type="qwen3_vl")
    template.set_mode("train")
    for line in sys.stdin:
        answers.write(json.dumps(_encode(template, json.loads(line))) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()
