"""Video records: header-only counting against ms-swift's own `qwen3_vl` template (decord reader), and the lint rules
for planted video defects.

Every clip is made here with PyAV. ms-swift encodes each record from the real frames (decord), vlprep from the
container header only; input_ids, labels, length and video grids must agree under two settings of the video limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from PIL import Image
from video_fixtures import write_audio_only, write_clip, write_fixture_clips, write_truncated

from support import codes_by_line, lint_json, runner, stats_json
from swift_oracles import Oracles
from vlprep.checks.images import ImageLimits, check_image
from vlprep.checks.videos import check_video
from vlprep.cli.app import app
from vlprep.counting.settings import CountSettings, VideoSettings
from vlprep.counting.tokens import TokenCounter
from vlprep.models.qwen3_vl import QWEN3_VL
from vlprep.counting.video import VideoHeader, linspace_indices, plan_video

SETTINGS = {
    "default": CountSettings(),
    "capped": CountSettings(video=VideoSettings(fps=1.0, fps_max_frames=8, video_min_tokens=16, video_max_tokens=64)),
}


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


@dataclass
class Clips:
    folder: Path
    paths: dict[str, Path]
    records: dict[str, dict[str, Any]]


def parity_records(paths: dict[str, Path], image: Path) -> dict[str, dict[str, Any]]:
    records = {name: {"messages": [user("<video>What happens in the clip?"), assistant("A gradient moves.")],
                      "videos": [str(path)]} for name, path in paths.items()}
    records["two_videos"] = {"messages": [user("First <video> then <video>: what changed?"),
                                          assistant("The colour.")],
                             "videos": [str(paths["constant"]), str(paths["odd_size"])]}
    records["image_and_video"] = {"messages": [user("<image>The photo, and the clip: <video>Same scene?"),
                                               assistant("Yes."), user("<video>And this one?"), assistant("No.")],
                                  "images": [str(image)], "videos": [str(paths["long"]), str(paths["tall"])]}
    records["query_response"] = {"query": "<video>Describe.", "response": "Stripes.", "videos": [str(paths["fractional"])]}
    return records


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("videos")
    paths = write_fixture_clips(folder)
    paths["variable_rate"] = write_clip(folder / "vfr.mp4", seconds=2, fps=10, width=64, height=48, variable_rate=True)
    image = folder / "photo.png"
    Image.new("RGB", (200, 150), (10, 120, 200)).save(image)
    return Clips(folder, paths, parity_records(paths, image))


@pytest.fixture(scope="module")
def oracles(embedded_processor_path: Path) -> Iterator[Oracles]:
    started = Oracles(embedded_processor_path, SETTINGS)
    yield started
    started.close()


def headers(record: dict[str, Any], base_dir: Path, full_decode: bool = False) -> tuple[VideoHeader, ...]:
    found = []
    for ref in record.get("videos", []):
        checked = check_video(ref, base_dir, None, full_decode)
        assert checked.header is not None, checked.problems
        found.append(checked.header)
    return tuple(found)


def swift_row(record: dict[str, Any]) -> dict[str, Any]:
    if "query" in record:
        return {"messages": [user(record["query"]), assistant(record["response"])], "videos": record["videos"]}
    return record


RECORD_NAMES = ["constant", "odd_size", "tall", "long", "fractional", "variable_rate", "two_videos",
                "image_and_video", "query_response"]


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", RECORD_NAMES)
@pytest.mark.swift
def test_video_counting_matches_ms_swift_template(setting: str, name: str, clips: Clips, embedded_processor: Any,
                                                  oracles: Oracles) -> None:
    from vlprep.records.normalize import normalize

    record = normalize(clips.records[name]).record
    assert record is not None
    infos = [check_image(ref, clips.folder, None, ImageLimits()).info for ref in record["images"]]
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, SETTINGS[setting])
    ours = counter.encode(record, infos, headers(record, clips.folder))
    theirs = oracles[setting].encode(swift_row(clips.records[name]))
    assert "error" not in theirs, theirs
    assert [list(grid) for grid in ours.video_grids] == theirs["video_grid_thw"]
    assert ours.input_ids == theirs["input_ids"]
    assert ours.labels == theirs["labels"]
    assert len(ours.input_ids) == theirs["length"]
    counted = counter.count(record, infos, headers(record, clips.folder))
    assert counted.video_tokens == theirs["input_ids"].count(QWEN3_VL.video_pad.id) > 0


CAPPED_OPTIONS = ["--fps", "1", "--fps-max-frames", "8", "--video-min-tokens", "16", "--video-max-tokens", "64"]


@pytest.fixture(scope="module")
def capped_cache(clips: Clips, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """Every parity record cached by `vlprep cache` with the `capped` video limits given as its options (default
    verification: ms-swift re-encodes a sample plus one record of every shape under the cache's settings)."""
    data = clips.folder / "capped-input.jsonl"
    data.write_text("".join(json.dumps(clips.records[name]) + "\n" for name in RECORD_NAMES))
    out = tmp_path_factory.mktemp("capped-cache") / "cache"
    return out, runner.invoke(app, ["cache", "-q", str(data), "--out", str(out), *CAPPED_OPTIONS])


@pytest.mark.swift
def test_video_options_of_vlprep_cache_match_ms_swift_under_the_same_environment(
        capped_cache: tuple[Path, Any], clips: Clips, oracles: Oracles) -> None:
    """The second setting through the CLI: `vlprep cache --fps 1 --fps-max-frames 8 --video-min-tokens 16
    --video-max-tokens 64` caches every record, records those settings in the manifest, and each row's length, video
    grids and video tokens, and the input_ids/labels the cache's settings give, are what ms-swift's template makes
    of the original line with FPS=1, FPS_MAX_FRAMES=8, VIDEO_MIN_TOKEN_NUM=16, VIDEO_MAX_TOKEN_NUM=64."""
    import datasets

    from vlprep.records.normalize import normalize
    from vlprep.counting.counter import counter_for_manifest

    out, result = capped_cache
    assert result.exit_code == 0, result.output
    assert f"{len(RECORD_NAMES)} record(s) re-encoded by ms-swift, 0 mismatches" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counting"]["video"] == SETTINGS["capped"].to_json()["video"]
    counter = counter_for_manifest(manifest)
    assert counter.settings == SETTINGS["capped"]
    rows = datasets.load_from_disk(str(out / "train")).to_list()
    assert len(rows) == len(RECORD_NAMES)
    for row, name in zip(rows, RECORD_NAMES):
        theirs = oracles["capped"].encode(swift_row(clips.records[name]))
        assert "error" not in theirs, (name, theirs)
        assert row["lengths"] == theirs["length"], name
        assert row["vlprep_video_grid_thw"] == theirs["video_grid_thw"], name
        assert row["vlprep_video_tokens"] == theirs["input_ids"].count(QWEN3_VL.video_pad.id) > 0, name
        record = normalize(clips.records[name]).record
        assert record is not None
        infos = [check_image(ref, clips.folder, None, ImageLimits()).info for ref in record["images"]]
        ours = counter.encode(record, infos, headers(record, clips.folder))
        assert (ours.input_ids, ours.labels) == (theirs["input_ids"], theirs["labels"]), name


def test_lint_takes_the_video_options(tmp_path: Path) -> None:
    """A refused pair of limits, and --fps-min-frames deciding V010."""
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"messages": [user("Hi"), assistant("Hello")]}) + "\n")
    refused = runner.invoke(app, ["lint", "-q", str(data), "--video-min-tokens", "64", "--video-max-tokens", "16"])
    assert refused.exit_code == 2 and "--video-max-tokens 16 is below --video-min-tokens 64" in refused.output
    three_frames = write_clip(tmp_path / "three.mp4", seconds=0.3, fps=10, width=64, height=48)
    data.write_text(json.dumps({"messages": [user("<video>What?"), assistant("Red.")], "videos": [str(three_frames)]})
                    + "\n")
    assert codes_by_line(lint_json(str(data))[1]) == {1: {"V010"}}  # fewer than FPS_MIN_FRAMES (4)
    assert codes_by_line(lint_json(str(data), "--fps-min-frames", "2")[1]) == {}


