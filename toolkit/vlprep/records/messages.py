"""Messages, ShareGPT and OpenAI records to the canonical form, as ms-swift's messages preprocessor maps them."""

from __future__ import annotations

import difflib
import json
from typing import Any

from vlprep.records.canonical import AUDIO_TAG, IMAGE_TAG, ROLE_NAMES, VIDEO_TAG, Normalized, image_list, parse_literal


def from_messages(obj: dict[str, Any], row: dict[str, Any]) -> Normalized:
    source = next(key for key in ("messages", "conversations", "conversation") if key in obj)
    turns = row.get("messages")
    if isinstance(turns, str):  # ms-swift repairs a messages column stored as a JSON / Python literal string
        turns = parse_literal(turns)
    out = Normalized("sharegpt" if source != "messages" else "messages", None)
    if not isinstance(turns, list) or not turns:
        out.problems.append(("S001", f"`{source}` is missing, not a list, or empty"))
        return out
    images = image_list(row.get("images"), "images" if "images" in obj else "image", out)
    if any(isinstance(turn, dict) and turn.get("role") == "assistant" and turn.get("tool_calls") for turn in turns):
        out.input_format = "openai"
        turns = _from_openai_tool_calls(turns, source, out)
    messages: list[dict[str, Any]] = []
    part_images: list[str] = []
    part_videos: list[str] = []
    for index, turn in enumerate(turns):
        where = f"{source}[{index}]"
        if not isinstance(turn, dict):
            out.problems.append(("S011", f"{where} is not an object"))
            continue
        role_key = "from" if "from" in turn else "role"  # ms-swift takes `from` over `role`, `value` over `content`
        content_key = "value" if "value" in turn else "content"
        if role_key not in turn or content_key not in turn:
            out.problems.append(("S011", f"{where} is not an object with `role`/`from` and `content`/`value`"))
            continue
        for used_key, other_key in (("from", "role"), ("value", "content")):
            if used_key in turn and other_key in turn:
                out.problems.append(("S016", f"{where} has both `{other_key}` and `{used_key}`: ms-swift uses "
                                             f"`{used_key}` and drops `{other_key}`"))
        role = _role(turn[role_key], f"{where}.{role_key}", out)
        content = turn[content_key]
        if content is not None and not isinstance(content, str) and role in ("tool", "tool_call"):
            content = json.dumps(content, ensure_ascii=False)  # as ms-swift's template serializes it, parts included
        if isinstance(content, list):
            out.input_format = "openai"
            if role == "system":
                out.problems.append(("S003", f"{where}.{content_key} is a list of parts in a system turn: ms-swift's "
                                             "template cannot encode it"))
                continue
            content = _from_parts(content, f"{where}.{content_key}", part_images, part_videos, out)
        elif content is None:
            out.problems.append(("S003", f"{where}.{content_key} is null: ms-swift's loader drops the record"))
            continue
        elif not isinstance(content, str):
            out.problems.append(("S003", f"{where}.{content_key} is {type(content).__name__}, not a string or a list"))
            continue
        message: dict[str, Any] = {"role": role, "content": content}
        _turn_keys(turn, where, role_key, content_key, message, out)
        messages.append(message)
    if part_images and images:
        out.problems.append(("S012", "images in typed content parts and a top-level `images` list: ms-swift's "
                                     "template refuses to mix them"))
    system = row.get("system")
    if messages and messages[0]["role"] != "system" and system is not None:
        if not isinstance(system, str):
            out.problems.append(("S003", f"`system` is {type(system).__name__}, not a string"))
        else:
            messages.insert(0, {"role": "system", "content": system})
    if messages:
        out.record = {"messages": messages, "images": images + part_images}
        if part_videos:
            out.record["videos"] = part_videos
    return out


def _role(value: Any, where: str, out: Normalized) -> Any:
    """The canonical role; an unknown one is reported in the input's own words with the closest valid name."""
    if isinstance(value, str):
        role = ROLE_NAMES.get(value.replace("-", "_"))
        if role is not None:
            return role
    sharegpt = where.endswith(".from")
    vocabulary = ("human", "gpt", "system", "function_call", "observation") if sharegpt \
        else ("system", "user", "assistant", "tool_call", "tool_response", "tool")
    close = difflib.get_close_matches(value, list(ROLE_NAMES), n=1, cutoff=0.6) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    out.problems.append(("S002", f"{where} is {value!r}; expected one of {', '.join(vocabulary)} (or another name "
                                 f"ms-swift maps){hint}"))
    return value


