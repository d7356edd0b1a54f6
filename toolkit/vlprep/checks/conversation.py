"""Check a canonical record's conversation: roles and turn order, media tags, and template injection."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from vlprep.records.diagnostics import ImageInfo
from vlprep.records.canonical import AUDIO_TAG, IMAGE_TAG, ROLES, VIDEO_TAG, parse_literal
from vlprep.models.registry import DEFAULT_FAMILY

Problem = tuple[str, str]


@lru_cache(maxsize=1)
def control_token_pattern() -> re.Pattern[str]:
    """The chat-control tokens (added tokens marked special) that must never appear literally in content (the same in
    every Qwen family's chat format: lint checks records before any model is chosen)."""
    tokens = DEFAULT_FAMILY.special_tokens()
    special = sorted((t["content"] for t in tokens if t["special"]), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, special)))


def check_conversation(record: dict[str, Any]) -> list[Problem]:
    messages = record["messages"]
    problems = _check_tags(record) + _check_injection(messages) + _check_agent(record)
    if any(turn["role"] not in ROLES for turn in messages):
        return problems  # the unknown role is reported by normalize; turn-order checks would only pile on it
    # ms-swift's template turns each run of tool_call turns (parallel calls) into one assistant turn
    turns = [{**turn, "role": "assistant", "call": True} if turn["role"] == "tool_call" else turn for turn in messages]
    return _check_turns(turns) + _check_tool_order(turns) + problems


def _check_agent(record: dict[str, Any]) -> list[Problem]:
    """tool_call turns must be JSON objects naming a function of `tools` (when given); a tool result answers a call."""
    problems: list[Problem] = []
    names = {name for name in map(_tool_name, record.get("tools") or []) if isinstance(name, str)}
    calls = 0
    for index, turn in enumerate(record["messages"]):
        if turn["role"] == "tool_call":
            calls += 1
            call = _parse_call(turn["content"])
            if call is None:
                problems.append(("S018", f"messages[{index}] (tool_call) is not a JSON object with a `name` and "
                                         "`arguments`: ms-swift's agent template cannot encode it"))
            elif names and call["name"] not in names:
                problems.append(("S018", f"messages[{index}] (tool_call) calls {call['name']!r}, which is not in "
                                         f"`tools` ({', '.join(sorted(map(str, names)))})"))
        elif turn["role"] == "tool" and not calls and index and record["messages"][index - 1]["role"] == "user" \
                and not _has_call_text(record["messages"][:index]):  # other places are S013
            problems.append(("S019", f"messages[{index}] is a tool result with no tool call before it"))
    return problems


def _tool_name(tool: Any) -> Any:
    function = tool.get("function", tool) if isinstance(tool, dict) else None
    return function.get("name_for_model") or function.get("name") if isinstance(function, dict) else None


def _parse_call(content: str) -> dict[str, Any] | None:
    """A tool call as ms-swift's agent template parses it (JSON, or a Python literal), or None when it cannot."""
    call = parse_literal(content)
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    arguments = call["arguments"] if call.get("arguments") is not None else call.get("parameters")
    if isinstance(arguments, str):
        arguments = parse_literal(arguments)
    if arguments is None:
        return None
    return {"name": call["name"], "arguments": arguments}


def _has_call_text(messages: list[dict[str, Any]]) -> bool:
    return any(turn["role"] == "assistant" and "<tool_call>" in turn["content"] for turn in messages)


def _check_tool_order(messages: list[dict[str, Any]]) -> list[Problem]:
    """ms-swift folds tool results into the turn before them: a user turn (appended to it) or an assistant turn (the
    results become the next query, which only an assistant turn may answer)."""
    problems: list[Problem] = []
    before_tools: str | None = None  # role of the turn the current run of tool turns follows
    previous: str | None = None
    for index, turn in enumerate(messages):
        role = turn["role"]
        if role == "tool" and previous != "tool":
            before_tools = previous
            if previous not in ("user", "assistant"):
                problems.append(("S013", f"messages[{index}] is a tool turn with no user or assistant turn before it"))
        elif role == "user" and previous == "tool" and before_tools == "assistant":
            problems.append(("S013", f"messages[{index}] is a user turn right after tool results: only the "
                                     "assistant may answer them"))
        if role != "system" or index:
            previous = role
    return problems