def test_the_settings_change_what_is_counted(clips: Clips) -> None:
    """The parity above would be weak if both settings gave the same grids: the long clip hits the frame cap under
    `capped` (8 frames, 4 temporal groups) and is 24 temporal groups by default."""
    header = headers(clips.records["long"], clips.folder)[0]
    assert plan_video(header, SETTINGS["default"]).grid[0] == 24
    assert plan_video(header, SETTINGS["capped"]).grid[0] == 4
    assert plan_video(header, SETTINGS["capped"]).tokens < plan_video(header, SETTINGS["default"]).tokens


def test_frame_indices_are_torch_linspace() -> None:
    torch = pytest.importorskip("torch")
    cases = [(last, count) for last in range(1, 120) for count in range(2, last + 2, 2)]
    cases += [(199880, 922), (117154, 546), (58514, 898), (130373, 1134), (32089, 1522), (107999, 768)]
    for last, count in cases:
        assert linspace_indices(last, count) == tuple(torch.linspace(0, last, count).round().long().tolist())


def test_header_only_counting_never_decodes_a_frame(clips: Clips, tmp_path: Path, embedded_processor: Any) -> None:
    """A copy of a clip whose frame data (the mdat payload) is overwritten with garbage, header intact: header-only
    checking and counting give exactly what the intact clip gives, so no frame was decoded; full mode decodes."""
    source = clips.paths["constant"]
    data = bytearray(source.read_bytes())
    start = data.index(b"mdat") + 12  # past the box header and the first bytes of the first frame
    end = data.index(b"moov") - 4 if data.index(b"moov") > start else len(data)
    data[start:end] = bytes((i * 37 + 11) % 251 for i in range(end - start))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(data))

    intact, broken = check_video(str(source), tmp_path, None, False), check_video(str(garbage), tmp_path, None, False)
    assert broken.problems == () and broken.header == intact.header
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, CountSettings())
    record = {"messages": [user("<video>What?"), assistant("Noise.")], "images": [], "videos": [str(garbage)]}
    assert counter.count(record, [], (broken.header,)) == counter.count(record, [], (intact.header,))
    full = check_video(str(garbage), tmp_path, None, True)
    assert [code for code, _ in full.problems] == ["V002"], full.problems


