"""Scaling benchmark: `vlprep cache` in every mode against `swift export --to_cached_dataset`, same data, same run.

    python bench/cache_bench.py [--sizes 1000,5000,20000] [--swift-sizes 1000,5000] [--workers W] [--out DIR]

1. data: generated photo-like JPEGs of 1–4 MP (200 by default, 5 truncated) and, per size, that many unique ms-swift
   `messages` records referencing them (bench/common.py; made once, reused);
2. start-up: a 1-record file through `vlprep cache --fast --verify 0` and `vlprep lint --fast` (and `lint --fast
   --max-length`, which loads the tokenizer as cache must), three times each, interleaved; the medians;
3. per size: `swift export --model DIR --model_type qwen3_vl --dataset FILE --to_cached_dataset true --dataset_num_proc W
   --split_dataset_ratio 0 --max_length 10000000` (at the `--swift-sizes` only: its cost is linear in the records, so
   at the other sizes the line through its measured points stands in, marked "est."), then `vlprep cache` with its
   defaults, `--fast`, `--verify 0` and `--fast --verify 0`; each timed as a subprocess (wall clock, imports included);
4. lengths: every record both tools keep, matched by its first user message (swift's rows carry no line numbers and are
   shuffled), must have the same `lengths` in every vlprep mode; the lines swift drops must be vlprep's rejects;
5. a table of wall s, records/s and swift/vlprep at each size, the machine's load, and the targets of issue #11 as
   PASS/FAIL; results in OUT/results.json.

Exit status 1 when any length differs, the rejects differ, or a tool fails; speed targets are reported only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CpuWatch, PeakRss, ensure_bench_data, mb, print_table, ratio  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SWIFT_MAX_LENGTH = 10_000_000
# ms-swift reads these from the environment when it loads the processor; vlprep takes flags instead. Both tools must
# count with the same (default) limits, so they are removed from the subprocesses' environment.
PIXEL_ENV = ("MAX_PIXELS", "MIN_PIXELS", "IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "MAX_RATIO",
             "SPATIAL_MERGE_SIZE", "ROOT_IMAGE_DIR")


# ------------------------------------------------------------------------------------------------------ processes

@dataclass
class Run:
    label: str
    cmd: list[str]
    wall_s: float
    cpu_s: float  # user + sys of the whole (waited-for) process tree
    others: float  # share of the machine's CPUs other processes used meanwhile
    returncode: int
    log: Path
    peak_rss: int  # summed RSS of the process tree, polled every 0.5 s

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PIXEL_ENV}
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def timed(label: str, cmd: list[str], log: Path, cwd: Path) -> Run:
    with open(log, "w") as sink:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch = CpuWatch()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd, env=child_env())
        monitor = PeakRss(proc.pid, interval=0.5, pss_every=1 << 30)  # RSS only: cheap enough not to disturb
        proc.wait()
        wall = time.perf_counter() - started
        monitor.stop()
        watch.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Run(label, cmd, wall, cpu, watch.others_share, proc.returncode, log, monitor.peak_rss)


def venv_exe(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: activate the project's virtual environment (. .venv/bin/activate)")
    return found


def fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


def model_dir(out: Path) -> Path:
    """A copy of the embedded processor folder (tokenizer + processor configs + config.json, no weights)."""
    from vlprep.counting.processor import embedded_processor_dir

    source = embedded_processor_dir()
    if not (source / "config.json").is_file():
        sys.exit(f"{source} has no config.json; ms-swift needs one")
    target = fresh(out / "model")
    shutil.copytree(source, target)
    return target


def run_swift(label: str, file: Path, model: Path, out_dir: Path, workers: int, log: Path) -> Run:
    cmd = [venv_exe("swift"), "export", "--model", str(model), "--model_type", "qwen3_vl", "--dataset", str(file),
           "--to_cached_dataset", "true", "--output_dir", str(fresh(out_dir)), "--dataset_num_proc", str(workers),
           "--split_dataset_ratio", "0", "--max_length", str(SWIFT_MAX_LENGTH)]
    # relative image paths in the JSONL are relative to its folder; ms-swift resolves them against the working folder
    return timed(label, cmd, log, cwd=file.parent)


def run_vlprep(label: str, file: Path, out_dir: Path, workers: int, log: Path, extra: tuple[str, ...] = ()) -> Run:
    cmd = [venv_exe("vlprep"), "cache", str(file), "--out", str(fresh(out_dir)), "-q", "--workers", str(workers),
           *extra]
    return timed(label, cmd, log, cwd=file.parent)


# ----------------------------------------------------------------------------------------------------- comparison

def first_user(messages: Any) -> str | None:
    for message in messages or []:
        if isinstance(message, str):  # a Json column read without decoding
            message = json.loads(message)
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content, sort_keys=True)
    return None


def input_keys(file: Path) -> tuple[dict[str, int], int]:
    """first user message -> 1-based line; and how many lines shared a key with an earlier one."""
    keys: dict[str, int] = {}
    duplicates = 0
    with open(file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            key = first_user(json.loads(line).get("messages"))
            if key in keys:
                duplicates += 1
            else:
                keys[key] = number
    return keys, duplicates


def swift_lengths(split: Path, keys: dict[str, int]) -> tuple[dict[int, int], int]:
    """line -> length of ms-swift's rows; and how many rows matched no input line (or the same one twice)."""
    from datasets import load_from_disk

    if not split.is_dir():
        return {}, 0
    table = load_from_disk(str(split))
    lengths: dict[int, int] = {}
    unmatched = 0
    for messages, value in zip(table["messages"], table["lengths"]):
        line = keys.get(first_user(messages))
        if line is None or line in lengths:
            unmatched += 1
            continue
        lengths[line] = max(value) if isinstance(value, list) else int(value)
    return lengths, unmatched


