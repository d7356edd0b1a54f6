"""What several test modules share: where the bundled fixtures are, the installed console scripts run as a user runs
them (`run`, or `start` + `finish` for runs that overlap), the in-process CLI's JSON outputs, and model folders that
ship code which writes a marker when imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from vlprep.cli.app import app

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEMAS = FIXTURES.parent / "schemas"
BIN = Path(sys.executable).parent
PIXEL_ENV = ("IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "MAX_RATIO", "MAX_PIXELS", "MIN_PIXELS")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}

runner = CliRunner()


# ---- the installed console scripts ---------------------------------------------------------------------------------

def vlprep_launcher() -> list[str]:
    """The installed `vlprep` command of this interpreter's environment (or the module, when not installed)."""
    script = Path(sys.executable).with_name("vlprep")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "vlprep"]


@dataclass
class Run:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:  # shown by failing asserts
        return (f"$ {' '.join(self.command)}\nexit {self.returncode} after {self.seconds:.1f} s\n"
                f"--- stdout (tail) ---\n{self.stdout[-3000:]}\n--- stderr (tail) ---\n{self.stderr[-4000:]}")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict:
        return json.loads(self.stdout)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without ms-swift pixel settings (they would change the runs), offline, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in PIXEL_ENV}
    env.update(OFFLINE)
    env.update(extra or {})
    return env


def start(tool: str, *args: str | Path, cwd: Path, env: dict[str, str] | None = None
          ) -> tuple[subprocess.Popen, float]:
    """`tool ARGS` (a console script of this environment, or a path) started in `cwd`."""
    command = [str(BIN / tool), *map(str, args)]
    process = subprocess.Popen(command, cwd=cwd, env=child_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    return process, time.perf_counter()


def finish(started: tuple[subprocess.Popen, float], timeout: float = 600) -> Run:
    process, began = started
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return Run(list(map(str, process.args)), process.returncode, stdout, stderr, time.perf_counter() - began)


def run(tool: str, *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> Run:
    return finish(start(tool, *args, cwd=cwd, env=env), timeout)


def failed_checks(stderr: str) -> dict[str, tuple[str, str]]:
    """{check name: (its FAIL line, the fix line after it)} from `vltrain fit`'s check listing."""
    lines = [line.strip() for line in stderr.splitlines()]
    found = {}
    for index, line in enumerate(lines):
        if line.startswith("FAIL ") and ":" in line:
            fix = lines[index + 1] if index + 1 < len(lines) else ""
            found[line[len("FAIL "):].split(":", 1)[0]] = (line, fix)
    return found


# ---- the CLI in this process ---------------------------------------------------------------------------------------

def lint_json(*args: str) -> tuple[int, dict[str, Any]]:
    """`vlprep lint -q --format json ARGS`: its exit code (0 or 1) and report."""
    result = runner.invoke(app, ["lint", "-q", "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def codes_by_line(report: dict[str, Any]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    for diagnostic in report["diagnostics"]:
        found[diagnostic["line"]].add(diagnostic["code"])
    return dict(found)


def stats_json(*args: Any) -> dict[str, Any]:
    """`vlprep stats ARGS --format json`, which must succeed."""
    result = runner.invoke(app, [*map(str, ["stats", *args]), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])  # ms-swift's import logs one INFO line first


# ---- model folders that ship code ----------------------------------------------------------------------------------

def marker_module(folder: Path, module: str, marker: Path, source: str = "") -> Path:
    """`folder/module.py`, which writes its __name__ to `marker` when imported, then runs `source`."""
    path = folder / f"{module}.py"
    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text(__name__)\n" + source)
    return path


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the JSON object in `path` (written back indented)."""
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config, indent=2))
