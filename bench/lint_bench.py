"""Benchmark `vlprep lint` against a naive single-process decode loop, on the same generated data.

    python bench/lint_bench.py [--records N] [--images K] [--out DIR] [--memory/--no-memory] [--workers W]

1. naive baseline, in this process: per line json.loads, per image reference Image.open + load() (a full decode);
2. `vlprep lint FILE --format json -q` as a subprocess (default workers: all cores), full-decode mode and `--fast`;
   wall time is time.perf_counter() around the subprocess, so it includes interpreter start-up and imports;
3. a table (wall s, records/s, images/s, ratio vs naive) and a findings check: a few JPEGs are planted truncated (cut at
   60%), so the records the naive loop failed to decode must be exactly the records full mode reports I004 on;
4. memory: peak RSS (and PSS) of the `vlprep lint --fast` process tree on a 10k- and a 100k-record file;
5. exit status 1 when full-mode findings differ from the naive baseline (or vlprep fails); the speed targets
   (full ≥ 3× naive, fast ≥ 20× naive) are reported PASS/FAIL but do not change the exit status.

Images are generated once into DIR/images and reused while their parameters stay the same (see bench/common.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import PIL
from PIL import Image, features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (CpuWatch, PeakRss, RecordsInfo, add_data_arguments, ensure_bench_data, ensure_records,  # noqa: E402
                    mb, print_table, ratio)

REPO = Path(__file__).resolve().parent.parent
TARGET_FULL = 3.0
TARGET_FAST = 20.0


# ----------------------------------------------------------------------------------------------------------- naive

@dataclass
class NaiveResult:
    label: str
    wall_s: float
    cpu_s: float
    others: float  # share of the machine's CPU other processes used meanwhile
    records: int
    image_refs: int
    decodes: int
    failed_lines: set[int] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # image path -> first error message


def naive_lint(path: Path, memo: bool = False) -> NaiveResult:
    """The baseline: one process, json.loads per line, Image.open + full load() per image reference.

    With memo=True each distinct image is decoded once (informational: shows how much of vlprep's lead is its cache).
    """
    base = path.parent
    records = refs = decodes = 0
    failed: set[int] = set()
    errors: dict[str, str] = {}
    seen: dict[str, bool] = {}
    watch = CpuWatch()
    started, cpu_started = time.perf_counter(), time.process_time()
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            record = json.loads(line)
            records += 1
            bad = False
            for ref in record.get("images", []):
                refs += 1
                full = os.path.join(base, ref)
                if memo and full in seen:
                    bad |= not seen[full]
                    continue
                decodes += 1
                try:
                    with Image.open(full) as image:
                        image.load()
                    ok = True
                except Exception as error:  # noqa: BLE001 - any failure to open/decode counts as broken
                    ok = False
                    errors.setdefault(full, f"{type(error).__name__}: {error}")
                seen[full] = ok
                bad |= not ok
            if bad:
                failed.add(number)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    others = watch.stop().others_share
    label = "naive+memo (info)" if memo else "naive (1 proc)"
    return NaiveResult(label, wall, cpu, others, records, refs, decodes, failed, errors)


# ---------------------------------------------------------------------------------------------------------- vlprep

@dataclass
class VlprepRun:
    label: str
    wall_s: float
    cpu_s: float  # user + sys of the whole process tree (workers included)
    others: float
    returncode: int
    report: dict[str, Any] | None
    stderr: str
    peak_rss: int
    peak_pss: int
    peak_procs: int

    @property
    def records(self) -> int:
        return self.report["summary"]["records"] if self.report else 0

    def lines_with(self, code: str) -> set[int]:
        return {d["line"] for d in (self.report or {}).get("diagnostics", []) if d["code"] == code}

    @property
    def counts(self) -> dict[str, int]:
        return self.report["summary"]["counts"] if self.report else {}


def vlprep_exe() -> list[str]:
    here = Path(sys.executable).parent / "vlprep"
    if here.exists():
        return [str(here)]
    found = shutil.which("vlprep")
    if not found:
        sys.exit("vlprep not found: activate the project's virtual environment (. .venv/bin/activate)")
    return [found]


def run_vlprep(label: str, file: Path, out_dir: Path, fast: bool, workers: int | None, parse: bool = True
               ) -> VlprepRun:
    cmd = vlprep_exe() + ["lint", str(file), "--format", "json", "-q"]
    if fast:
        cmd.append("--fast")
    if workers:
        cmd += ["--workers", str(workers)]
    report_path = out_dir / f"report-{file.stem}-{'fast' if fast else 'full'}.json"
    with open(report_path, "w") as stdout:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch = CpuWatch()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
        monitor = PeakRss(proc.pid)
        _, stderr = proc.communicate()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        monitor.stop()
        watch.stop()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    report = None
    if parse or proc.returncode not in (0, 1):
        try:
            report = json.loads(report_path.read_text())
        except ValueError:
            report = None
    elif proc.returncode in (0, 1):
        report = _summary_only(report_path)
    return VlprepRun(label, wall, cpu, watch.others_share, proc.returncode, report, stderr, monitor.peak_rss,
                     monitor.peak_pss, monitor.peak_procs)


def _summary_only(report_path: Path) -> dict[str, Any] | None:
    """Read just the summary from the end of a (possibly large) streamed JSON report."""
    with open(report_path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - (1 << 20)))
        tail = handle.read().decode("utf-8", errors="replace")
    marker = tail.rfind('"summary": ')
    if marker < 0:
        return None
    try:
        body = tail[marker + len('"summary": '):].rstrip()
        return {"summary": json.loads(body[:-1] if body.endswith("}}") else body), "diagnostics": []}
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------- output

def describe_failure(run: VlprepRun) -> str:
    return f"{run.label}: vlprep exited {run.returncode}\n{run.stderr[-3000:]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, REPO / "bench-out" / "lint")
    parser.add_argument("--workers", type=int, default=None, help="pass --workers to vlprep (default: its own)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure peak memory on 10k and 100k records (default on)")
    parser.add_argument("--memory-sizes", default="10000,100000", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    cores = len(os.sched_getaffinity(0))
    load_start = os.getloadavg()[0]
    print(f"machine: {cores} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo') or 'no'})")
    images, data = ensure_bench_data(out, args)
    workers_note = args.workers or f"default = all {cores} cores"
    print(f"vlprep: {' '.join(vlprep_exe())} (workers: {workers_note})\n")

    # warm-up: byte-compile/import once and read the images into the page cache, so no mode pays for it alone
    subprocess.run(vlprep_exe() + ["rules", "--format", "json"], stdout=subprocess.DEVNULL, check=True)
    tiny = out / "one-record.jsonl"
    tiny.write_text(data.path.read_text().split("\n", 1)[0] + "\n")
    startup = run_vlprep("startup", tiny, out, fast=True, workers=args.workers)
    for entry in images.entries:
        images.path(entry).read_bytes()

    print("running naive baseline ...", flush=True)
    naive = naive_lint(data.path)
    memo = naive_lint(data.path, memo=True)
    print("running vlprep lint (full) ...", flush=True)
    full = run_vlprep("vlprep full", data.path, out, fast=False, workers=args.workers)
    print("running vlprep lint --fast ...", flush=True)
    fast = run_vlprep("vlprep --fast", data.path, out, fast=True, workers=args.workers)

    status = 0
    for run in (startup, full, fast):
        if run.returncode not in (0, 1) or run.report is None:
            print(describe_failure(run), file=sys.stderr)
            status = 1
    if status:
        return status

    print()
    rows = []
    for run, refs, extra in (
            (naive, naive.image_refs, f"{naive.decodes:,} decodes"),
            (memo, memo.image_refs, f"{memo.decodes:,} decodes"),
            (full, data.image_refs, f"peak RSS {mb(full.peak_rss)}"),
            (fast, data.image_refs, f"peak RSS {mb(fast.peak_rss)}")):
        rows.append((run.label, f"{run.wall_s:.2f}", f"{run.records / run.wall_s:,.0f}", f"{refs / run.wall_s:,.0f}",
                     ratio(naive.wall_s / run.wall_s), f"{run.cpu_s:.2f}", f"{run.others:.0%}", extra))
    print_table(rows, ("mode", "wall s", "records/s", "images/s", "vs naive", "CPU s", "others", "note"))
    print(f"(images/s = image references checked per second; naive is timed in-process, vlprep around the subprocess, "
          f"so vlprep includes its start-up: {startup.wall_s:.2f} s for a 1-record file;\n"
          f" CPU s = user+sys of the mode's processes; others = share of the {cores} cores that other processes "
          f"used meanwhile)")
    load_end = os.getloadavg()[0]
    busiest = max(run.others for run in (naive, memo, full, fast, startup))
    print(f"load average (1 min): {load_start:.2f} at start, {load_end:.2f} now (this benchmark included)"
          + (f"\nWARNING: other processes used up to {busiest:.0%} of the CPUs during a timed mode; "
             f"wall-time ratios are noisy (compare CPU s, or rerun on a quiet machine)" if busiest > 0.10 else ""))

    # findings
    print()
    planted = set(data.broken_lines)
    full_i004 = full.lines_with("I004")
    fast_i004 = fast.lines_with("I004")
    match = naive.failed_lines == full_i004
    print(f"findings: naive failed to decode {len(naive.failed_lines)} records; vlprep full reports I004 on "
          f"{len(full_i004)}; planted {len(planted)}")
    print(f"  full mode vs naive: {'MATCH' if match else 'MISMATCH'}")
    if not match:
        print(f"    only naive: {sorted(naive.failed_lines - full_i004)[:20]}")
        print(f"    only vlprep full: {sorted(full_i004 - naive.failed_lines)[:20]}")
        status = 1
    print(f"  naive vs planted: {'MATCH' if naive.failed_lines == planted else 'MISMATCH'}")
    print(f"  --fast reports I004 on {len(fast_i004)} records (header-only mode is documented to miss truncation)")
    if naive.errors:
        sample = next(iter(naive.errors.values()))
        print(f"  naive error example: {sample}")
    others_full = {k: v for k, v in full.counts.items() if k != "I004"}
    others_fast = dict(fast.counts)
    print(f"  other rule counts: full {others_full or 'none'}; fast {others_fast or 'none'}")

    # targets
    print()
    full_ratio, fast_ratio = naive.wall_s / full.wall_s, naive.wall_s / fast.wall_s
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print(f"target: full >= {TARGET_FULL:g}x naive   -> {ratio(full_ratio)}  {verdict(full_ratio >= TARGET_FULL)}")
    print(f"target: fast >= {TARGET_FAST:g}x naive  -> {ratio(fast_ratio)}  {verdict(fast_ratio >= TARGET_FAST)}")
    print(f"target: full-mode findings == naive      -> {'PASS' if match else 'FAIL'}")
    print(f"(for scale: naive+memo, which decodes each distinct image once, is {ratio(naive.wall_s / memo.wall_s)} "
          f"naive; "
          f"full is {ratio(memo.wall_s / full.wall_s)} naive+memo)")

    results: dict[str, Any] = {
        "cores": cores, "records": data.records, "image_refs": data.image_refs, "images": len(images.entries),
        "naive_s": naive.wall_s, "naive_memo_s": memo.wall_s, "full_s": full.wall_s, "fast_s": fast.wall_s,
        "startup_s": startup.wall_s, "naive_cpu_s": naive.cpu_s, "full_cpu_s": full.cpu_s, "fast_cpu_s": fast.cpu_s,
        "others": {r.label: r.others for r in (naive, memo, full, fast)}, "load_start": load_start,
        "load_end": load_end, "full_ratio": full_ratio, "fast_ratio": fast_ratio, "findings_match": match,
    }

    if args.memory:
        print("\nmemory: vlprep lint --fast -q --format json (peak of the summed process tree, polled every 50 ms)",
              flush=True)
        mem_rows, peaks = [], []
        for n in (int(s) for s in args.memory_sizes.split(",")):
            info: RecordsInfo = ensure_records(out / f"records-{n}.jsonl", images, n, seed=args.seed + 1)
            run = run_vlprep(f"{n:,} records", info.path, out, fast=True, workers=args.workers, parse=False)
            if run.returncode not in (0, 1) or run.report is None:
                print(describe_failure(run), file=sys.stderr)
                return 1
            peaks.append(run)
            mem_rows.append((run.label, f"{run.wall_s:.2f}", f"{run.records / run.wall_s:,.0f}", mb(run.peak_rss),
                             mb(run.peak_pss), str(run.peak_procs), f"{run.others:.0%}"))
        print_table(mem_rows, ("file", "wall s", "records/s", "peak RSS", "peak PSS", "procs", "others"))
        if len(peaks) >= 2:
            small, large = peaks[0], peaks[-1]
            print(f"peak RSS ratio {large.label} / {small.label}: {large.peak_rss / small.peak_rss:.2f}x "
                  f"(PSS {large.peak_pss / max(1, small.peak_pss):.2f}x) for "
                  f"{large.records / small.records:.0f}x the records")
            print("(RSS sums count pages the forked workers share with the parent once per process; "
                  "PSS splits them)")
            results["memory"] = [{"records": r.records, "wall_s": r.wall_s, "peak_rss": r.peak_rss,
                                  "peak_pss": r.peak_pss} for r in peaks]

    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nexit status {status} ({'full-mode findings match the naive baseline' if status == 0 else 'FAILED'})")
    return status


if __name__ == "__main__":
    sys.exit(main())