def vlprep_lengths(out_dir: Path, keys: dict[str, int]) -> tuple[dict[int, int], int, dict[int, list[str]]]:
    """line -> length of vlprep's rows (train + val); rows whose message key disagrees with vlprep_line; rejects."""
    from datasets import load_from_disk

    lengths: dict[int, int] = {}
    inconsistent = 0
    for name in ("train", "val"):
        split = out_dir / name
        if not split.is_dir():
            continue
        table = load_from_disk(str(split))
        for messages, value, line in zip(table["messages"], table["lengths"], table["vlprep_line"]):
            if keys.get(first_user(messages)) != line:
                inconsistent += 1
            lengths[int(line)] = max(value) if isinstance(value, list) else int(value)
    rejects: dict[int, list[str]] = {}
    try:
        with open(out_dir / "rejects.jsonl", encoding="utf-8") as handle:
            for raw in handle:
                entry = json.loads(raw)
                rejects[int(entry["line"])] = list(entry.get("codes", []))
    except OSError:
        pass
    return lengths, inconsistent, rejects


@dataclass
class Comparison:
    label: str
    both: int
    mismatches: list[tuple[int, int, int]]  # (line, swift, vlprep)
    only_swift: list[int]
    only_vlprep: list[int]


def compare(label: str, swift: dict[int, int], ours: dict[int, int]) -> Comparison:
    both = swift.keys() & ours.keys()
    mismatches = sorted((line, swift[line], ours[line]) for line in both if swift[line] != ours[line])
    return Comparison(label, len(both), mismatches, sorted(swift.keys() - ours.keys()),
                      sorted(ours.keys() - swift.keys()))


_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$")


def swift_errors(log: Path) -> Counter[str]:
    """Exception lines of the tracebacks ms-swift logs for rows it deletes (it logs at most 10 per worker)."""
    found: Counter[str] = Counter()
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        match = _EXCEPTION.match(line.strip())
        if match:
            found[f"{match.group(1)}: {match.group(2)[:90]}"] += 1
    deleted = text.count("the data will be deleted")
    if deleted:
        found["(tracebacks logged, 'the data will be deleted')"] = deleted
    return found


# ---------------------------------------------------------------------------------------------------------- output

def failed(run: Run, ok: tuple[int, ...]) -> bool:
    if run.returncode in ok:
        return False
    print(f"{run.label}: exited {run.returncode} after {run.wall_s:.1f} s (peak RSS {mb(run.peak_rss)}) "
          f"({' '.join(run.cmd)}); log {run.log}:\n{run.tail()}", file=sys.stderr)
    if "abruptly died" in run.tail():
        print(f"{run.label}: a datasets.map worker died without a Python error: usually the kernel's OOM killer "
              f"(see dmesg); this machine has {mb(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))} of "
              f"memory shared with everything else running on it", file=sys.stderr)
    return True


