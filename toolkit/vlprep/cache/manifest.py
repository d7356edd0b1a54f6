"""The cache manifest (`DIR/manifest.json`, schemas/manifest.schema.json): how a cache was built, and its integrity.

Readers (`vltrain fit`, `vlprep` commands that take a cache) call `load_manifest`, which refuses a folder that is not a
vlprep cache and any cache file (Arrow data, the splits' dataset_info.json / state.json, rejects.jsonl) whose SHA-256
differs from the one recorded, or that was added or removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any
from vlprep import __version__
from vlprep.errors import ProblemsFound

MANIFEST_NAME = "manifest.json"
CACHE_FORMAT = "vlprep-cache"
MANIFEST_VERSION = 1
_LIBRARIES = ("vlprep", "transformers", "ms-swift", "datasets", "pyarrow", "pillow", "qwen-vl-utils", "tokenizers",
              "torch")


class ManifestError(ProblemsFound):
    pass


def vlprep_version() -> str:
    return __version__  # not the installed metadata: vlprep also runs from a source tree on PYTHONPATH (the GPU check)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


# What `datasets.load_from_disk` reads (the data, the features in dataset_info.json, the file list in state.json),
# the rejects, and the token probe (vlprep.counting.token_probe).
_DATA_FILE_PATTERNS = ("*/*.arrow", "*/dataset_info.json", "*/state.json", "rejects.jsonl", "token_probe.json")


def data_file_checksums(cache_dir: Path) -> dict[str, str]:
    """SHA-256 of every file of the splits, of rejects.jsonl and token_probe.json, keyed by path relative to the
    cache folder."""
    paths = sorted({path for pattern in _DATA_FILE_PATTERNS for path in cache_dir.glob(pattern)})
    return {str(path.relative_to(cache_dir)): file_sha256(path) for path in paths}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_cache_dir(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST_NAME).read_text()).get("format") == CACHE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def partial_dir(out: Path) -> Path:
    """Where the build of `out` runs until it is finished, verified and renamed into place."""
    return out.parent / f".{out.name}.vlprep-partial"


def partial_build_note(out: Path) -> str | None:
    """What an unfinished build of `out` left (after Ctrl-C, a full disk, a kill): None when there is none."""
    work = out if out.name.endswith(".vlprep-partial") else partial_dir(out)
    if not (work / "state.pkl").is_file():
        return None
    done = ""
    with contextlib.suppress(OSError, ValueError, IndexError, KeyError):
        last = json.loads((work / "journal.jsonl").read_text().splitlines()[-1])
        done = f" ({last['shards']} complete shard(s): {sum(last['rows'].values()):,} row(s) cached, " \
               f"{last['rejected']:,} rejected so far)"
    return (f"{work} is an unfinished build{done}: the same `vlprep cache` command with --resume completes it "
            "(the cache appears at its --out only then)")


def load_manifest(cache_dir: Path, verify_checksums: bool = True) -> dict[str, Any]:
    """Read and check a cache's manifest; with `verify_checksums`, refuse a cache whose files were modified."""
    path = cache_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        unfinished = partial_build_note(cache_dir)
        if unfinished:
            raise ManifestError(f"{cache_dir} is not a finished vlprep cache: {unfinished}") from None
        raise ManifestError(f"{cache_dir} has no {MANIFEST_NAME}: not a vlprep cache (build one with `vlprep cache`)")
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise ManifestError(f"{path} is not a vlprep cache manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"{path} has manifest version {manifest.get('version')}; this vlprep reads "
                            f"{MANIFEST_VERSION}: rebuild the cache")
    if verify_checksums:
        recorded = manifest.get("data_files", {})
        actual = data_file_checksums(cache_dir)
        changed = sorted(name for name in recorded.keys() | actual.keys() if recorded.get(name) != actual.get(name))
        if changed:
            raise ManifestError(f"{cache_dir}: cache file(s) differ from the manifest's checksums "
                                f"(modified, added or removed): {', '.join(changed)}. Rebuild the cache.")
    return manifest
