"""A mixture of caches as ms-swift 4.6 reads it: `--cached_dataset A/train B/train#N`.

ms-swift's `swift.pipelines.utils.get_cached_dataset` loads each path in order, drops the rows over `max_length`
(`_select_dataset`, truncation_strategy delete) and, for a `#N` path, samples N rows with `sample_dataset(...,
shuffle_all=True)` from ONE `np.random.RandomState(data_seed)` shared by the paths in order: N under the rows draws
without replacement (a permutation's first N), N over them repeats the whole set N // rows times, adds a permutation's
first N % rows and shuffles the lot. The parts are concatenated without a shuffle; packing then runs on that order.
`draw` does the same arithmetic on the `lengths` columns, so the rows drawn per source are ms-swift's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vlprep.errors import UsageError


class MixtureError(UsageError):
    """A source list vlprep cannot read as ms-swift would (exit 2)."""


@dataclass(frozen=True)
class Source:
    spec: str  # as given: `DIR` or `DIR#N`
    folder: Path
    sample: int | None  # N rows (ms-swift samples them), or None: every row

    def swift_path(self, split: str) -> str:
        """The path ms-swift's --cached_dataset / --cached_val_dataset takes for this source's split."""
        path = str(self.folder / split)
        return path if self.sample is None or split != "train" else f"{path}#{self.sample}"


def parse_source(spec: str) -> Source:
    """`DIR` or `DIR#N` (N rows, a positive integer); a folder that exists is never split at `#` (as in ms-swift)."""
    text = str(spec)
    folder, sample = Path(text), None
    if not folder.exists() and "#" in text:
        head, size = text.rsplit("#", 1)
        if not size.strip().isdigit():
            raise MixtureError(f"{text}: the size after # must be a whole number of rows (ms-swift's DIR#N), not "
                               f"{size!r}; e.g. {head}#20000")
        sample = int(size)
        if sample == 0:
            raise MixtureError(f"{text}: a size of 0 rows takes nothing from {head}; leave the source out instead")
        folder = Path(head)
    if not folder.exists():
        raise MixtureError(f"{folder}: no such folder (a source is a `vlprep cache` folder, optionally DIR#N)")
    if not folder.is_dir() or not (folder / "manifest.json").is_file() or not (folder / "train").is_dir():
        raise MixtureError(f"{folder} is not a cache: it has no manifest.json and train/ (make one with "
                           "`vlprep cache DATA --out DIR`)")
    return Source(text, folder, sample)


def parse_sources(specs: Sequence[str | Path]) -> list[Source]:
    """Every source parsed; the same cache twice is refused (one entry with #N already repeats or subsamples it)."""
    sources = [parse_source(str(spec)) for spec in specs]
    seen: dict[Path, Source] = {}
    for source in sources:
        key = source.folder.resolve()
        if key in seen:
            raise MixtureError(f"{seen[key].spec} and {source.spec} are the same cache: ms-swift would load it twice "
                               "and train on both copies. Give it once, with #N for N rows (N over its rows repeats "
                               "them)")
        seen[key] = source
    return sources


def is_mixture(targets: Sequence[str | Path]) -> bool:
    """More than one target with a cache among them, or a DIR#N: what `vlprep stats` reads as a mixture (each is
    then parsed as a source, so a missing folder or a file is named as such)."""
    folders = [Path(target) for target in targets]
    sized = any(not folder.exists() and "#" in str(folder) for folder in folders)
    return sized or (len(folders) > 1 and any(folder.is_dir() for folder in folders))


def read_lengths(folder: Path, split: str = "train") -> Any:
    """The split's `lengths` column as an int64 array (a columnar read: no row is decoded)."""
    import numpy as np
    from datasets import load_from_disk

    lengths = load_from_disk(str(folder / split)).data.column("lengths")
    return np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass
class Draw:
    source: Source
    rows: int  # in the cache's split
    dropped: int  # over max_length
    indices: Any  # np.ndarray: the drawn rows, as indices into the cache's split, in ms-swift's order

    @property
    def repeated(self) -> int:
        """Drawn rows that are a repeat of a row already drawn from this source."""
        import numpy as np

        return int(len(self.indices) - len(np.unique(self.indices)))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source.spec, "folder": str(self.source.folder), "sample": self.source.sample,
                "rows_in_cache": self.rows, "dropped_over_max_length": self.dropped, "rows_drawn": len(self.indices),
                "rows_repeated": self.repeated}


