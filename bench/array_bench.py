"""Memory of reading a large JSON array: peak RSS stays flat as the file grows (it is streamed, never loaded whole).

    python bench/array_bench.py [--size-mb 1024] [--out DIR] [--workers W]

1. generates a pretty-printed JSON array of unique ShareGPT-style text records (about 0.9 KB each in the file) of
   `--size-mb` MB, and one a tenth of that size (both reused while their size and seed stay the same);
2. the reader alone, in a child process: every element span of the file through `vlprep.inputs.formats.open_source(...).units()` (the
   splitter, no parsing): wall time, MB/s, and the process's peak RSS (ru_maxrss);
3. `vlprep lint FILE --fast --format json -q` on both files: wall time, records/s, and the peak RSS summed over its
   process tree (parent and workers, polled; bench/common.PeakRss).

The reader's peak RSS should not depend on the file size. The lint process tree grows a little with the number of
distinct records (duplicate detection keeps a fingerprint and a position, about 100 bytes, per distinct record).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from common import PeakRss, mb, print_table

WORDS = ("image shows a the of and with picture what colour large small red blue green left right top bottom person "
         "people car street building tree sky water dog cat table chart value axis text sign window door").split()
READER = """
import resource, sys, time
from pathlib import Path
from vlprep.inputs.formats import open_source
started = time.perf_counter()
count = sum(1 for _ in open_source(Path(sys.argv[1]), 64 << 20).units())
print(count, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def ensure_array(path: Path, size_mb: int, seed: int = 0) -> int:
    """Write a pretty-printed array of about `size_mb` MB (streamed out, record by record); returns its records."""
    meta = path.with_suffix(".meta.json")
    wanted = {"size_mb": size_mb, "seed": seed, "version": 1}
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("params") == wanted:
        return int(json.loads(meta.read_text())["records"])
    rng = random.Random(seed)
    limit = size_mb << 20
    written = records = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        while written < limit:
            record = {"id": f"{seed}-{records}",
                      "conversations": [{"from": "human", "value": sentence(rng, 12)},
                                        {"from": "gpt", "value": " ".join(sentence(rng, 15) for _ in range(8))}]}
            text = ("" if records == 0 else ",\n") + "  " + json.dumps(record, indent=2).replace("\n", "\n  ")
            out.write(text)
            written += len(text)
            records += 1
        out.write("\n]\n")
    meta.write_text(json.dumps({"params": wanted, "records": records}))
    return records


def reader_alone(path: Path) -> tuple[int, float, int]:
    done = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True, check=True)
    count, wall, peak = done.stdout.split()
    return int(count), float(wall), int(peak)


def lint(path: Path, workers: int | None) -> tuple[float, int, dict]:
    command = [sys.executable, "-m", "vlprep", "lint", str(path), "--fast", "--format", "json", "-q"]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    monitor = PeakRss(process.pid, interval=0.1, pss_every=10)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    monitor.stop()
    if process.returncode not in (0, 1):
        sys.exit(f"vlprep lint failed ({process.returncode}):\n{stderr}")
    return wall, monitor.peak_rss, json.loads(stdout)["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the large array (a tenth is also made)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/array"))
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = sorted({max(1, args.size_mb // 10), args.size_mb})
    reader_rows, lint_rows = [], []
    for size in sizes:
        path = args.out / f"array-{size}mb.json"
        records = ensure_array(path, size)
        file_mb = path.stat().st_size / 2**20
        count, wall, peak = reader_alone(path)
        assert count == records, (count, records)
        reader_rows.append((path.name, f"{file_mb:,.0f}", f"{records:,}", f"{wall:.1f}", f"{file_mb / wall:,.1f}",
                            mb(peak)))
        wall, peak, summary = lint(path, args.workers)
        assert summary["records"] == records, summary
        lint_rows.append((path.name, f"{file_mb:,.0f}", f"{records:,}", f"{wall:.1f}", f"{records / wall:,.0f}",
                          mb(peak)))
    print("reader alone (split into element spans, no parsing):")
    print_table(reader_rows, ("file", "MB", "records", "wall s", "MB/s", "peak RSS"))
    print("vlprep lint --fast (parent and workers):")
    print_table(lint_rows, ("file", "MB", "records", "wall s", "records/s", "peak RSS (tree)"))


if __name__ == "__main__":
    main()