MODES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vlprep cache", ()),
    ("vlprep cache --fast", ("--fast",)),
    ("vlprep cache --verify 0", ("--verify", "0")),
    ("vlprep cache --fast --verify 0", ("--fast", "--verify", "0")),
)
# issue #11: (records, mode, minimum swift/vlprep ratio)
TARGETS = ((5000, "vlprep cache", 40.0), (5000, "vlprep cache --fast", 50.0),
           (5000, "vlprep cache --fast --verify 0", 150.0), (1000, "vlprep cache --fast --verify 0", 60.0))
STARTUP_TARGET = 1.5  # 1-record `cache --fast --verify 0` over `lint --fast`


@dataclass
class SizeResult:
    records: int
    swift: Run | None
    swift_wall_s: float  # measured, or the linear estimate
    runs: dict[str, Run]
    cached: dict[str, int]
    mismatches: dict[str, int]
    same_rejects: dict[str, bool]


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def linear(points: dict[int, float]) -> tuple[float, float]:
    """(start-up s, s per record) of the line through the measured points (one point: through the origin)."""
    if len(points) == 1:
        (n, wall), = points.items()
        return 0.0, wall / n
    (n1, w1), (n2, w2) = sorted(points.items())[0], sorted(points.items())[-1]
    slope = (w2 - w1) / (n2 - n1)
    return w1 - slope * n1, slope


def startup(out: Path, first_line: str, workers: int, logs: Path) -> dict[str, float]:
    """Median wall s over three interleaved runs of each command on a 1-record file."""
    tiny = out / "one-record.jsonl"
    tiny.write_text(first_line)
    commands = {
        "vlprep cache --fast --verify 0": [venv_exe("vlprep"), "cache", str(tiny), "--out", str(out / "startup-cache"),
                                           "-q", "--fast", "--verify", "0", "--force", "--workers", str(workers)],
        "vlprep lint --fast": [venv_exe("vlprep"), "lint", str(tiny), "--fast", "--workers", str(workers)],
        "vlprep lint --fast --max-length 100000": [venv_exe("vlprep"), "lint", str(tiny), "--fast", "--max-length",
                                                   "100000", "--workers", str(workers)],
    }
    walls: dict[str, list[float]] = {label: [] for label in commands}
    for attempt in range(4):  # the first round warms the page cache and is not counted
        for label, cmd in commands.items():
            run = timed(label, cmd, logs / f"startup-{len(walls[label])}.log", cwd=tiny.parent)
            if run.returncode not in (0, 1):
                sys.exit(f"{label} exited {run.returncode}: {run.tail()}")
            if attempt:
                walls[label].append(run.wall_s)
    return {label: sorted(values)[1] for label, values in walls.items()}


def measure_size(n: int, args: argparse.Namespace, out: Path, model: Path, workers: int, logs: Path,
                 run_swift_here: bool) -> tuple[SizeResult, Any]:
    images, data = ensure_bench_data(out, argparse.Namespace(records=n, images=args.images,
                                                             truncated=args.truncated, seed=args.seed))
    keys, duplicates = input_keys(data.path)
    if duplicates:
        sys.exit(f"{duplicates} input records share their first user message; cannot match rows")
    for entry in images.entries:  # into the page cache, so no timed run pays for the first read alone
        images.path(entry).read_bytes()
    swift = None
    if run_swift_here:
        print(f"  swift export --to_cached_dataset, {n:,} records ...", flush=True)
        swift = run_swift("swift export", data.path, model, out / f"swift-{n}", workers, logs / f"swift-{n}.log")
        if failed(swift, (0,)):
            sys.exit(1)
        print(f"    {swift.wall_s:.1f} s", flush=True)
        for text, count in swift_errors(swift.log).most_common(3):
            print(f"    swift log: {count} x {text}")
    runs: dict[str, Run] = {}
    for label, extra in MODES:
        print(f"  {label}, {n:,} records ...", flush=True)
        folder = out / f"vlprep-{n}-{len(runs)}"
        runs[label] = run_vlprep(label, data.path, folder, workers, logs / f"vlprep-{n}-{len(runs)}.log", extra)
        if failed(runs[label], (0, 1)):
            sys.exit(1)
        print(f"    {runs[label].wall_s:.1f} s", flush=True)
    swift_len = swift_lengths(out / f"swift-{n}" / "train", keys)[0] if swift else None
    cached, mismatches, same_rejects = {}, {}, {}
    reference: dict[int, int] | None = None
    for index, label in enumerate(runs):
        ours, _, rejected = vlprep_lengths(out / f"vlprep-{n}-{index}", keys)
        cached[label] = len(ours)
        reference = reference if reference is not None else ours
        against = swift_len if swift_len is not None else reference
        mismatches[label] = len(compare(label, against, ours).mismatches)
        if swift_len is not None:
            same_rejects[label] = set(rejected) == set(range(1, n + 1)) - swift_len.keys()
        else:
            same_rejects[label] = set(ours) == set(reference)
    result = SizeResult(n, swift, swift.wall_s if swift else 0.0, runs, cached, mismatches, same_rejects)
    return result, data


