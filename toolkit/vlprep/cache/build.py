"""`vlprep cache`: lint, count and write an ms-swift-ready Arrow cache, accounting for every input line.

Every line ends in exactly one of train / val / rejects: train + val + rejected = input lines, asserted before the cache
is moved into place and recorded in the manifest.

The build runs in a hidden folder beside the target (`.NAME.vlprep-partial`), in shards of `shard_lines` input lines.
After each complete shard the build state (position, tallies, duplicate fingerprints, verification sample) is saved
atomically, so after Ctrl-C or kill -9 `--resume` continues from the last complete shard and produces the same rows,
order and counts as an uninterrupted run. Only a finished, verified cache is renamed into place; a lock on
`.NAME.vlprep-lock` keeps two builds off the same folder (the lock dies with its process, so a stale one is harmless).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pickle
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vlprep.records.diagnostics import RecordResult
from vlprep.run.engine import MAX_LINE_BYTES_DEFAULT, run_on
from vlprep.lint.pictures import DEFAULT_NEAR_DISTANCE, PictureIndex
from vlprep.lint.tally import Tally
from vlprep.cache.split import LengthStats, PendingRows, decide, in_val
from vlprep.cache.manifest import (CACHE_FORMAT, MANIFEST_NAME, MANIFEST_VERSION, data_file_checksums, file_sha256,
                             is_cache_dir, library_versions, now_iso, partial_dir, vlprep_version)
from vlprep.run.pipeline import PipelineOptions
from vlprep.counting.counter import counter_for_model_dir
from vlprep.counting.processor import resolve_model_dir
from vlprep.counting.processor_memo import ProcessorFacts, processor_facts
from vlprep.run.ray_engine import RayUnavailable
from vlprep.inputs.formats import open_source
from vlprep.records.rules import RULES
from vlprep.counting.settings import CountSettings, settings_fingerprint
from vlprep.cache.shapes import encode_cost, record_shape
from vlprep.cache.swift_oracle import OracleExited, SwiftOracle
from vlprep.counting.tokens import TokenCounter
from vlprep.counting.token_probe import PROBE_NAME, PROBE_RECORDS, probe_entry, write_probe
from vlprep.cache.verify import Item, Sample, Verifier
from vlprep.cache.writer import (RejectsWriter, ShardWriter, cache_features, cache_row, concatenate_files,
                                refuse_when_clearly_full, replace_dir, save_split)
from vlprep.errors import UsageError

SPLITS = ("train", "val")
ENCODER_LOG = "encoder.log"  # in the partial build folder: all the ms-swift encoder printed before it died
LONG_RECORD_TOKENS = 8192  # without --max-length, cached records longer than this are summarized at the end


class CacheError(UsageError):
    """A problem with the request (output folder, lock, resume): reported as a usage error."""


@dataclass(frozen=True)
class CacheRequest:
    train_files: list[Path]
    out: Path
    val_files: list[Path] = field(default_factory=list)
    val_ratio: float = 0.0
    seed: int = 42
    split_by: str = "picture"  # or "record" (vlprep.cache.split)
    near_distance: int = DEFAULT_NEAR_DISTANCE
    model: str | None = None
    trust_remote_code: bool = False
    settings: CountSettings = field(default_factory=CountSettings)
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    max_length: int | None = None
    embed_images: bool = False
    verify: int | None = 16  # records at random, besides one of every shape; None: every record
    workers: int = 1
    force: bool = False
    resume: bool = False
    shard_lines: int = 10_000
    max_line_bytes: int = MAX_LINE_BYTES_DEFAULT
    engine: str = "local"  # or "ray" (vlprep.run.ray_engine): the same output; not part of the request key
    ray_address: str | None = None


@dataclass
class BuildState:
    """Everything a resumed build needs to continue exactly where the last complete shard ended."""

    request_key: str
    tally: Tally
    sample: Sample
    shards: int = 0
    position: tuple[int, int] = (0, 0)  # (file index, units of that file done: lines of JSONL, records of an array)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    rejected: int = 0
    stats: dict[str, LengthStats] = field(default_factory=lambda: {name: LengthStats() for name in SPLITS})
    rejects_by_code: Counter[str] = field(default_factory=Counter)
    cached_with_warnings: Counter[str] = field(default_factory=Counter)  # accepted records, by warning/info code
    long_records: int = 0  # accepted records over LONG_RECORD_TOKENS (counted without --max-length only)
    longest: tuple[int, str, int] | None = None  # (length, file, line) of the longest accepted record
    complete: bool = False  # every input line is in a shard: only assembly and verification remain
    probe: list[dict[str, Any]] = field(default_factory=list)  # the first accepted records (vlprep.counting.token_probe)
    vlprep_version: str | None = field(default_factory=vlprep_version)
    pending: PendingRows = field(default_factory=PendingRows)  # rows whose side the picture groups decide at the end


def check_output_folder(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CacheError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not is_cache_dir(out):
            raise CacheError(f"--out {out} exists and is not a vlprep cache; refusing to replace it")
        if not force:
            raise CacheError(f"--out {out} already holds a vlprep cache; pass --force to replace it")


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """An exclusive lock on the output folder; the OS drops it when its process dies, so stale locks cannot block.

    The lock file is removed when the build ends, however it ends (a kill -9 leaves it; the next build takes it over
    and removes it). Removing a lock file that others may open is safe with this protocol: the holder unlinks it
    while still holding the lock, and a process that got the lock re-checks that the path still names the file it
    locked, starting over if not, so two builds never hold locks on two different files.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / f".{out.name}.vlprep-lock"
    while True:
        handle = open(lock_path, "a+")
        try:  # a POSIX record lock: released when this process dies, and not inherited by forked workers
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise CacheError(f"{out} is being built by {holder}; wait for it to finish (a lock held by a dead "
                             "process is released automatically)") from None
        if _same_file(handle, lock_path):
            break
        handle.close()  # the holder removed it between our open and our lock: take the lock on the new file
    try:  # from here on the lock file is removed however the build ends (a full disk while writing the pid too)
        handle.seek(0)
        handle.truncate()
        handle.write(f"vlprep cache (pid {os.getpid()})\n")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()


