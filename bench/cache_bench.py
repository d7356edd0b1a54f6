"""Benchmark `vlprep cache` against `swift export --to_cached_dataset`, on the same generated data, and check lengths.

    python bench/cache_bench.py [--records N] [--images K] [--out DIR] [--workers W] [--startup/--no-startup]

1. a model folder for ms-swift: a copy of vlprep's embedded processor folder (tokenizer, processor configs and a
   Qwen3VLConfig `config.json`; no weights: `swift export --to_cached_dataset` builds the model on the meta device);
2. `swift export --model DIR --model_type qwen3_vl --dataset FILE --to_cached_dataset true --output_dir OUT/swift
   --dataset_num_proc W --split_dataset_ratio 0 --max_length 10000000` as a subprocess, timed around the subprocess
   (wall clock, so it includes swift's start-up and imports; max_length is set high so no row is dropped for length);
3. `vlprep cache FILE --out OUT/vlprep-full -q --workers W` (full decode, default verification sample) and the same
   with `--fast`, timed the same way, and `--fast --verify 0` (for scale: what the ms-swift re-encoding of the
   verification sample adds; not a target);
4. a record-by-record comparison of `lengths`: ms-swift's rows carry no line numbers (and `swift export` shuffles them,
   `--dataset_shuffle` defaults to true), so rows are matched by their first user message, which the generator makes
   unique (`[index.turn]`); records whose lengths differ, and records present on one side only (with the reasons:
   vlprep's rejects.jsonl codes, the exceptions in swift's log) are counted separately;
5. a summary: wall times, swift/vlprep ratios, records/s, CPU, how busy the rest of the machine was (CpuWatch), and the
   targets (default ≥ 5× faster than swift export, --fast ≥ 30×) as PASS/FAIL; results in OUT/results.json.

Exit status 1 when any matched record's length differs (or a tool fails); the speed targets are reported but do not
change the exit status. Images and records are generated once into OUT and reused (see bench/common.py).
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
from common import (CpuWatch, PeakRss, add_data_arguments, ensure_bench_data, mb, print_table,  # noqa: E402
                    ratio)

REPO = Path(__file__).resolve().parent.parent
TARGET_FULL = 5.0
TARGET_FAST = 30.0
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
    from vlprep.processor import embedded_processor_dir

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


def run_vlprep(label: str, file: Path, out_dir: Path, workers: int, fast: bool, log: Path,
               extra: tuple[str, ...] = ()) -> Run:
    cmd = [venv_exe("vlprep"), "cache", str(file), "--out", str(fresh(out_dir)), "-q", "--workers", str(workers),
           *extra]
    if fast:
        cmd.append("--fast")
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

def short(lines: list[int], limit: int = 15) -> str:
    return ", ".join(map(str, lines[:limit])) + (f", … ({len(lines)} in all)" if len(lines) > limit else "")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, REPO / "bench-out" / "cache")
    parser.add_argument("--workers", type=int, default=None,
                        help="vlprep --workers and swift --dataset_num_proc (default: all cores)")
    parser.add_argument("--startup", action=argparse.BooleanOptionalAction, default=True,
                        help="also time both tools on a 1-record file, for scale (default on)")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HUB_OFFLINE"] = "1"

    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    load_start = os.getloadavg()[0]
    from importlib.metadata import version
    print(f"machine: {cores} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"Pillow {version('pillow')}, ms-swift {version('ms-swift')}, datasets {version('datasets')}, "
          f"vlprep {version('vlprep')}")
    overridden = [k for k in PIXEL_ENV if k in os.environ]
    if overridden:
        print(f"note: removed {', '.join(overridden)} from the tools' environment (both count with default limits)")
    images, data = ensure_bench_data(out, args)
    model = model_dir(out)
    weights = sorted(p.name for p in model.iterdir() if p.suffix in (".safetensors", ".bin", ".pt"))
    print(f"swift model folder: {model} (embedded processor + config.json; weight files: {weights or 'none'})")
    print(f"workers: {workers} (vlprep --workers, swift --dataset_num_proc)\n")

    keys, duplicates = input_keys(data.path)
    if duplicates:
        print(f"ERROR: {duplicates} input records share their first user message; cannot match rows", file=sys.stderr)
        return 1

    # warm-up: read the images into the page cache and import vlprep once, so no timed run pays for it alone
    for entry in images.entries:
        images.path(entry).read_bytes()
    tiny = out / "one-record.jsonl"
    with open(data.path, encoding="utf-8") as handle:
        tiny.write_text(handle.readline())
    logs = fresh(out / "logs")
    logs.mkdir()
    startup: dict[str, Run] = {}
    vl_warm = run_vlprep("vlprep startup", tiny, out / "vlprep-startup", workers, fast=True,
                         log=logs / "vlprep-startup.log")
    if failed(vl_warm, (0, 1)):
        return 1
    if args.startup:
        print("timing start-up on a 1-record file (swift export, vlprep cache --fast) ...", flush=True)
        sw_small = run_swift("swift startup", tiny, model, out / "swift-startup", workers, logs / "swift-startup.log")
        if failed(sw_small, (0,)):
            return 1
        startup = {"swift": sw_small, "vlprep": vl_warm}

    print(f"running swift export --to_cached_dataset on {data.records:,} records ...", flush=True)
    sw = run_swift("swift export", data.path, model, out / "swift", workers, logs / "swift.log")
    print(f"  {sw.wall_s:.1f} s", flush=True)
    print("running vlprep cache (full decode) ...", flush=True)
    full = run_vlprep("vlprep cache", data.path, out / "vlprep-full", workers, fast=False, log=logs / "vlprep-full.log")
    print(f"  {full.wall_s:.1f} s", flush=True)
    print("running vlprep cache --fast ...", flush=True)
    fast = run_vlprep("vlprep cache --fast", data.path, out / "vlprep-fast", workers, fast=True,
                      log=logs / "vlprep-fast.log")
    print(f"  {fast.wall_s:.1f} s", flush=True)
    print("running vlprep cache --fast --verify 0 (vlprep's own work, without the ms-swift re-encoding) ...", flush=True)
    own = run_vlprep("vlprep cache --fast --verify 0", data.path, out / "vlprep-fast-own", workers, fast=True,
                     log=logs / "vlprep-fast-own.log", extra=("--verify", "0"))
    print(f"  {own.wall_s:.1f} s", flush=True)
    if failed(sw, (0,)) | failed(full, (0, 1)) | failed(fast, (0, 1)) | failed(own, (0, 1)):
        for run in (sw, full, fast, own):
            print(f"{run.label}: exit {run.returncode}, {run.wall_s:.1f} s wall, {run.cpu_s:.1f} CPU s, "
                  f"others {run.others:.0%}, peak RSS {mb(run.peak_rss)}", file=sys.stderr)
        return 1

    # ---- lengths
    swift_len, swift_unmatched = swift_lengths(out / "swift" / "train", keys)
    full_len, full_bad, full_rejects = vlprep_lengths(out / "vlprep-full", keys)
    fast_len, fast_bad, fast_rejects = vlprep_lengths(out / "vlprep-fast", keys)
    own_len, _, _ = vlprep_lengths(out / "vlprep-fast-own", keys)
    comparisons = [compare("vlprep cache", swift_len, full_len), compare("vlprep cache --fast", swift_len, fast_len)]

    print()
    rows = []
    for run, cached in ((sw, len(swift_len)), (full, len(full_len)), (fast, len(fast_len)), (own, len(own_len))):
        rows.append((run.label, f"{run.wall_s:.1f}", f"{data.records / run.wall_s:,.1f}",
                     f"{sw.wall_s / run.wall_s:.1f}x", f"{run.cpu_s:.1f}", f"{run.others:.0%}", mb(run.peak_rss),
                     f"{cached:,}"))
    print_table(rows, ("tool", "wall s", "records/s", "swift/this", "CPU s", "others", "peak RSS", "rows cached"))
    print(f"(records/s = input records / wall s; wall is measured around the subprocess, start-up and imports "
          f"included;\n CPU s = user+sys of the process tree; others = share of the {cores} cores other processes used "
          f"meanwhile;\n peak RSS = summed over the process tree, polled every 0.5 s)")
    if startup:
        print(f"start-up on a 1-record file: swift export {startup['swift'].wall_s:.1f} s, "
              f"vlprep cache --fast {startup['vlprep'].wall_s:.1f} s")
    load_end = os.getloadavg()[0]
    timed_runs = [sw, full, fast, own] + list(startup.values())
    busiest = max(run.others for run in timed_runs)
    print(f"load average (1 min): {load_start:.2f} at start, {load_end:.2f} now (this benchmark included)"
          + (f"\nWARNING: other processes used up to {busiest:.0%} of the CPUs during a timed run; "
             f"wall-time ratios are noisy (compare CPU s, or rerun on a quiet machine)" if busiest > 0.10 else ""))

    # ---- findings
    print()
    planted = set(data.broken_lines)
    swift_dropped = sorted(set(range(1, data.records + 1)) - swift_len.keys())
    print(f"swift export: {len(swift_len):,} rows of {data.records:,} "
          f"(dropped {len(swift_dropped)}: {short(swift_dropped) or 'none'}; "
          f"{len(planted & set(swift_dropped))} of them reference a planted truncated image)")
    if swift_unmatched:
        print(f"  {swift_unmatched} swift rows matched no input line (or one already matched)")
    errors = swift_errors(sw.log)
    for text, count in errors.most_common(6):
        print(f"  swift log: {count} x {text}")
    for label, rejects, bad in (("vlprep cache", full_rejects, full_bad), ("vlprep cache --fast", fast_rejects,
                                                                           fast_bad)):
        codes = Counter(code for codes in rejects.values() for code in codes)
        print(f"{label}: rejected {len(rejects)} lines ({dict(codes) or 'none'}; "
              f"{len(planted & rejects.keys())} reference a planted truncated image)")
        if bad:
            print(f"  WARNING: {bad} rows whose first user message does not belong to their vlprep_line")
    status = 0
    for c in comparisons:
        print(f"{c.label} vs swift: {c.both:,} records in both, {len(c.mismatches)} length mismatches; "
              f"only in swift: {len(c.only_swift)}{' (' + short(c.only_swift) + ')' if c.only_swift else ''}; "
              f"only in vlprep: {len(c.only_vlprep)}{' (' + short(c.only_vlprep) + ')' if c.only_vlprep else ''}")
        for line, a, b in c.mismatches[:10]:
            print(f"  line {line}: swift {a}, vlprep {b} ({b - a:+d})")
        if c.mismatches:
            status = 1
    tokens = sorted(swift_len.values())
    if tokens:
        print(f"lengths (swift rows): min {tokens[0]:,}, median {tokens[len(tokens) // 2]:,}, max {tokens[-1]:,}, "
              f"{sum(tokens):,} tokens in all")

    # ---- targets
    print()
    full_ratio, fast_ratio = sw.wall_s / full.wall_s, sw.wall_s / fast.wall_s
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    mismatches = sum(len(c.mismatches) for c in comparisons)
    print(f"target: vlprep cache >= {TARGET_FULL:g}x faster than swift export   -> {ratio(full_ratio)}  "
          f"{verdict(full_ratio >= TARGET_FULL)}")
    print(f"target: vlprep cache --fast >= {TARGET_FAST:g}x faster            -> {ratio(fast_ratio)}  "
          f"{verdict(fast_ratio >= TARGET_FAST)}")
    print(f"(--fast --verify 0: {ratio(sw.wall_s / own.wall_s)}; the 64-record ms-swift verification adds "
          f"{fast.wall_s - own.wall_s:.1f} s to --fast)")
    print(f"target: 0 length mismatches                                 -> {mismatches}  {verdict(mismatches == 0)}")

    results: dict[str, Any] = {
        "cores": cores, "workers": workers, "records": data.records, "image_refs": data.image_refs,
        "images": len(images.entries), "planted_truncated_lines": sorted(planted),
        "runs": {run.label: {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "others_share": run.others,
                             "peak_rss": run.peak_rss,
                             "returncode": run.returncode, "records_per_s": data.records / run.wall_s,
                             "cmd": run.cmd} for run in (sw, full, fast, own)},
        "startup_s": {name: run.wall_s for name, run in startup.items()},
        "ratio_swift_over_vlprep": full_ratio, "ratio_swift_over_vlprep_fast": fast_ratio,
        "targets": {"full": TARGET_FULL, "fast": TARGET_FAST, "full_pass": full_ratio >= TARGET_FULL,
                    "fast_pass": fast_ratio >= TARGET_FAST},
        "rows": {"swift": len(swift_len), "vlprep": len(full_len), "vlprep_fast": len(fast_len)},
        "swift_dropped_lines": swift_dropped, "swift_unmatched_rows": swift_unmatched,
        "swift_log_errors": dict(errors),
        "vlprep_rejects": {str(k): v for k, v in sorted(full_rejects.items())},
        "vlprep_fast_rejects": {str(k): v for k, v in sorted(fast_rejects.items())},
        "comparisons": [{"label": c.label, "both": c.both, "length_mismatches": len(c.mismatches),
                         "mismatch_examples": c.mismatches[:50], "only_swift": c.only_swift,
                         "only_vlprep": c.only_vlprep} for c in comparisons],
        "load_start": load_start, "load_end": load_end,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out / 'results.json'}; logs: {logs}")
    print(f"exit status {status} ({'no length differs' if status == 0 else 'LENGTHS DIFFER'})")
    return status


if __name__ == "__main__":
    sys.exit(main())
