"""ms-swift encoder children, one per counting setting, started on first use (each costs ~10 s to start)."""

from __future__ import annotations

from pathlib import Path

from vlprep.counting.settings import CountSettings
from vlprep.cache.swift_oracle import SwiftOracle


class Oracles:
    def __init__(self, model_dir: Path, settings: dict[str, CountSettings]) -> None:
        self._model_dir = str(model_dir)
        self._settings = settings
        self._started: dict[str, SwiftOracle] = {}

    def __getitem__(self, setting: str) -> SwiftOracle:
        if setting not in self._started:
            self._started[setting] = SwiftOracle(self._model_dir, self._settings[setting].environment())
        return self._started[setting]

    def close(self) -> None:
        for oracle in self._started.values():
            oracle.close()