def verification_cost(data_path: Path, model: Path, records: int = 8) -> dict[str, float]:
    """What one verified record costs ms-swift's encoder child (1 encoder, this machine): the child's start (import
    ms-swift, load the processor: until its first answer, on a text-only record), then `records` bench records encoded
    as the cache encodes a batch of sampled ones (the original lines through one ms-swift loader call + the template,
    and each cached row through the template), and `records` others as the row alone (the template's share). Different records for the
    two, so no image is decoded twice (a second encode of the same record would find warm caches)."""
    from vlprep.counting.settings import CountSettings
    from vlprep.cache.swift_oracle import SwiftOracle

    lines = data_path.read_text(encoding="utf-8").splitlines()[:2 * records]
    rows = []
    for line in lines:
        record = json.loads(line)
        record["images"] = [str((data_path.parent / ref).resolve()) for ref in record["images"]]
        rows.append((record, line))
    text_only = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
    started = time.perf_counter()
    with SwiftOracle(str(model), CountSettings().environment()) as oracle:
        oracle.encode(text_only)
        ready = time.perf_counter() - started
        started = time.perf_counter()
        oracle.submit_batch([(key, record, line) for key, (record, line) in enumerate(rows[:records])],
                            base_dir=str(data_path.parent))
        for _ in range(records):
            oracle.take()
        both = (time.perf_counter() - started) / records
        started = time.perf_counter()
        for record, _ in rows[records:]:
            oracle.encode(record)
        row_only = (time.perf_counter() - started) / len(rows[records:])
    return {"encoder_ready_s": ready, "per_record_s": both, "template_encode_s": row_only,
            "loader_and_second_encode_s": both - row_only}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=[1000, 5000, 20000], help="record counts (default 1000,5000,20000)")
    parser.add_argument("--swift-sizes", type=sizes, default=[1000, 5000],
                        help="the sizes swift export runs at (default 1000,5000); others use its linear fit")
    parser.add_argument("--images", type=int, default=200, help="distinct JPEGs (default 200)")
    parser.add_argument("--truncated", type=int, default=5, help="of which planted truncated (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "cache", help="working folder")
    parser.add_argument("--workers", type=int, default=None,
                        help="vlprep --workers and swift --dataset_num_proc (default: all cores)")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    load_start = os.getloadavg()
    from importlib.metadata import version
    print(f"machine: {cores} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"ms-swift {version('ms-swift')}, datasets {version('datasets')}, vlprep {version('vlprep')}; "
          f"load average {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f} at start")
    model = model_dir(out)
    logs = fresh(out / "logs")
    logs.mkdir()

    results: list[SizeResult] = []
    first_line = ""
    for n in args.sizes:
        print(f"{n:,} records:", flush=True)
        result, data = measure_size(n, args, out, model, workers, logs, n in args.swift_sizes)
        results.append(result)
        first_line = first_line or data.path.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    measured = {r.records: r.swift.wall_s for r in results if r.swift}
    base, per_record = linear(measured) if measured else (0.0, 0.0)
    for r in results:
        if r.swift is None:
            r.swift_wall_s = base + per_record * r.records
    print("start-up, 1-record file ...", flush=True)
    start = startup(out, first_line, workers, logs)
    print("the verification's cost per record (ms-swift's encoder child, 1 encoder) ...", flush=True)
    data_path = out / f"records-{args.sizes[0]}.jsonl"
    cost = verification_cost(data_path, model)

    print()
    rows = []
    for r in results:
        swift_label = f"{r.swift_wall_s:.1f}" + ("" if r.swift else " est.")
        rows.append((f"{r.records:,}", "swift export --to_cached_dataset", swift_label,
                     f"{r.records / r.swift_wall_s:,.1f}", "1.0x", f"{r.swift.cpu_s:.1f}" if r.swift else "–",
                     f"{r.swift.others:.0%}" if r.swift else "–", "–", "–"))
        for label, run in r.runs.items():
            rows.append((f"{r.records:,}", label, f"{run.wall_s:.1f}", f"{r.records / run.wall_s:,.1f}",
                         ratio(r.swift_wall_s / run.wall_s) + ("" if r.swift else " est."), f"{run.cpu_s:.1f}",
                         f"{run.others:.0%}", f"{r.cached[label]:,}", str(r.mismatches[label])))
    print_table(rows, ("records", "tool", "wall s", "records/s", "swift/this", "CPU s", "others", "rows cached",
                       "length mismatches"))
    print(f"swift export's cost is linear in the records: {base:.1f} s + {per_record * 1000:.1f} s per 1,000 "
          f"(line through its measured sizes {sorted(measured)}); 'est.' marks sizes it was not run at.")
    print("wall = around the subprocess, start-up and imports included; CPU s = user+sys of the process tree; "
          f"others = share of the {cores} cores other processes used meanwhile.")
    print("start-up (1 record, median of 3): " + ", ".join(f"{label} {wall:.2f} s" for label, wall in start.items()))
    print(f"verification, per sampled record on one encoder (a batch of 8 lines): {cost['per_record_s']:.2f} s "
          f"(template encode of the row {cost['template_encode_s']:.2f} s; ms-swift's loader on the original line + "
          f"its encode {cost['loader_and_second_encode_s']:.2f} s); the encoder child answers its first record after "
          f"{cost['encoder_ready_s']:.1f} s (importing ms-swift, loading the processor)")
    load_end = os.getloadavg()
    busiest = max(run.others for r in results for run in [*r.runs.values(), *([r.swift] if r.swift else [])])
    print(f"load average {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} at the end (this benchmark "
          f"included); other processes used at most {busiest:.0%} of the CPUs during a timed run")

    print()
    status = 0
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    by_size = {r.records: r for r in results}
    for n, label, target in TARGETS:
        r = by_size.get(n)
        if r is None:
            print(f"target: {n:,} records, {label} >= {target:g}x swift export -> not measured (size not run)")
            continue
        value = r.swift_wall_s / r.runs[label].wall_s
        print(f"target: {n:,} records, {label} >= {target:g}x swift export -> {ratio(value)}"
              f"{'' if r.swift else ' (est.)'}  {verdict(value >= target)}")
    startup_ratio = start["vlprep cache --fast --verify 0"] / start["vlprep lint --fast"]
    print(f"target: 1-record cache --fast --verify 0 <= {STARTUP_TARGET:g}x lint --fast -> {startup_ratio:.2f}x  "
          f"{verdict(startup_ratio <= STARTUP_TARGET)}")
    mismatches = sum(sum(r.mismatches.values()) for r in results)
    rejects_ok = all(all(r.same_rejects.values()) for r in results)
    print(f"target: 0 length mismatches against swift export (every mode, every size) -> {mismatches}  "
          f"{verdict(mismatches == 0)}")
    print(f"target: swift drops exactly the lines vlprep rejects -> {verdict(rejects_ok)}")
    if mismatches or not rejects_ok:
        status = 1

    summary = {
        "cores": cores, "workers": workers, "load_start": load_start, "load_end": load_end,
        "swift_linear": {"startup_s": base, "s_per_record": per_record, "measured_at": sorted(measured)},
        "startup_s": start, "verification_cost": cost,
        "sizes": [{"records": r.records, "swift_wall_s": r.swift_wall_s, "swift_measured": r.swift is not None,
                   "runs": {label: {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "others_share": run.others,
                                    "peak_rss": run.peak_rss, "cmd": run.cmd, "rows": r.cached[label],
                                    "length_mismatches": r.mismatches[label], "same_rejects": r.same_rejects[label]}
                            for label, run in r.runs.items()}} for r in results],
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"\nresults: {out / 'results.json'}; logs: {logs}")
    return status


if __name__ == "__main__":
    sys.exit(main())
