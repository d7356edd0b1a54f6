"""The rule catalog: every problem vlprep reports has a stable code, a name, a default severity and an explanation.

Codes never change meaning once published (like ruff's): a new check gets a new code. The first letter says the family:
J = the JSONL line or array element itself (and the file's JSON / compression framing),
S = structure of the conversation, M = media tags, T = template injection,
I = images, V = videos, D = duplicates, F = file-level, L = token length, W = worker/limits (the run itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_CATALOG: tuple[Rule, ...] = (
    # --- the line ---
    Rule("J001", "invalid-json", _E, "The line is not valid JSON (the parser's message and column are given)."),
    Rule("J002", "not-an-object", _E, "The line is JSON but not an object."),
    Rule("J003", "undecodable-bytes", _E, "The line is not valid UTF-8."),
    Rule("J004", "byte-order-mark", _W, "The file starts with a UTF-8 byte-order mark; most JSONL readers choke on it."),
    Rule("J005", "blank-line", _W, "Blank line: ms-swift skips it, other loaders fail on it."),
    Rule("J006", "line-too-long", _E, "The line (or JSON array element) exceeds --max-line-bytes and was not parsed."),
    Rule("J007", "too-deeply-nested", _E, "The JSON nests deeper than the limit."),
    Rule("J008", "truncated-array", _E,
         "The JSON array is cut short: the file ends inside an element or before the closing ']' (where it stopped and "
         "the records before it are named)."),
    Rule("J009", "wrapped-records", _E,
         'The file is one JSON object holding the records in an array (`{"data": [...]}`); vlprep and ms-swift read a '
         "top-level array or JSONL: the fix (a jq command) is given. The file is not read further."),
    Rule("J010", "data-after-array", _E,
         "Text after the JSON array's closing ']' (e.g. two files concatenated): JSON loaders refuse the whole file."),
    Rule("J011", "unreadable-stream", _E,
         "The gzip/zstd stream is corrupt or cut short (or the input cannot be read) past this point; the records "
         "before it were read."),
    # --- structure ---
    Rule("S001", "no-messages", _E, "No conversation: `messages`/`conversations` is missing, not a list, or empty."),
    Rule("S002", "unknown-role", _E,
         "A turn has a role ms-swift does not know (system/user/assistant/tool/tool_call/tool_response, or the "
         "ShareGPT names it maps): its loader drops the record. The closest valid name is suggested."),
    Rule("S003", "bad-content-type", _E, "A turn's content is neither a string nor a list of typed parts."),
    Rule("S004", "empty-content", _W, "A system, user or tool turn's content is empty (an empty assistant reply is S023)."),
    Rule("S005", "system-not-first", _E, "A system message appears after the first turn."),
    Rule("S006", "consecutive-same-role", _W, "Two consecutive turns have the same role (tool turns excepted)."),
    Rule("S007", "no-assistant-turn", _E, "No assistant turn: there is nothing to learn from this record."),
    Rule("S008", "last-turn-not-assistant", _W, "The last turn is not the assistant's: the trailing turn is not trained on."),
    Rule("S009", "unknown-key", _W, "A key ms-swift does not read; it is silently dropped at load time."),
    Rule("S010", "unknown-format", _E,
         "The record matches none of the supported formats (messages, ShareGPT, OpenAI, query/response, alpaca)."),
    Rule("S011", "bad-turn", _E, "A turn is not an object with a role and content."),
    Rule("S012", "bad-images-field", _E, "`images` is not a string or a list of strings / {bytes, path} objects."),
    Rule("S013", "misplaced-tool-turn", _E,
         "A tool turn with no user/assistant turn before it, or a user turn right after tool results: ms-swift's "
         "template cannot encode the conversation."),
    Rule("S014", "not-carried", _E,
         "A key ms-swift's template reads (loss_scale, chat_template_kwargs, tools with nulls or mixed value "
         "types, objects without images) that vlprep cannot count exactly yet: caching the record without it would "
         "train on something else, so it is rejected."),
    Rule("S015", "other-task-key", _W,
         "A key ms-swift reads only for other tasks (RLHF, reward, embedding): SFT ignores it and it is not cached."),
    Rule("S016", "conflicting-turn-keys", _W,
         "A turn has both `content` and `value` (or `role` and `from`): ms-swift uses `value` (`from`) and drops "
         "the other."),
    Rule("S017", "bad-loss", _E, "A turn's `loss` is not true/false."),
    Rule("S018", "bad-tool-call", _E,
         "A tool_call turn (or OpenAI tool_calls entry) that is not a JSON object with a name and arguments, names a "
         "function absent from `tools`, or a tool that is not a JSON object: ms-swift cannot encode it as meant."),
    Rule("S019", "tool-result-without-call", _W, "A tool result with no tool call before it in the conversation."),
    Rule("S020", "bad-objects", _E,
         "Grounding `objects` ms-swift cannot use: no `bbox` list, a box that is not 4 numbers (or a 2-number point), "
         "`ref` not strings, `image_id` out of range, or an unknown `bbox_type`."),
    Rule("S021", "grounding-tag-count", _E,
         "The number of <ref-object> / <bbox> tags differs from the number of objects' refs / boxes."),
    Rule("S022", "bbox-outside-image", _E, "A box lies outside its image (pixels) or outside 0..1 (norm1)."),
    Rule("S023", "empty-assistant-reply", _E,
         "An assistant turn is empty (or only whitespace): the model would be trained to answer with nothing."),
    # --- media tags ---
    Rule("M001", "more-tags-than-images", _E, "More <image> tags than images: ms-swift leaves the extra tags as literal text."),
    Rule("M002", "fewer-tags-than-images", _W,
         "Fewer <image> tags than images: ms-swift prepends the missing tags to messages[0] (maybe the system turn)."),
    Rule("M003", "image-tag-in-assistant", _E, "An <image> tag in an assistant turn: the model would be trained to emit it."),
    Rule("M004", "tag-without-images", _E, "A literal <image> in a record with no images: ms-swift trains on the text "
                                           "<image> (3 tokens) where a picture was meant, as for M001."),
    Rule("M005", "video-unsupported", _E, "A video in typed content parts that is not one video file (e.g. a list of frames: vlprep counts video files) or an object without `url` (ms-swift's template fails on it)."),
    Rule("M006", "audio-unsupported", _E, "The record has <audio> tags or audios: Qwen3-VL takes no audio."),
    # --- template injection ---
    Rule("T001", "control-token-in-content", _E,
         "A chat-control token (e.g. <|im_end|>) written literally in content: it tokenizes as the control token."),
    Rule("T002", "leading-newline", _I,
         "Content starts with a newline: the template tokenizes it one token differently from a plain render."),
    # --- images ---
    # --- videos ---
    Rule("V001", "video-missing", _E, "The video file does not exist."),
    Rule("V002", "video-unreadable", _E, "The file is not a container ffmpeg can open, or (full mode) its frames do not all decode: corrupt or truncated."),
    Rule("V003", "no-video-stream", _E, "The container has no video stream (audio only)."),
    Rule("V004", "bad-video-timing", _E, "Zero or absurd frame rate or duration, or a zero frame size, in the header."),
    Rule("V005", "video-rotation", _E, "Rotation metadata (MP4/MOV display matrix): the pinned reader (decord 0.6.0) rotates the frames and fails on 90°/270°, so ms-swift cannot encode the video."),
    Rule("V006", "variable-frame-rate", _W, "The average frame rate differs from the nominal one: the frame times Qwen3-VL reads in the prompt are approximate."),
    Rule("V007", "more-tags-than-videos", _E, "More <video> tags than videos: the extra tags stay literal text."),
    Rule("V008", "fewer-tags-than-videos", _E, "Fewer <video> tags than videos: a video without its tag is not placed where the record means it."),
    Rule("V009", "video-too-short", _E, "Fewer frames than FRAME_FACTOR (2): ms-swift cannot sample the video."),
    Rule("V010", "few-video-frames", _W, "Fewer frames than FPS_MIN_FRAMES: fewer frames are sampled than the minimum asks."),
    Rule("V011", "no-frame-count", _E, "The header gives no frame count: the training reader estimates it, so the token count cannot be known exactly."),
    Rule("V012", "remote-video", _E, "The video is a URL or inline data: vlprep reads local video files only."),
    Rule("V013", "unencodable-video", _E, "ms-swift cannot encode the video under the video settings (its resize or frame sampling raises)."),
    Rule("V014", "video-check-timeout", _E, "Reading the video's header, or (full mode) decoding its frames, took longer than --video-timeout seconds."),
    Rule("I001", "image-missing", _E, "The image file does not exist."),
    Rule("I002", "image-outside-root", _E, "The image path resolves (symlinks followed) outside --image-root."),
    Rule("I003", "not-an-image", _E, "The file is not an image in a format Pillow can read."),
    Rule("I004", "image-corrupt", _E, "Decoding the image failed (truncated or corrupt data)."),
    Rule("I005", "decompression-bomb", _E, "The declared pixel count is over --max-image-pixels; the image was not decoded."),
    Rule("I006", "extreme-aspect-ratio", _E, "Aspect ratio over --max-ratio: training's smart_resize raises on it."),
    Rule("I007", "tiny-image", _W, "An image side is smaller than 32 px (one Qwen3-VL token): it will be upscaled."),
    Rule("I008", "exif-rotation", _W, "EXIF orientation is not 1: training sees the unrotated pixels."),
    Rule("I009", "unusual-mode", _W, "Unusual pixel mode (CMYK, 16-bit, palette with transparency, ...): converted to RGB."),
    Rule("I010", "animated-image", _W, "Animated image: only the first frame is used."),
    Rule("I011", "remote-image", _E, "The image is a remote URL: vlprep runs offline and does not fetch it."),
    Rule("I012", "bad-data-uri", _E, "A data: URI that is not base64 image data."),
    Rule("I013", "unreadable-image", _E, "The image file exists but cannot be read (permissions, a directory, ...)."),
    Rule("I014", "image-decode-timeout", _E, "Decoding the image took longer than --image-timeout seconds."),
    Rule("I015", "image-resized-to-nothing", _E,
         "Under the pixel limits the image resizes to a side of 0 pixels: ms-swift cannot encode it."),
    # --- duplicates / file ---
    Rule("D001", "duplicate-record", _W, "The record is identical to an earlier one (the first line is named)."),
    Rule("F001", "mixed-formats", _W,
         "The file mixes input formats: ms-swift keeps one format per file and silently drops the others' records."),
    Rule("F002", "file-unreadable", _E, "The input file cannot be opened."),
    Rule("F003", "alias-collision", _W,
         "The file names one ms-swift column two ways (e.g. `image` and `images`): its loader renames neither and "
         "drops the alias's values."),
    # --- token length ---
    Rule("L001", "too-long", _E, "The record's token length (image tokens included) is over --max-length: training drops it."),
    Rule("L002", "too-many-images", _E, "The record has more images than --max-images."),
    # --- the run ---
    Rule("W001", "worker-crashed", _E, "The worker checking this record died, twice, with the record run alone (segfault, out of memory); the record is rejected."),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _CATALOG}


def select_codes(select: list[str] | None, ignore: list[str] | None) -> frozenset[str]:
    """Resolve ruff-style --select/--ignore prefixes ("I", "I00", "I004", "ALL") to the set of active codes."""

    def expand(prefixes: list[str]) -> set[str]:
        out: set[str] = set()
        for prefix in prefixes:
            prefix = prefix.strip().upper()
            matched = {code for code in RULES if prefix == "ALL" or code.startswith(prefix)}
            if not matched:
                raise ValueError(f"unknown rule code or prefix: {prefix!r} (see `vlprep rules`)")
            out |= matched
        return out

    active = expand(select) if select else set(RULES)
    if ignore:
        active -= expand(ignore)
    return frozenset(active)