def _check_turns(messages: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    previous: str | None = None
    for index, turn in enumerate(messages):
        role, content = turn["role"], turn["content"]
        if not content.strip() and role == "assistant" and not turn.get("call"):
            problems.append(("S023", f"messages[{index}] is an empty assistant reply: the model would learn to "
                                     "answer with nothing"))
        elif not content.strip():
            problems.append(("S004", f"messages[{index}] ({role}) has empty content"))
        if role == "system" and index > 0:
            problems.append(("S005", f"system message at messages[{index}]; it must be the first turn"))
        if role == previous and role != "tool" and not (turn.get("call") and messages[index - 1].get("call")):
            problems.append(("S006", f"messages[{index - 1}] and messages[{index}] are both {role!r} turns"))
        previous = role
    roles = [turn["role"] for turn in messages]
    if "assistant" not in roles:
        problems.append(("S007", "no assistant turn: nothing to train on"))
    elif roles[-1] != "assistant":
        problems.append(("S008", f"the last turn is {roles[-1]!r}, not 'assistant'; it is not trained on"))
    return problems


def _check_tags(record: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    messages, images = record["messages"], record["images"]
    tags = sum(turn["content"].count(IMAGE_TAG) for turn in messages)
    for index, turn in enumerate(messages):
        if turn["role"] == "assistant" and IMAGE_TAG in turn["content"]:
            problems.append(("M003", f"messages[{index}] (assistant) contains {IMAGE_TAG}"))
    if tags and not images:
        problems.append(("M004", f"{tags} literal {IMAGE_TAG} tag(s) but the record has no images"))
    elif tags > len(images):
        problems.append(("M001", f"{tags} {IMAGE_TAG} tags but {len(images)} image(s)"))
    elif tags < len(images):
        first = next((turn["role"] for turn in messages if turn["role"] != "system"), "none")
        problems.append(("M002", f"{tags} {IMAGE_TAG} tags but {len(images)} images: ms-swift prepends "
                                 f"{len(images) - tags} tag(s) to the first non-system turn ({first})"))
    video_tags = sum(turn["content"].count(VIDEO_TAG) for turn in messages)
    videos = record.get("videos", [])
    if video_tags > len(videos):
        problems.append(("V007", f"{video_tags} {VIDEO_TAG} tag(s) but {len(videos)} video(s): the extra tags stay "
                                 "literal text"))
    elif video_tags < len(videos):
        problems.append(("V008", f"{video_tags} {VIDEO_TAG} tag(s) but {len(videos)} videos: a video without its tag "
                                 "is not placed where the record means it"))
    if any(AUDIO_TAG in turn["content"] for turn in messages):
        problems.append(("M006", f"{AUDIO_TAG} tag: Qwen3-VL takes no audio"))
    return problems


def _check_injection(messages: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    pattern = control_token_pattern()
    for index, turn in enumerate(messages):
        found = sorted(set(pattern.findall(turn["content"])))
        if found:
            problems.append(("T001", f"messages[{index}] contains control token(s) {', '.join(found)}"))
        if turn["content"].startswith("\n"):
            problems.append(("T002", f"messages[{index}] content starts with a newline"))
    return problems


def check_objects(record: dict[str, Any], images: list[ImageInfo]) -> list[Problem]:
    """Grounding: one `<ref-object>`/`<bbox>` tag per object (extra tags stay literal text, extra objects are never
    shown), and boxes inside their image (`images` as checked, aligned with the record's images)."""
    objects = record.get("objects")
    if not objects:
        return []
    problems: list[Problem] = []
    text = "".join(turn["content"] for turn in record["messages"])
    for tag, key in (("<ref-object>", "ref"), ("<bbox>", "bbox")):
        given = len(objects.get(key) or [])
        tags = text.count(tag)
        if tags != given:
            effect = "the extra tags stay literal text" if tags > given else "some objects are never shown"
            problems.append(("S021", f"{tags} {tag} tag(s) but {given} objects.{key}: {effect}"))
    if len(images) != len(record["images"]):
        return problems  # an image could not be read: reported on its own
    norm1 = objects.get("bbox_type") == "norm1"
    image_ids = list(objects.get("image_id") or [])
    for index, box in enumerate(objects["bbox"]):
        image_id = image_ids[index] if index < len(image_ids) else 0
        width, height = (1, 1) if norm1 else (images[image_id].width, images[image_id].height)
        xs, ys = box[::2], box[1::2]
        if min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height:
            unit = "0..1 (norm1)" if norm1 else f"image {image_id} ({width}x{height})"
            problems.append(("S022", f"objects.bbox[{index}] {box} lies outside {unit}"))
    return problems