# ---- lint: planted video defects ------------------------------------------------------------------------------------

def planted(folder: Path, clips: Clips) -> list[tuple[dict[str, Any], set[str]]]:
    good = str(clips.paths["constant"])
    truncated = write_truncated(clips.paths["long"], folder / "truncated.mp4")
    audio = write_audio_only(folder / "audio.m4a")
    one_frame = write_clip(folder / "one_frame.mp4", seconds=0.1, fps=10, width=64, height=48)
    three_frames = write_clip(folder / "three.mp4", seconds=0.3, fps=10, width=64, height=48)
    rotated = write_clip(folder / "rotated.mp4", seconds=1, fps=10, width=64, height=48, rotate=90)
    not_video = folder / "text.mp4"
    not_video.write_text("this is not a video\n")

    def one(ref: str, text: str = "<video>What?") -> dict[str, Any]:
        return {"messages": [user(text), assistant("Something.")], "videos": [ref]}

    return [
        (one(good), set()),
        (one(str(folder / "missing.mp4")), {"V001"}),
        (one(str(truncated)), {"V002"}),
        (one(str(not_video)), {"V002"}),
        (one(str(audio)), {"V003"}),
        (one(str(one_frame)), {"V009"}),
        (one(str(three_frames)), {"V010"}),
        (one(str(clips.paths["variable_rate"])), {"V006"}),
        (one(str(rotated)), {"V005"}),
        (one(good, "<video><video>Both?"), {"V007"}),
        (one(good, "No tag here."), {"V008"}),
        (one("https://example.com/clip.mp4"), {"V012"}),
        ({"messages": [{"role": "user", "content": [{"type": "video", "video": [good, good]},
                                                    {"type": "text", "text": "?"}]},
                       assistant("Something.")]}, {"M005"}),
        ({"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"path": good}},
                                                    {"type": "text", "text": "?"}]},
                       assistant("Something.")]}, {"M005"}),
        ({"messages": [{"role": "user", "content": [{"type": "video", "video": str(folder / "missing.mp4")},
                                                    {"type": "text", "text": "?"}]},
                       assistant("Something.")]}, {"V001"}),
    ]


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_planted_video_defects_are_reported(fast: bool, clips: Clips, tmp_path: Path) -> None:
    cases = planted(tmp_path, clips)
    data = tmp_path / "videos.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record, _ in cases))
    _, report = lint_json(str(data), *(["--fast"] if fast else []))
    found = codes_by_line(report)
    for line, (_, expected) in enumerate(cases, start=1):
        assert found.get(line, set()) == expected, (line, found.get(line))


# ---- OpenAI typed content parts ------------------------------------------------------------------------------------

