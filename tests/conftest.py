"""Shared session fixtures: a private VLPREP_CACHE_DIR (the embedded processor is built once per session and ~/.cache is
never touched), the embedded processor loaded from it, and a tiny random-weight Qwen3-VL model directory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tiers import (pytest_collection_modifyitems, pytest_fixture_setup, pytest_runtest_call,  # noqa: F401 - hooks
                   pytest_runtest_setup)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests never download anything (as `make test` sets it)


@pytest.fixture(scope="session", autouse=True)
def vlprep_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$VLPREP_CACHE_DIR for the whole session (subprocesses inherit it); a module may still override it for itself."""
    root = tmp_path_factory.mktemp("vlprep-session-cache")

    def forget_loaded_processors() -> None:  # without importing transformers for tests that never load a processor
        if (module := sys.modules.get("vlprep.counting.processor")) is not None:
            module.load_processor.cache_clear()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLPREP_CACHE_DIR", str(root))
        forget_loaded_processors()
        yield root
        forget_loaded_processors()


@pytest.fixture(scope="session")
def embedded_processor(vlprep_cache_dir: Path) -> Any:
    """The embedded Qwen3-VL processor (built into the session cache folder on first use)."""
    from vlprep.counting.processor import load_processor

    return load_processor()


@pytest.fixture(scope="session")
def embedded_processor_path(embedded_processor: Any) -> Path:
    """The embedded processor's directory: a model directory for ms-swift's template (no weights)."""
    from vlprep.counting.processor import resolve_model_dir

    return resolve_model_dir(None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> Path:
    """A seeded random-weight tiny Qwen3-VL with the embedded processor: trains on 2 CPU cores in seconds."""
    from vltrain.tiny import build_random_model

    return build_random_model(tmp_path_factory.mktemp("tiny-model") / "tiny")
