"""Benchmark video records: vlprep's header-only counting against `swift export --to_cached_dataset` on the same clips.

Generates `--clips` H.264 clips with PyAV (`--seconds` each, 320×240, 24 fps) and `--records` one-video records over
them (each record's question is unique, so ms-swift's shuffled rows can be matched to input lines), then times:
1. `swift export --to_cached_dataset` (FORCE_QWENVL_VIDEO_READER=decord: it decodes the sampled frames of every video);
2. `vlprep cache --fast --verify 0` (container headers only) and `vlprep cache --verify 0` (full decode check);
3. in this process, header read + count per record (no start-up), for the per-record cost;
and compares every record's `lengths` between ms-swift and vlprep.

    python bench/video_bench.py --records 24 --clips 6 --seconds 6 --out /tmp/video-bench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cache_bench import fresh, input_keys, model_dir, run_swift, run_vlprep, swift_lengths, vlprep_lengths  # noqa: E402
from common import print_table  # noqa: E402
from video_fixtures import write_clip  # noqa: E402

from vlprep.counting.settings import VideoSettings  # noqa: E402


def make_data(out: Path, records: int, clips: int, seconds: float) -> Path:
    folder = out / "clips"
    paths = [write_clip(folder / f"clip{index}.mp4", seconds=seconds + index % 3, fps=24, width=320, height=240)
             for index in range(clips)]
    data = out / "videos.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for index in range(records):
            record = {"messages": [{"role": "user", "content": f"<video>Question {index}: what moves?"},
                                   {"role": "assistant", "content": "A gradient."}],
                      "videos": [str(paths[index % clips])]}
            handle.write(json.dumps(record) + "\n")
    return data


def in_process(data: Path) -> float:
    """Seconds per record for header read + count, the tokenizer already loaded."""
    from vlprep.checks.videos import check_video
    from vlprep.records.normalize import normalize
    from vlprep.counting.processor import load_processor
    from vlprep.counting.settings import CountSettings
    from vlprep.counting.tokens import TokenCounter

    counter = TokenCounter(load_processor().tokenizer.backend_tokenizer, CountSettings())
    lines = data.read_text(encoding="utf-8").splitlines()
    started = time.perf_counter()
    for line in lines:
        record = normalize(json.loads(line)).record
        assert record is not None
        found = tuple(check_video(ref, data.parent, None, False).header for ref in record["videos"])
        counter.count(record, [], found)  # type: ignore[arg-type]
    return (time.perf_counter() - started) / len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vlprep-video-bench"))
    parser.add_argument("--records", type=int, default=24)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in VideoSettings().environment():  # both tools count with the defaults and the pinned reader
        os.environ.pop(name, None)
    os.environ["FORCE_QWENVL_VIDEO_READER"] = VideoSettings().environment()["FORCE_QWENVL_VIDEO_READER"]
    data = make_data(out, args.records, args.clips, args.seconds)
    model = model_dir(out)
    swift = run_swift("swift export", data, model, out / "swift", args.workers, out / "swift.log")
    fast = run_vlprep("vlprep cache --fast --verify 0", data, out / "vlprep-fast", args.workers, True,
                      out / "vlprep-fast.log", ("--verify", "0"))
    full = run_vlprep("vlprep cache --verify 0", data, out / "vlprep-full", args.workers, False,
                      out / "vlprep-full.log", ("--verify", "0"))
    per_record = in_process(data)
    keys, _ = input_keys(data)
    theirs, _ = swift_lengths(out / "swift" / "train", keys)
    ours, _, rejects = vlprep_lengths(out / "vlprep-fast", keys)
    mismatches = sorted(line for line in theirs.keys() & ours.keys() if theirs[line] != ours[line])
    rows = [(run.label, f"{run.wall_s:.1f}", f"{args.records / run.wall_s:.1f}", f"{swift.wall_s / run.wall_s:.1f}×",
             str(run.returncode)) for run in (swift, full, fast)]
    rows.append(("header read + count, in process", f"{per_record * args.records:.3f}", f"{1 / per_record:,.0f}",
                 f"{swift.wall_s / (per_record * args.records):,.0f}×", "0"))
    print_table(rows, ("tool", "wall s", "records/s", "swift / this", "exit"))
    print(f"lengths compared: {len(theirs.keys() & ours.keys())} records, {len(mismatches)} mismatches "
          f"(swift rows {len(theirs)}, vlprep rows {len(ours)}, vlprep rejects {len(rejects)})")
    (out / "results.json").write_text(json.dumps({
        "records": args.records, "clips": args.clips, "seconds": args.seconds,
        "runs": {run.label: {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "others": run.others,
                             "returncode": run.returncode} for run in (swift, full, fast)},
        "in_process_s_per_record": per_record, "length_mismatches": mismatches}, indent=1))
    fresh(out / "model")
    return 1 if mismatches or swift.returncode or fast.returncode or full.returncode else 0


if __name__ == "__main__":
    raise SystemExit(main())