def typed_part_records(clips: Clips) -> list[dict[str, Any]]:
    """Video parts in the forms ms-swift's template reads (`StdTemplateInputs.remove_messages_media`): `video` with a
    path (absolute or relative to the file), `video_url` with {url}, mixed with text and image parts."""
    paths = clips.paths

    def turn(*parts: dict[str, Any]) -> dict[str, Any]:
        return {"role": "user", "content": list(parts)}

    text = lambda value: {"type": "text", "text": value}  # noqa: E731
    return [
        {"messages": [turn({"type": "video", "video": str(paths["constant"])}, text("What happens?")),
                      assistant("A gradient moves.")]},
        {"messages": [turn(text("First "), {"type": "video_url", "video_url": {"url": str(paths["odd_size"])}},
                           text(" then "), {"type": "video", "video": paths["long"].name}, text(": what changed?")),
                      assistant("The colour.")]},
        {"messages": [turn({"type": "image", "image": str(clips.folder / "photo.png")},
                           {"type": "video_url", "video_url": {"url": str(paths["tall"])}}, text("Same scene?")),
                      assistant("Yes."), turn({"type": "video", "video": str(paths["fractional"])}, text("And?")),
                      assistant("No.")]},
    ]


@pytest.mark.swift
def test_video_parts_are_linted_cached_and_verified_like_video_tags(clips: Clips, tmp_path: Path,
                                                                     oracles: Oracles) -> None:
    """`vlprep lint` finds nothing wrong with video parts ms-swift reads; `vlprep cache` (default options: its
    verification loads the original lines with ms-swift's loader) caches them, and each row's length, video grids and
    video tokens are what ms-swift's loader and template make of the original line."""
    import datasets

    records = typed_part_records(clips)
    lines = [json.dumps(record) for record in records]
    data = clips.folder / "typed-parts.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    assert lint_json(str(data))[1]["diagnostics"] == []
    out = tmp_path / "cache"
    result = runner.invoke(app, ["cache", "-q", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{len(records)} record(s) re-encoded by ms-swift, 0 mismatches" in result.output
    rows = datasets.load_from_disk(str(out / "train")).to_list()
    assert len(rows) == len(records)
    for row, record, line in zip(rows, records, lines):
        theirs = oracles["default"].encode(record, {"text": line, "base_dir": str(clips.folder)})["raw"]
        assert "error" not in theirs, theirs
        assert row["lengths"] == theirs["length"]
        assert row["vlprep_video_grid_thw"] == theirs["video_grid_thw"] != []
        assert row["vlprep_video_tokens"] == theirs["input_ids"].count(QWEN3_VL.video_pad.id)
    assert rows[1]["videos"] == [str(clips.paths["odd_size"].resolve()), str(clips.paths["long"].resolve())]


# ---- cache: video records cached, verified by ms-swift, settings in the manifest ----------------------------------

@dataclass
class VideoCache:
    out: Path
    lines: list[dict[str, Any]]
    result: Any


@pytest.fixture(scope="module")
def video_cache(clips: Clips, tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> VideoCache:
    names = ["constant", "two_videos", "image_and_video", "query_response"]
    lines = [clips.records[name] for name in names]
    lines.append({"messages": [user("<video>What?"), assistant("Nothing.")], "videos": ["missing.mp4"]})
    data = clips.folder / "cache-input.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in lines))
    out = tmp_path_factory.mktemp("video-cache") / "cache"
    return VideoCache(out, lines, runner.invoke(app, ["cache", "-q", str(data), "--out", str(out), "--verify", "all"]))


@pytest.mark.swift
def test_cache_writes_and_verifies_video_records(clips: Clips, video_cache: VideoCache, embedded_processor: Any
                                                 ) -> None:
    """`vlprep cache --verify all` with its default options: every accepted video record is re-encoded by ms-swift
    (decord, the cache's video settings) from its original line and from its cached row, and must equal the count;
    the rows carry the videos and their grids, the manifest the video settings and the reader; bad videos are
    rejected with their codes."""
    import datasets

    out, lines, result = video_cache.out, video_cache.lines, video_cache.result
    assert result.exit_code == 1, result.output  # 1: some lines were rejected
    assert "4 record(s) re-encoded by ms-swift, 0 mismatches" in result.output

    rows = datasets.load_from_disk(str(out / "train")).to_list()
    assert [row["vlprep_line"] for row in rows] == [1, 2, 3, 4]
    counter = TokenCounter(embedded_processor.tokenizer.backend_tokenizer, CountSettings())
    from vlprep.records.normalize import normalize

    for row, original in zip(rows, lines):
        record = normalize(original).record
        assert record is not None
        found = headers(record, clips.folder)
        counted = counter.count(record, [check_image(ref, clips.folder, None, ImageLimits()).info
                                         for ref in record["images"]], found)
        assert row["videos"] == [str(Path(ref).resolve()) for ref in record["videos"]]
        assert row["vlprep_video_grid_thw"] == [list(grid) for grid in counted.video_grids]
        assert row["vlprep_video_tokens"] == counted.video_tokens > 0
        assert row["lengths"] == counted.length
    rejected = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(entry["line"], entry["codes"]) for entry in rejected] == [(5, ["V001"])]
    manifest = json.loads((out / "manifest.json").read_text())
    video = manifest["counting"]["video"]
    assert video["reader"] == "decord" and video["reader_version"] == "0.6.0"
    assert (video["fps"], video["fps_max_frames"], video["video_max_tokens"]) == (2.0, 768, 768)


@pytest.mark.train
@pytest.mark.swift
def test_fit_refuses_other_video_settings_than_the_cache(video_cache: VideoCache, tiny_model_dir: Path,
                                                         tmp_path: Path) -> None:
    """`vltrain fit` gives ms-swift the cache's video settings and reader, and refuses an environment or an option
    (--fps, ...) that asks for others (ms-swift would sample other frames: lengths change); the cache's own values
    given as options are accepted."""
    import os
    import subprocess
    import sys

    vltrain = str(Path(sys.executable).parent / "vltrain")
    base = [vltrain, "fit", "--cached", str(video_cache.out), "--model", str(tiny_model_dir), "--max-steps", "1",
            "--dry-run", "--format", "json", "--output-dir", str(tmp_path / "out")]
    env = {key: value for key, value in os.environ.items() if key not in VideoSettings().environment()}
    planned = subprocess.run(base, capture_output=True, text=True, env=env, timeout=600)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert json.loads(planned.stdout)["environment"].items() >= VideoSettings().environment().items()
    refused = subprocess.run(base, capture_output=True, text=True, env={**env, "FPS_MAX_FRAMES": "16"}, timeout=600)
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "FAIL video settings" in refused.stderr and "$FPS_MAX_FRAMES=16 (cache: 768)" in refused.stderr
    same = subprocess.run([*base, "--fps", "2", "--video-max-tokens", "768"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert same.returncode == 0, same.stderr[-3000:]
    by_option = subprocess.run([*base, "--fps", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert by_option.returncode == 1, by_option.stderr[-3000:]
    assert "FAIL video settings" in by_option.stderr and "--fps=1.0 (cache: 2.0)" in by_option.stderr


@pytest.mark.swift
def test_a_rotated_video_is_one_ms_swift_cannot_encode(tmp_path: Path, oracles: Oracles) -> None:
    """Why V005 is an error: with the pinned reader, ms-swift's encode of a clip rotated by its display matrix fails."""
    rotated = write_clip(tmp_path / "rotated.mp4", seconds=1, fps=10, width=64, height=48, rotate=90)
    checked = check_video(str(rotated), tmp_path, None, False)
    assert [code for code, _ in checked.problems] == ["V005"]
    theirs = oracles["default"].encode({"messages": [user("<video>?"), assistant("Turned.")], "videos": [str(rotated)]})
    assert "error" in theirs, theirs


def assert_counts_by_modality(report: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Video tokens are counted as video, image tokens as image, the rest as text, each total the cache's."""
    lengths = [row["lengths"] for row in rows]
    video = sum(row["vlprep_video_tokens"] for row in rows)
    image = sum(row["vlprep_image_tokens"] for row in rows)
    assert report["tokens"] == sum(lengths) and report["lengths"]["max"] == max(lengths)
    assert (report["video_tokens"], report["image_tokens"]) == (video, image) and video > 0
    assert report["text_tokens"] == sum(lengths) - video - image
    assert report["video_token_share"] == pytest.approx(video / sum(lengths), abs=1e-6)
    assert report["videos_per_record"]["max"] == max(len(row["videos"]) for row in rows)


@pytest.mark.swift
def test_stats_of_a_video_cache_counts_its_videos(video_cache: VideoCache) -> None:
    """`vlprep stats CACHE` recounts each row, video headers read again: its lengths and its video/image/text token
    totals are the cache's."""
    import datasets

    rows = datasets.load_from_disk(str(video_cache.out / "train")).to_list()
    assert_counts_by_modality(stats_json(str(video_cache.out)), rows)
    text = runner.invoke(app, ["stats", str(video_cache.out)])
    assert "video " in text.stdout and "videos per record: mean" in text.stdout, text.stdout


@pytest.mark.swift
def test_stats_of_jsonl_takes_the_video_options(capped_cache: tuple[Path, Any], clips: Clips) -> None:
    """`vlprep stats data.jsonl` with the capped video options counts what `vlprep cache` with them cached."""
    import datasets

    out, result = capped_cache
    assert result.exit_code == 0, result.output
    rows = datasets.load_from_disk(str(out / "train")).to_list()
    assert_counts_by_modality(stats_json(str(clips.folder / "capped-input.jsonl"), *CAPPED_OPTIONS), rows)
