"""Insight at scale: `vlprep stats` and `vlprep report` on large caches, in one run with the cache build.

    python bench/stats_bench.py [--sizes 100000,1000000] [--out DIR]

Per size: the bench records (bench/common.py, made once), `vlprep cache --fast --verify 0`, then `vlprep stats DIR
--format json` (the cache's stored per-row facts, a columnar read, plus ms-swift's packing), `vlprep stats DIR
DIR2#N/2 --format json` (a mixture: the cache and a hard-linked copy sampled to half) and `vlprep report DIR`; each
timed as a subprocess (wall clock, imports included) with its peak RSS. Results in OUT/stats_results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_bench import timed, venv_exe  # noqa: E402
from common import ensure_bench_data, mb, print_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--truncated", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vlprep-stats-bench"))
    args = parser.parse_args()
    out = args.out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    vlprep = venv_exe("vlprep")
    rows, results = [], []
    for n in (int(size) for size in args.sizes.split(",")):
        _, data = ensure_bench_data(out, argparse.Namespace(records=n, images=args.images, truncated=args.truncated,
                                                            seed=args.seed))
        cache, copy = out / f"cache-{n}", out / f"cache-{n}-copy"
        for folder in (cache, copy):
            shutil.rmtree(folder, ignore_errors=True)
        runs = [timed("cache --fast --verify 0", [vlprep, "cache", str(data.path), "--out", str(cache), "--fast",
                                                  "--verify", "0", "-q"], logs / f"cache-{n}.log", out)]
        subprocess.run(["cp", "-al", str(cache), str(copy)], check=True)  # a second source, no extra disk
        runs.append(timed("stats", [vlprep, "stats", str(cache), "--format", "json"], logs / f"stats-{n}.log", out))
        runs.append(timed("stats mixture (2 sources)", [vlprep, "stats", str(cache), f"{copy}#{n // 2}", "--format",
                                                        "json"], logs / f"mixture-{n}.log", out))
        runs.append(timed("report", [vlprep, "report", str(cache), "--out", str(out / f"report-{n}.html")],
                          logs / f"report-{n}.log", out))
        for run in runs:
            rows.append((f"{n:,}", run.label, f"{run.wall_s:.1f}", mb(run.peak_rss), str(run.returncode),
                         f"{run.others:.0%}"))
            results.append({"records": n, "step": run.label, "wall_s": round(run.wall_s, 2),
                            "peak_rss_bytes": run.peak_rss, "returncode": run.returncode,
                            "others_cpu_share": round(run.others, 3)})
        shutil.rmtree(copy, ignore_errors=True)
        print_table(rows, ("records", "step", "wall s", "peak RSS", "exit", "others' CPU"))
    (out / "stats_results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
