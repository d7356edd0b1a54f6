"""Normalize: detect a record's input format and convert it to ms-swift's canonical form.

Canonical form: {"messages": [{"role": str, "content": str}], "images": [str]} where content carries one `<image>` tag per
image, in order, and each image is a path, a data URI or a URL exactly as written in the input.

Three input formats are recognised:
- ``messages``: ms-swift's own (string content, `<image>` tags, top-level `images`);
- ``sharegpt``: ShareGPT / LLaVA (`conversations` with `from`/`value`, `image` or `images`);
- ``openai``: `messages` whose content is a list of typed parts (`text`, `image`, `image_url`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IMAGE_TAG = "<image>"
VIDEO_TAG = "<video>"
AUDIO_TAG = "<audio>"
ROLES = ("system", "user", "assistant", "tool")

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "observation": "tool",
    "tool": "tool",
    "function_call": "assistant",
}

# Top-level keys ms-swift's preprocessors read; anything else is dropped at load time. `id` is dropped too, but it is
# the universal record identifier (LLaVA, ShareGPT dumps) and losing it changes nothing in training.
KNOWN_KEYS = frozenset({"id", 
    "messages", "conversations", "images", "image", "videos", "video", "audios", "audio", "system", "tools",
    "objects", "rejected_response", "rejected_images", "label", "channel", "margin",
})

FORMAT_FAMILY = {"messages": "messages", "openai": "messages", "sharegpt": "sharegpt"}


@dataclass
class Normalized:
    input_format: str | None
    record: dict[str, Any] | None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (rule code, message)
    has_video: bool = False
    has_audio: bool = False


def normalize(obj: dict[str, Any]) -> Normalized:
    """Detect the format of a parsed JSON object and return its canonical form with the problems met on the way."""
    if "messages" in obj:
        out = _from_messages(obj)
    elif "conversations" in obj:
        out = _from_sharegpt(obj)
    else:
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        return Normalized(None, None, [("S010", f"no `messages` or `conversations` key (keys: {keys})")])
    for key in obj:
        if key not in KNOWN_KEYS:
            out.problems.append(("S009", f"key {key!r} is not read by ms-swift and is dropped at load time"))
    for key in ("videos", "video"):
        if obj.get(key):
            out.has_video = True
    for key in ("audios", "audio"):
        if obj.get(key):
            out.has_audio = True
    return out


def _from_messages(obj: dict[str, Any]) -> Normalized:
    turns = obj["messages"]
    if not isinstance(turns, list) or not turns:
        return Normalized("messages", None, [("S001", "`messages` is missing, not a list, or empty")])
    out = Normalized("messages", None)
    images = _image_list(obj.get("images"), "images", out)
    messages: list[dict[str, Any]] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            out.problems.append(("S011", f"messages[{index}] is not an object with `role` and `content`"))
            continue
        content = turn["content"]
        if isinstance(content, list):
            out.input_format = "openai"
            content = _from_parts(content, index, images, out)
        elif content is not None and not isinstance(content, str):
            out.problems.append(("S003", f"messages[{index}].content is {type(content).__name__}, not a string or a list"))
            continue
        messages.append({"role": turn["role"], "content": content if content is not None else ""})
    _prepend_system(obj.get("system"), messages)
    if messages:
        out.record = {"messages": messages, "images": images}
    return out


def _from_sharegpt(obj: dict[str, Any]) -> Normalized:
    turns = obj["conversations"]
    if not isinstance(turns, list) or not turns:
        return Normalized("sharegpt", None, [("S001", "`conversations` is missing, not a list, or empty")])
    out = Normalized("sharegpt", None)
    images = _image_list(obj.get("images", obj.get("image")), "image", out)
    messages: list[dict[str, Any]] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            out.problems.append(("S011", f"conversations[{index}] is not an object with `from` and `value`"))
            continue
        speaker, value = turn["from"], turn["value"]
        role = SHAREGPT_ROLES.get(speaker, speaker) if isinstance(speaker, str) else speaker
        if value is not None and not isinstance(value, str):
            out.problems.append(("S003", f"conversations[{index}].value is {type(value).__name__}, not a string"))
            continue
        messages.append({"role": role, "content": value if value is not None else ""})
    _prepend_system(obj.get("system"), messages)
    if messages:
        out.record = {"messages": messages, "images": images}
    return out


def _prepend_system(system: Any, messages: list[dict[str, Any]]) -> None:
    if isinstance(system, str) and system and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": system})


def _image_list(value: Any, key: str, out: Normalized) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list):
        out.problems.append(("S012", f"`{key}` is {type(value).__name__}, not a string or a list"))
        return []
    images: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            item = item["path"]
        if not isinstance(item, str) or not item:
            out.problems.append(("S012", f"`{key}[{index}]` is not a path, URI or {{path}} object"))
            continue
        images.append(item)
    return images


def _from_parts(parts: list[Any], index: int, images: list[str], out: Normalized) -> str:
    """Flatten OpenAI-style typed parts into a string with `<image>` tags, appending image references in order."""
    pieces: list[str] = []
    for part_index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"messages[{index}].content[{part_index}]"
        if kind == "text" and isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif kind in ("image", "image_url"):
            ref = part.get(kind)
            if isinstance(ref, dict):
                ref = ref.get("url", ref.get("path"))
            if not isinstance(ref, str) or not ref:
                out.problems.append(("S012", f"{where} has no image path or url"))
                continue
            images.append(ref)
            pieces.append(IMAGE_TAG)
        elif kind in ("video", "video_url"):
            out.has_video = True
            pieces.append(VIDEO_TAG)
        elif kind in ("audio", "input_audio", "audio_url"):
            out.has_audio = True
            pieces.append(AUDIO_TAG)
        else:
            out.problems.append(("S003", f"{where} is not a text/image/image_url part"))
    return "".join(pieces)
