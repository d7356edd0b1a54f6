"""Near-duplicate pictures: how well the fingerprint separates copies from other pictures, what it costs `vlprep lint`,
and how the picture index grows.

    python bench/near_duplicates.py [--scenes 300] [--lint-images 600] [--index-sizes 100000,1000000] [--out DIR]

1. quality: `--scenes` generated landscapes (tests/picture_fixtures.py: one scene type, every picture different), each
   saved five ways; the share of copies within each distance (found), and of distinct pairs within it (false positives);
2. cost: `vlprep lint -j 1 --format json` (full decode, and --fast) on `--lint-images` records of one 480x360 JPEG each,
   with the fingerprint and with it switched off (vlprep.checks.images._fingerprint and _file_digest patched to
   return None), records/s;
3. scale: `--index-sizes` fingerprints (clusters of near copies, like a scraped set) observed by vlprep.lint.pictures'
   PictureIndex, one record each, in a fresh process: seconds and peak RSS (ru_maxrss) per size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "toolkit")]
from picture_fixtures import save_copies, scene  # noqa: E402
from vlprep.checks.fingerprint import distance  # noqa: E402
from vlprep.checks.images import ImageLimits, check_image  # noqa: E402

THRESHOLDS = (6, 8, 10, 12)


def quality(scenes: int, folder: Path) -> dict:
    found: dict[str, list[int]] = {}
    originals = []
    for seed in range(scenes):
        paths = save_copies(seed, folder / "quality", crop_percent=3)
        hashes = {name: check_image(str(path), path.parent, None, ImageLimits()).info.phash
                  for name, path in paths.items()}
        originals.append(hashes["q95"])
        for name in ("q70", "half", "png", "crop"):
            found.setdefault(name, []).append(distance(hashes["q95"], hashes[name]))
        for path in paths.values():
            path.unlink()
    pairs = [distance(a, b) for i, a in enumerate(originals) for b in originals[i + 1:]]
    return {"scenes": scenes, "pairs": len(pairs),
            "found": {name: {t: round(sum(d <= t for d in ds) / len(ds), 3) for t in THRESHOLDS}
                      for name, ds in found.items()},
            "max_copy_distance": {name: max(ds) for name, ds in found.items()},
            "false_positive_pairs": {t: sum(d <= t for d in pairs) for t in THRESHOLDS},
            "false_positive_rate": {t: sum(d <= t for d in pairs) / len(pairs) for t in THRESHOLDS},
            "closest_distinct_pair": min(pairs)}


_LINT = ("import sys, vlprep.checks.images as m\n"
         "if sys.argv.pop(1) == 'off':\n"
         "    m._fingerprint, m._file_digest = (lambda image, decoded: None), (lambda handle: None)\n"
         "from vlprep.cli.app import main\nsys.argv[0] = 'vlprep'\nmain()\n")


def cost(images: int, folder: Path) -> list[dict]:
    data = folder / "lint"
    data.mkdir(parents=True, exist_ok=True)
    jsonl = data / "data.jsonl"
    with open(jsonl, "w") as out:
        for seed in range(images):
            path = data / f"{seed}.jpg"
            if not path.exists():
                scene(5000 + seed).save(path, quality=90)
            out.write(json.dumps({"messages": [{"role": "user", "content": f"<image>Picture {seed}?"},
                                               {"role": "assistant", "content": "A landscape."}],
                                  "images": [path.name]}) + "\n")
    rows = []
    env = {"PYTHONPATH": f"{REPO / 'toolkit'}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    for mode in ([], ["--fast"]):
        for fingerprint in ("on", "off"):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _LINT, fingerprint, "lint", str(jsonl), "-j", "1", "-q",
                                   "--format", "json", *mode], capture_output=True, text=True, env=env)
            wall = time.perf_counter() - started
            summary = json.loads(done.stdout)["summary"]
            rows.append({"mode": "fast" if mode else "full", "fingerprint": fingerprint, "records": summary["records"],
                         "wall_s": round(wall, 2), "lint_s": summary["elapsed_s"],
                         "records_per_s": round(summary["records"] / summary["elapsed_s"], 1),
                         "distinct_pictures": summary["pictures"]["distinct_pictures"]})
    return rows


_INDEX = """
import random, resource, sys, time
from vlprep.lint.pictures import PictureIndex
from vlprep.records.diagnostics import ImageInfo
n = int(sys.argv[1]); rng = random.Random(1)
centres = [rng.getrandbits(64) for _ in range(n // 4)]  # a quarter as many pictures as records: copies of each
index = PictureIndex()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
for element in range(n):
    noisy = rng.choice(centres) ^ (1 << rng.randrange(64)) * rng.randint(0, 1)
    index.observe(element, f"data.jsonl:{element + 1}", [ImageInfo(1, 1, "", "", f"{element}.jpg", noisy, element)],
                  element, False)
elapsed = time.perf_counter() - started
summary = index.summary()
print(n, round(elapsed, 2), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, base, summary["distinct_pictures"],
      summary["groups"])
"""


def scale(sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        done = subprocess.run([sys.executable, "-c", _INDEX, str(n)], capture_output=True, text=True,
                              env={"PYTHONPATH": str(REPO / "toolkit"), "PATH": "/usr/bin:/bin"}, check=True)
        size, elapsed, peak_kb, base_kb, distinct, groups = map(float, done.stdout.split())
        rows.append({"records": int(size), "seconds": elapsed, "records_per_s": round(size / elapsed),
                     "peak_rss_mb": round(peak_kb / 1024), "index_mb": round((peak_kb - base_kb) / 1024),
                     "bytes_per_record": round((peak_kb - base_kb) * 1024 / size), "distinct": int(distinct),
                     "groups": int(groups)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--lint-images", type=int, default=600)
    parser.add_argument("--index-sizes", default="100000,1000000")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vlprep-bench-near"))
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: quality, cost, scale")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    result = {}
    if "quality" not in skip:
        result["quality"] = quality(args.scenes, args.out)
        print(json.dumps(result["quality"], indent=1), flush=True)
    if "cost" not in skip:
        result["cost"] = cost(args.lint_images, args.out)
        for row in result["cost"]:
            print(row, flush=True)
    if "scale" not in skip:
        result["scale"] = scale([int(size) for size in args.index_sizes.split(",")])
        for row in result["scale"]:
            print(row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