def _same_file(handle: TextIO, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


def describe_inputs(files: list[Path], role: str, max_line_bytes: int) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of each input as stored (compressed or not) and its `lines`: its units (Source.count)."""
    return [{"path": str(file.resolve()), "role": role, "size": file.stat().st_size, "sha256": file_sha256(file),
             "lines": open_source(file, max_line_bytes).count()} for file in files]


def request_key(request: CacheRequest, inputs: list[dict[str, Any]]) -> str:
    """What decides the output: a resumed build must have been started with the same inputs and settings."""
    decisive = {
        "inputs": [(entry["path"], entry["sha256"], entry["role"]) for entry in inputs],
        "val_ratio": request.val_ratio, "seed": request.seed, "model": request.model, "split_by": request.split_by,
        "near_distance": request.near_distance,
        "settings": request.settings.values(), "pipeline": repr(request.pipeline),
        "max_length": request.max_length, "embed_images": request.embed_images, "verify": request.verify,
        "shard_lines": request.shard_lines, "max_line_bytes": request.max_line_bytes,
    }
    return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class BuildOutcome:
    manifest: dict[str, Any]
    rejects_by_code: Counter[str]


def build_cache(request: CacheRequest, progress: Any = None, announce: Callable[[str], None] | None = None
                ) -> BuildOutcome:
    """Build (or with request.resume, finish) the cache; `progress(results, total, done)` may wrap the result stream,
    `announce(message)` is told what is being done while no record is (loading, assembling, verifying)."""
    say = announce or (lambda message: None)
    check_output_folder(request.out, request.force)
    if not request.resume:
        refuse_when_clearly_full(request.train_files + request.val_files, request.out)
    with output_lock(request.out), contextlib.ExitStack() as stack:
        # ms-swift takes seconds to import: its encoders start first and load while this process gets ready
        say("finding the processor" + (f" of {request.model}" if request.model else " (embedded Qwen3-VL)"))
        model_dir = resolve_model_dir(request.model, request.trust_remote_code)
        if request.verify != 0:
            say("starting ms-swift's encoder for the verification (it loads in the background)")
        oracle = stack.enter_context(SwiftOracle(str(model_dir), request.settings.environment(), request.workers,
                                                 request.trust_remote_code)) if request.verify != 0 else None
        say("loading the processor's tokenizer and the counting code")
        facts = processor_facts(model_dir, request.trust_remote_code)
        counter = counter_for_model_dir(model_dir, request.trust_remote_code, request.settings, facts)
        say("reading the inputs (checksums, line counts)")
        inputs = (describe_inputs(request.train_files, "train", request.max_line_bytes)
                  + describe_inputs(request.val_files, "val", request.max_line_bytes))
        work = partial_dir(request.out)
        state = _start_or_resume(request, work, request_key(request, inputs), sum(entry["lines"] for entry in inputs))
        try:
            verifier = Verifier(state.sample, counter, oracle) if oracle is not None else None
            if not state.complete:
                say(_engine_start(request))
                _write_shards(request, counter, verifier, work, state, inputs, progress)
            manifest = _finish(request, facts, counter, verifier, work, state, inputs, say)
        except KeyboardInterrupt:
            raise  # the partial build stays for --resume
        except RayUnavailable:
            raise  # the cluster, not the data: the partial build stays for --resume
        except OSError:
            raise  # the machine (a full disk, an I/O error), not the data: the partial build stays for --resume
        except OracleExited as exited:  # not the data's fault: the partial build stays for --resume
            (work / ENCODER_LOG).write_text(exited.log)
            raise
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        shutil.rmtree(work, ignore_errors=True)
    return BuildOutcome(manifest, state.rejects_by_code)


def _engine_start(request: CacheRequest) -> str:
    if request.engine == "local":
        return f"starting {request.workers} worker process(es)"
    where = f"the cluster at {request.ray_address}" if request.ray_address else \
        f"a local Ray instance with {request.workers} CPU(s)"
    return f"starting Ray tasks on {where}"


def _start_or_resume(request: CacheRequest, work: Path, key: str, total_lines: int) -> BuildState:
    state_path = work / "state.pkl"
    if request.resume:
        try:
            state: BuildState = pickle.loads(state_path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError):
            raise CacheError(f"--resume: no interrupted build of {request.out} to resume (nothing in {work}); "
                             "run without --resume") from None
        made_by, this = getattr(state, "vlprep_version", None), vlprep_version()
        if made_by != this:  # its shards and state may not mean the same to this version
            raise CacheError(f"--resume: the interrupted build was made by vlprep {made_by or '(an older version)'}, "
                             f"this is vlprep {this}; start over without --resume")
        if state.request_key != key:
            raise CacheError("--resume: the inputs or settings differ from the interrupted build's; run the "
                             "interrupted command again with --resume, or start over without --resume")
        for leftover in (work / "shards").glob("*"):  # files of the shard that was being written
            if _shard_index(leftover) >= state.shards:
                leftover.unlink()
        return state
    shutil.rmtree(work, ignore_errors=True)
    (work / "shards").mkdir(parents=True)
    state = BuildState(request_key=key, tally=Tally(frozenset(RULES), pictures=PictureIndex(request.near_distance)), sample=Sample(request.verify, request.seed,
                                                                                   total_lines))
    _save_state(work, state)
    return state


def _shard_index(path: Path) -> int:
    return int(path.name.split("-")[1].split(".")[0])


def _save_state(work: Path, state: BuildState) -> None:
    temporary = work / "state.pkl.tmp"
    temporary.write_bytes(pickle.dumps(state))
    os.replace(temporary, work / "state.pkl")
    with open(work / "journal.jsonl", "a") as journal:
        journal.write(json.dumps({"shards": state.shards, "position": state.position, "rows": state.rows,
                                  "rejected": state.rejected}) + "\n")


def _results(request: CacheRequest, counter: TokenCounter, start: tuple[int, int]
             ) -> Iterator[tuple[int, RecordResult]]:
    """(file index, result) for every line of the train files, then of the val files, from `start`."""
    options = dataclasses.replace(request.pipeline, keep_records=True, max_length=request.max_length)
    files = [file.resolve() for file in request.train_files + request.val_files]
    index_of = {str(file): index for index, file in enumerate(files)}
    for result in run_on(request.engine, request.ray_address, files, options, request.workers, request.max_line_bytes,
                         counter_factory=lambda: counter, start=start):
        yield index_of[result.file], result


class _Shard:
    def __init__(self, work: Path, index: int, embed_images: bool) -> None:
        shards = work / "shards"
        features = cache_features(embed_images)
        self.splits = {name: ShardWriter(shards / f"{name}-{index:05d}.arrow", features) for name in SPLITS}
        self.rejects = RejectsWriter(shards / f"rejects-{index:05d}.jsonl")
        self.lines = 0

    def close(self) -> None:
        for writer in self.splits.values():
            writer.close()
        self.rejects.close()


def _write_shards(request: CacheRequest, counter: TokenCounter, verifier: Verifier | None, work: Path,
                  state: BuildState, inputs: list[dict[str, Any]], progress: Any) -> None:
    train_files = len(request.train_files)
    first_line = [sum(entry["lines"] for entry in inputs[:index]) for index in range(len(inputs))]
    results: Iterable[tuple[int, RecordResult]] = _results(request, counter, state.position)
    if progress is not None:
        results = progress(results, sum(entry["lines"] for entry in inputs), state.tally.records)
    shard = _Shard(work, state.shards, request.embed_images)
    for file_index, result in results:
        state.tally.observe(result)
        if result.record is None or result.counted is None or result.has_errors(state.tally.active):
            state.rejects_by_code.update(shard.rejects.write(result))
            state.rejected += 1
        else:
            if _grouped(request):  # written with the train rows; its side is decided once every group is known
                shard.splits["train"].write(cache_row(result, request.embed_images))
                state.pending.add(state.tally.records - 1, result.counted.length)
            else:
                is_val = file_index >= train_files or in_val(request.seed, file_index, result.number,
                                                             request.val_ratio)
                split = "val" if is_val else "train"
                shard.splits[split].write(cache_row(result, request.embed_images))
                state.rows[split] += 1
                state.stats[split].add(result.counted.length)
            if len(state.probe) < PROBE_RECORDS:
                state.probe.append(probe_entry(counter, result.file, result.line, result.record, result.images))
            _note_cached(request, state, result)
            if verifier is not None:
                base_dir = os.path.abspath(request.pipeline.image_root or Path(result.file).parent)
                verifier.offer(Item(first_line[file_index] + result.number - 1, result.file, result.line, result.record,
                                    result.images, result.text, base_dir, cache_row(result, embed_images=False),
                                    record_shape(result, counter.settings), encode_cost(result),
                                    tuple(result.videos)))
        state.position = (file_index, result.number)
        shard.lines += 1
        if shard.lines >= request.shard_lines:
            shard.close()
            state.shards += 1
            _save_state(work, state)
            shard = _Shard(work, state.shards, request.embed_images)
    shard.close()
    state.shards += 1
    state.complete = True
    _save_state(work, state)


def _grouped(request: CacheRequest) -> bool:
    return request.val_ratio > 0 and request.split_by == "picture"


def _note_cached(request: CacheRequest, state: BuildState, result: RecordResult) -> None:
    """What the end-of-build summary says about accepted records: their warnings, and the very long ones."""
    state.cached_with_warnings.update({d.code for d in result.diagnostics if d.code in state.tally.active})
    length = result.counted.length
    if request.max_length is None and length > LONG_RECORD_TOKENS:
        state.long_records += 1
    if state.longest is None or length > state.longest[0]:
        state.longest = (length, result.file, result.line)


def _long_records(request: CacheRequest, state: BuildState) -> dict[str, Any] | None:
    if request.max_length is not None:
        return None
    longest = state.longest
    return {"over": LONG_RECORD_TOKENS, "count": state.long_records,
            "longest": {"file": longest[1], "line": longest[2], "length": longest[0]} if longest else None}


def _finish(request: CacheRequest, facts: ProcessorFacts, counter: TokenCounter, verifier: Verifier | None, work: Path,
            state: BuildState, inputs: list[dict[str, Any]], say: Callable[[str], None]) -> dict[str, Any]:
    """Assemble the shards, verify, write the manifest and move the cache into place."""
    say("assembling the splits")
    final = work / "cache"
    shutil.rmtree(final, ignore_errors=True)  # left by an assembly that was interrupted
    final.mkdir()
    shards = work / "shards"
    grouped = decide(state.pending, state.tally.pictures, request.seed, request.val_ratio) if _grouped(request) else None
    if grouped is not None:
        for is_val, length in zip(grouped.val, state.pending.lengths):
            state.rows["val" if is_val else "train"] += 1
            state.stats["val" if is_val else "train"].add(length)
    for name in SPLITS:
        fingerprint = hashlib.sha256(f"{state.request_key}:{state.vlprep_version}:{name}".encode()).hexdigest()[:16]
        source = "train" if grouped is not None else name
        keep = None if grouped is None else [is_val is (name == "val") for is_val in grouped.val]
        rows = save_split(sorted(shards.glob(f"{source}-*.arrow")), final / name, fingerprint, keep)
        assert rows == state.rows[name], f"{name}: {rows} rows assembled, {state.rows[name]} written"
    concatenate_files(sorted(shards.glob("rejects-*.jsonl")), final / "rejects.jsonl")
    write_probe(final / PROBE_NAME, counter, state.probe)
    if verifier is not None:
        say("waiting for ms-swift's encoder to finish verifying the sample")
    verified = verifier.finish() if verifier is not None else 0
    counts = {"input_lines": state.tally.records, "train": state.rows["train"], "val": state.rows["val"],
              "rejected": state.rejected}
    counts["identity_holds"] = counts["train"] + counts["val"] + counts["rejected"] == counts["input_lines"]
    assert counts["identity_holds"] and counts["input_lines"] == sum(entry["lines"] for entry in inputs), \
        "every input line must end in exactly one of train / val / rejects"
    family = counter.settings.family
    manifest = {
        "format": CACHE_FORMAT, "version": MANIFEST_VERSION, "created": now_iso(),
        "tool": library_versions(),
        "processor": {"model": request.model or "embedded", "fingerprint": facts.fingerprint,
                      "template": family.template, "family": family.name, "model_type": family.model_type,
                      "trust_remote_code": request.trust_remote_code},
        "counting": {**counter.settings.to_json(), "fingerprint": settings_fingerprint(counter.settings)},
        "max_length": request.max_length,
        "image_check": {"full_decode": request.pipeline.limits.full_decode,
                        "max_image_pixels": request.pipeline.limits.max_pixels},
        "images": {"embedded": request.embed_images,
                   "root": str(request.pipeline.image_root) if request.pipeline.image_root else None},
        "inputs": inputs,
        "split": {"val_ratio": request.val_ratio, "seed": request.seed,
                  **(grouped.summary if grouped is not None else {"by": "file" if request.val_files else "record"}),
                  "val_files": [str(file.resolve()) for file in request.val_files]},
        "counts": counts,
        "lengths": {name: value.to_json() for name, value in state.stats.items()},
        "rejects_by_code": dict(sorted(state.rejects_by_code.items())),
        "warnings_by_code": {code: n for code, n in sorted(state.tally.counts.items())
                             if RULES[code].severity.value != "error"},
        "cached_with_warnings": dict(sorted(state.cached_with_warnings.items())),
        "long_records": _long_records(request, state),
        "verification": {"image_pad_count": "asserted for every record",
                         "ms_swift_template": {"mode": "all" if request.verify is None else "sample",
                                               "records_checked": verified, "mismatches": 0,
                                               "compared": "vlprep's count and the cached row's encode against "
                                                           "ms-swift's encode of the original line",
                                               **({"random": verified - state.sample.coverage,
                                                   "for_coverage": state.sample.coverage} if request.verify else {}),
                                               **({"shapes": dict(sorted(state.sample.covered.items()))}
                                                  if request.verify != 0 else {})}},
        "build": {"shards": state.shards, "shard_lines": request.shard_lines},
        "data_files": data_file_checksums(final),
    }
    (final / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    replace_dir(final, request.out)
    return manifest