def sample_indices(rows: int, sample: int | None, random_state: Any) -> Any:
    """ms-swift's `sample_dataset(dataset, sample, shuffle=True, random_state, shuffle_all=True)` as indices."""
    import numpy as np

    if sample is None:
        return np.arange(rows)
    repeats, remain = divmod(sample, rows)
    idx = np.tile(range(rows), repeats)
    if remain >= 1:
        idx = np.concatenate([idx, random_state.permutation(rows)[:remain]])
    if repeats >= 1:
        random_state.shuffle(idx)
    return idx


def draw(sources: Sequence[Source], lengths: Sequence[Any], max_length: int | None, data_seed: int) -> list[Draw]:
    """The rows ms-swift draws from each source, in order, from one RandomState(data_seed)."""
    import numpy as np

    random_state = np.random.RandomState(data_seed)
    draws = []
    for source, column in zip(sources, lengths):
        kept = np.arange(len(column)) if max_length is None else np.flatnonzero(column <= max_length)
        if len(kept) == 0:
            raise MixtureError(f"{source.spec}: every one of its {len(column):,} train rows is over max_length "
                               f"{max_length} (its shortest: {int(column.min()) if len(column) else 0} tokens), so "
                               "ms-swift would draw nothing from it (and fail on #N); raise --max-length or leave it "
                               "out")
        draws.append(Draw(source, len(column), len(column) - len(kept),
                          kept[sample_indices(len(kept), source.sample, random_state)]))
    return draws


def plan_mixture(specs: Sequence[str | Path], max_length: int | None, data_seed: int) -> list[Draw]:
    """Parse, read every source's lengths and draw as ms-swift will."""
    sources = parse_sources(specs)
    return draw(sources, [read_lengths(source.folder) for source in sources], max_length, data_seed)


def mixture_max_length(limits: Sequence[int | None], given: int | None) -> int | None:
    """--max-length, else the largest cache --max-length (None when no cache had one: nothing is dropped)."""
    if given is not None:
        return given
    known = [limit for limit in limits if limit]
    return max(known) if known else None


def collect_mixture(specs: Sequence[str | Path], with_sizes: bool, workers: int, max_length: int | None,
                    data_seed: int) -> tuple[Any, list[dict[str, Any]]]:
    """The mixture's rows as training gets them (a `Collected` in ms-swift's concatenation order) and, per source,
    its draw and the summary of the rows drawn from it."""
    import numpy as np

    from vlprep.insight.stats import Collected, collect_cache, summary

    sources = parse_sources(specs)
    parts = [collect_cache(source.folder, with_sizes, workers) for source in sources]
    limit = mixture_max_length([part.max_length for part in parts], max_length)
    draws = draw(sources, [np.asarray([row.length for row in part.rows], dtype=np.int64) for part in parts], limit,
                 data_seed)
    per_source, rows = [], []
    for part, drawn in zip(parts, draws):
        taken = [part.rows[int(index)] for index in drawn.indices]
        rows += taken
        own = summary(Collected("cache", part.paths, taken, part.settings, limit, manifest=part.manifest,
                                input_lines=part.input_lines))
        per_source.append({**drawn.to_json(), **{key: own[key] for key in _SOURCE_KEYS}})
    first = parts[0]
    counts = {"rejected": sum(part.manifest["counts"]["rejected"] for part in parts if part.manifest)}
    mixed = Collected("cache", [source.spec for source in sources], rows, first.settings, limit,
                      sum((part.rejects_by_code for part in parts), first.rejects_by_code.__class__()),
                      manifest={"counts": counts}, input_lines=sum(part.input_lines for part in parts),
                      notes=[note for part in parts for note in part.notes])
    return mixed, per_source


_SOURCE_KEYS = ("tokens", "image_tokens", "video_tokens", "text_tokens", "trained_tokens", "image_token_share",
                "video_token_share", "text_token_share", "trained_token_share", "lengths")
