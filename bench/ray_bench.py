"""Measure `vlprep cache --engine ray` against the number of Ray workers, and the driver's share of the work.

    python bench/ray_bench.py [--workers 1 2] [--records N] [--images K] [--out DIR] [--fast] [--parquet]

Each configuration (Ray with W CPUs, and the local engine with W worker processes for reference) runs in a fresh
Python process (`--child`), which calls vlprep's own `build_cache` (what `vlprep cache --verify 0` runs) on the same
generated data (bench/common.py) and times it from the inside, so that Ray's start-up, which is slow and noisy on a
loaded machine, is measured apart from the work:
- `startup s`: from the start of the build to the first record's result (imports, tokenizer, `ray.init`, the first
  task), `assembly s`: from the last result to the end (closing the shards, assembling the splits, the manifest);
- `rec/s`: records over the time from the first result to the last; `rec/s/worker` that divided by W;
- `driver CPU ms/rec`: the CPU time of the driver process (all its threads, Ray's included; not the worker
  processes) between the first and the last result, per record: the cost of planning tasks, receiving and unpickling
  results, the tally, the split and writing the Arrow shards. Its inverse is the most records/s one driver can take,
  whatever the number of workers; `driver share` is that CPU time over the same wall time.
With `--parquet` the same records are cached from a Parquet file with every image embedded as `{bytes, path}` (row
groups of 64 rows): each result then carries its images' bytes back to the driver (as data URIs), which writes them
into the cache, so the driver's cost per record grows with the image bytes.
Verification is off (`--verify 0`): it re-encodes a fixed-size sample with ms-swift, not a per-worker cost.

Results are printed and saved to OUT/ray-results.json; the interpretation, a model of where the curve bends on a
cluster, is in bench/RAY_SCALING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_data_arguments, ensure_bench_data, print_table  # noqa: E402


def driver_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(data: Path, out: Path, engine: str, workers: int, fast: bool) -> dict[str, Any]:
    """One timed build in this process (run with --child)."""
    from vlprep.cache.build import CacheRequest, build_cache
    from vlprep.cli.app import pipeline_options
    from vlprep.checks.images import ImageLimits

    marks: dict[str, float] = {}

    def progress(results: Iterable[Any], total: int, done: int) -> Iterator[Any]:
        for count, result in enumerate(results, start=1):
            if count == 1:
                marks.update(first=time.perf_counter(), first_cpu=driver_cpu_s())
            marks.update(last=time.perf_counter(), last_cpu=driver_cpu_s(), records=count)
            yield result

    shutil.rmtree(out, ignore_errors=True)
    options = pipeline_options(None, fast, ImageLimits.max_pixels, ImageLimits.max_ratio, 64, 60.0)
    request = CacheRequest(train_files=[data], out=out, pipeline=options, verify=0, workers=workers, engine=engine)
    started = time.perf_counter()
    manifest = build_cache(request, progress).manifest
    ended = time.perf_counter()
    window = marks["last"] - marks["first"]
    records = int(marks["records"])
    driver = marks["last_cpu"] - marks["first_cpu"]
    return {"engine": engine, "workers": workers, "records": records, "wall_s": ended - started,
            "startup_s": marks["first"] - started, "assembly_s": ended - marks["last"],
            "records_per_s": (records - 1) / window, "driver_cpu_ms_per_record": 1e3 * driver / (records - 1),
            "driver_share": driver / window, "counts": manifest["counts"], "load_avg": os.getloadavg()[0]}


def embedded_parquet(records_file: Path, target: Path) -> Path:
    """The records as Parquet with their images embedded as {bytes, path} structs (written once, reused)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if target.is_file():
        return target
    rows = []
    for line in records_file.read_text().splitlines():
        record = json.loads(line)
        images = [{"bytes": (records_file.parent / ref).read_bytes(), "path": Path(ref).name}
                  for ref in record.get("images", [])]
        rows.append({"messages": record["messages"], "images": images})
    temporary = target.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows), temporary, row_group_size=64)
    temporary.rename(target)
    return target


def input_file(args: argparse.Namespace, out: Path) -> Path:
    records_file = out / f"records-{args.records}.jsonl"
    return embedded_parquet(records_file, out / f"records-{args.records}-embedded.parquet") if args.parquet \
        else records_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser, Path("bench-out/ray"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fast", action="store_true", help="header-only image checks (vlprep --fast)")
    parser.add_argument("--parquet", action="store_true", help="read the records from Parquet, images embedded")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if args.child:
        engine, workers = args.child[0], int(args.child[1])
        print(json.dumps(child(input_file(args, out), out / f"cache-{engine}-{workers}", engine, workers, args.fast)))
        return
    out.mkdir(parents=True, exist_ok=True)
    ensure_bench_data(out, args)
    print(f"input: {input_file(args, out)} ({input_file(args, out).stat().st_size / 1e6:,.0f} MB)")
    results: list[dict[str, Any]] = []
    for workers in args.workers:
        for engine in ("ray", "local"):
            command = [sys.executable, __file__, "--records", str(args.records), "--images", str(args.images),
                       "--truncated", str(args.truncated), "--seed", str(args.seed), "--out", str(out),
                       "--child", engine, str(workers), *(["--fast"] if args.fast else []),
                       *(["--parquet"] if args.parquet else [])]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{engine} with {workers} worker(s) failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    baseline = {r["engine"]: r["counts"] for r in results}
    assert all(r["counts"] == baseline[r["engine"]] == baseline["local"] for r in results), "the engines disagree"
    rows = [(r["engine"], str(r["workers"]), f"{r['wall_s']:.1f}", f"{r['startup_s']:.1f}", f"{r['assembly_s']:.1f}",
             f"{r['records_per_s']:.1f}", f"{r['records_per_s'] / r['workers']:.1f}",
             f"{r['driver_cpu_ms_per_record']:.2f}", f"{r['driver_share']:.0%}", f"{r['load_avg']:.1f}")
            for r in results]
    print_table(rows, ("engine", "workers", "wall s", "startup s", "assembly s", "rec/s", "rec/s/worker",
                       "driver CPU ms/rec", "driver share", "load avg"))
    name = "ray-results-parquet.json" if args.parquet else "ray-results.json"
    (out / name).write_text(json.dumps({"cpus": os.cpu_count(), "fast": args.fast, "parquet": args.parquet,
                                        "results": results}, indent=2) + "\n")
    print(f"{os.cpu_count()} CPUs; results in {out / name}")


if __name__ == "__main__":
    main()