def _turn_keys(turn: dict[str, Any], where: str, role_key: str, content_key: str, message: dict[str, Any],
               out: Normalized) -> None:
    """`loss` is carried; `loss_scale` changes the encode and is not; other keys are dropped by ms-swift's loader."""
    for key, value in turn.items():
        if key in (role_key, content_key) or key in ("role", "from", "content", "value"):
            continue
        if key == "loss":
            if value is None:
                continue
            if not isinstance(value, bool):
                out.problems.append(("S017", f"{where}.loss is {value!r}: ms-swift expects true or false"))
                continue
            message["loss"] = value
        elif key == "loss_scale":
            out.problems.append(("S014", f"{where}.loss_scale is read by ms-swift's template but vlprep cannot count "
                                         "it exactly yet, so it cannot be cached"))
        elif key == "tool_call_id" and message["role"] == "tool" or key == "name" and message["role"] == "tool":
            continue  # used by the OpenAI mapping, or kept by ms-swift but not read by the Qwen3-VL template
        else:
            out.problems.append(("S009", f"key {where}.{key} is not read by ms-swift and is dropped at load time"))


def _from_openai_tool_calls(turns: list[Any], source: str, out: Normalized) -> list[Any]:
    """ms-swift's OpenAI mapping: an assistant turn's `tool_calls` become `tool_call` turns (its content kept only
    when non-empty); a complete batch of `tool` answers with call ids is put in call order."""
    mapped: list[Any] = []
    turns = list(turns)
    for index, turn in enumerate(turns):
        calls = turn.get("tool_calls") if isinstance(turn, dict) and turn.get("role") == "assistant" else None
        if not calls:
            mapped.append(turn)
            continue
        if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
            out.problems.append(("S018", f"{source}[{index}].tool_calls is not a list of objects"))
            continue
        ids = [call.get("id") for call in calls]
        order = {call_id: position for position, call_id in enumerate(ids) if isinstance(call_id, str)}
        end = index + 1
        while end < len(turns) and isinstance(turns[end], dict) and turns[end].get("role") in ("tool", "tool_response"):
            end += 1
        answers = turns[index + 1:end]
        answered = [answer.get("tool_call_id") for answer in answers]
        if len(order) == len(calls) == len(answers) and all(isinstance(i, str) for i in answered) and \
                set(order) == set(answered):
            turns[index + 1:end] = sorted(answers, key=lambda answer: order[answer["tool_call_id"]])
        kept = {key: value for key, value in turn.items() if key in ("role", "content", "loss")}
        if turn.get("content"):
            mapped.append(kept)
        for position, call in enumerate(calls):
            function = call.get("function", call)
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                out.problems.append(("S018", f"{source}[{index}].tool_calls[{position}] has no function name"))
                continue
            arguments = function.get("arguments", {})
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError:
                    pass
            call_turn: dict[str, Any] = {"role": "tool_call",
                                         "content": {"name": function["name"], "arguments": arguments}}
            if "loss" in turn:
                call_turn["loss"] = turn["loss"]
            mapped.append(call_turn)
    return mapped



def _from_parts(parts: list[Any], where: str, images: list[str], videos: list[str], out: Normalized) -> str:
    """Flatten typed parts the way ms-swift's template does (`StdTemplateInputs.remove_messages_media`): text kept,
    each media part becomes its tag, its reference (a string, or an object's `url`) appended in order."""
    pieces: list[str] = []
    for part_index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}[{part_index}]"
        if kind == "text" and isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif kind in ("image", "image_url"):
            ref = part.get(kind)
            if isinstance(ref, dict):
                if "url" not in ref:
                    out.problems.append(("S012", f"{at}.{kind} is an object without `url` (ms-swift reads only "
                                                 "`url`; a `path` key fails to encode)"))
                    continue
                ref = ref["url"]
            if not isinstance(ref, str) or not ref:
                out.problems.append(("S012", f"{at} has no image path or url"))
                continue
            images.append(ref)
            pieces.append(IMAGE_TAG)
        elif kind in ("video", "video_url"):
            ref = _video_part(part.get(kind), f"{at}.{kind}", out)
            if ref is not None:
                videos.append(ref)
                pieces.append(VIDEO_TAG)
        elif kind in ("audio", "input_audio", "audio_url"):
            out.has_audio = True
            pieces.append(AUDIO_TAG)
        else:
            out.problems.append(("S003", f"{at} is not a text/image/image_url/video/video_url part"))
    return "".join(pieces)


def _video_part(ref: Any, at: str, out: Normalized) -> str | None:
    """The video file of a `video`/`video_url` part, or None with the problem reported: an object without `url`
    (ms-swift's loader fails on it) or a value that is not one file (a list of frames: vlprep counts video files)."""
    if isinstance(ref, dict):
        if "url" not in ref:
            out.problems.append(("M005", f"{at} is an object without `url`: ms-swift reads only `url` and fails on "
                                         "this part"))
            return None
        ref = ref["url"]
    if isinstance(ref, str) and ref:
        return ref
    if not ref:
        out.problems.append(("S012", f"{at} has no video path or url"))
    else:
        out.problems.append(("M005", f"{at} is a {type(ref).__name__}, not one video file: vlprep counts videos "
                                     "given as a path or url"))
    return None

