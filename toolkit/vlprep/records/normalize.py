"""Normalize: detect a record's input format and convert it to the canonical form, the way ms-swift 4.6's loader does.

ms-swift's `swift sft --dataset FILE.jsonl` runs `AutoPreprocessor` (swift/dataset/preprocessor/core.py) with column
auto-mapping: records with `messages`/`conversations`/`conversation` go through its messages preprocessor (role/content
or ShareGPT from/value, OpenAI `tool_calls`), records with both `instruction` and `input` through its alpaca
preprocessor, everything else through its query/response preprocessor. This module reproduces that mapping, so the
canonical record is what ms-swift's template would be given, and reports what it cannot carry.

Canonical form: {"messages": [{"role", "content"[, "loss"]}], "images": [str], ["videos": [str]], ["tools": [{...}]], ["objects": {ref,
bbox, bbox_type, image_id}], ["channel"], ["label"]} where content is a string carrying one `<image>` tag per image it
places, roles are system/user/assistant/tool/tool_call, and each image is a path, a data URI or a URL exactly as
written (`schemas/record.schema.json`).

Input formats (the name lint reports):
- ``messages``: `messages` with string content (roles also as ShareGPT names), top-level `images`;
- ``sharegpt``: `conversations` with `from`/`value`;
- ``openai``: `messages` whose content is a list of typed parts, or assistant `tool_calls` with `tool` turns;
- ``query-response``: ms-swift's `query`/`response`/`history`/`system` (and the column aliases it maps);
- ``alpaca``: `instruction`/`input`/`output`.
"""

from __future__ import annotations

import ast
import difflib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

IMAGE_TAG = "<image>"
VIDEO_TAG = "<video>"
AUDIO_TAG = "<audio>"
ROLES = ("system", "user", "assistant", "tool", "tool_call")

# ms-swift's role names (MessagesPreprocessor.to_std_messages) -> canonical role; `tool_response` is the template's
# alias of `tool`. Any other role makes ms-swift's loader drop the record.
ROLE_NAMES = {
    "system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
    "bot": "assistant", "tool": "tool", "tool_response": "tool", "function_response": "tool", "observation": "tool",
    "observations": "tool", "tool_call": "tool_call", "function_call": "tool_call",
}

# The column aliases ms-swift's loader maps (a source key is renamed only when no other present key maps to the same
# target; keys compare case-insensitively).
_MEDIA_COLUMNS = {"images": "images", "image": "images", "videos": "videos", "video": "videos", "audios": "audios",
                  "audio": "audios"}
_SYSTEM_COLUMNS = {"system": "system", "system_prompt": "system"}
MESSAGES_COLUMNS = {**_MEDIA_COLUMNS, **_SYSTEM_COLUMNS, "messages": "messages", "conversation": "messages",
                    "conversations": "messages"}
RESPONSE_COLUMNS = {**_MEDIA_COLUMNS, **_SYSTEM_COLUMNS,
                    **dict.fromkeys(("query", "prompt", "input", "instruction", "question", "problem"), "query"),
                    **dict.fromkeys(("response", "answer", "output", "targets", "target", "answer_key", "answers",
                                     "solution", "text", "completion", "content"), "response")}

# Top-level keys that survive ms-swift's loader (RowPreprocessor.standard_keys), by what vlprep does with them.
CARRIED_KEYS = ("tools", "objects", "channel", "label")  # into the cache beside messages and images
NOT_CARRIED_KEYS = frozenset({"chat_template_kwargs"})  # changes the encode; vlprep cannot count it yet
OBJECT_KEYS = ("ref", "bbox", "bbox_type", "image_id")  # what ms-swift's loader keeps of `objects`, in its order
OTHER_TASK_KEYS = frozenset(  # read by ms-swift's other tasks (RLHF, reward, embedding, decision, TTS), not by SFT
    [f"{prefix}_{key}" for prefix in ("rejected", "positive", "negative")
     for key in ("messages", "images", "videos", "audios", "tools", "objects")]
    + ["rejected_response", "margin", "teacher_prompt", "teacher_images", "ref_audios", "audio_codes", "questions",
       "kinds", "options", "target_probs", "state", "question_ids", "criteria", "omnijev_column_keys",
       "omnijev_video"])
# `id` is dropped by ms-swift too, but it is the universal record identifier and losing it changes nothing in training.
_QUIET_KEYS = frozenset({"id"})
# Every top-level key a record may have (read by ms-swift, or named by vlprep): a file `{"KEY": [...]}` whose KEY is
# none of these wraps its records (vlprep.inputs.reader).
RECORD_KEYS = (frozenset(MESSAGES_COLUMNS) | frozenset(RESPONSE_COLUMNS) | frozenset(CARRIED_KEYS) | NOT_CARRIED_KEYS
               | OTHER_TASK_KEYS | _QUIET_KEYS | {"history"})

# Formats that can share a file: ms-swift's loader picks one preprocessor per file from the union of its columns.
FORMAT_FAMILY = {"messages": "messages", "openai": "messages", "sharegpt": "sharegpt",
                 "query-response": "query-response", "alpaca": "alpaca"}


@dataclass
class Normalized:
    input_format: str | None
    record: dict[str, Any] | None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (rule code, message)
    has_audio: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # key as written -> the column ms-swift maps it to


def normalize(obj: dict[str, Any]) -> Normalized:
    """Detect the format of a parsed JSON object and return its canonical form with the problems met on the way."""
    alpaca = False
    if any(key in obj for key in ("messages", "conversations", "conversation")):
        columns = MESSAGES_COLUMNS
        row = rename_columns(obj, columns)
        out = _from_messages(obj, row)
        used = {"messages", "system", "images", "videos", "audios"}
    else:
        columns = RESPONSE_COLUMNS
        row = rename_columns(obj, columns)
        alpaca = "instruction" in obj and "input" in obj
        out = _from_alpaca(obj, row) if alpaca else _from_query_response(obj, row)
        used = {"query", "response", "history", "system", "images", "videos", "audios"}
        used |= {"instruction", "input", "output"} if alpaca else set()
    out.columns = {key: columns[key.lower()] for key in obj if key.lower() in columns
                   and not (alpaca and key in ("instruction", "input", "output"))}
    _check_keys(obj, row, used, out)
    if out.record is not None:
        for key in CARRIED_KEYS:
            if row.get(key) is not None:
                out.record[key] = row[key]
        if "tools" in out.record:
            _normalize_tools(out)
        if "objects" in out.record:
            _normalize_objects(out)
    videos = _image_list(row.get("videos"), "videos", out)
    if videos and out.record is not None:
        if out.record.get("videos"):
            out.problems.append(("S012", "videos in typed content parts and a top-level `videos` list: ms-swift's "
                                         "template refuses to mix them"))
        out.record["videos"] = out.record.get("videos", []) + videos
    if row.get("audios"):
        out.has_audio = True
    return out


def rename_columns(obj: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """ms-swift's `safe_rename_columns`: rename the aliases present, unless two present keys map to the same name."""
    present = {key.lower(): key for key in obj}
    safe = {present[alias]: target for alias, target in columns.items() if alias in present}
    targets = Counter(safe.values())
    safe = {key: target for key, target in safe.items() if targets[target] == 1 and key != target}
    return {safe.get(key, key): value for key, value in obj.items()}


def _check_keys(obj: dict[str, Any], row: dict[str, Any], used: set[str], out: Normalized) -> None:
    renamed = {new: old for old, new in zip(obj, row)}
    for key in row:
        name = renamed.get(key, key)
        if key in used or key in CARRIED_KEYS or name in _QUIET_KEYS:
            continue
        if key in NOT_CARRIED_KEYS:
            out.problems.append(("S014", f"key {name!r} is read by ms-swift's template but vlprep cannot count it "
                                         "exactly yet, so it cannot be cached"))
        elif key in OTHER_TASK_KEYS:
            out.problems.append(("S015", f"key {name!r} is read by ms-swift's RLHF/reward tasks, not by SFT: it is "
                                         "not cached" + (" (ms-swift's loader drops a record whose rejected_response "
                                                         "is null or equals the last response)"
                                                         if key == "rejected_response" else "")))
        else:
            out.problems.append(("S009", f"key {name!r} is not read by ms-swift and is dropped at load time"))


# ---- messages / ShareGPT / OpenAI --------------------------------------------------------------------------------

def _from_messages(obj: dict[str, Any], row: dict[str, Any]) -> Normalized:
    source = next(key for key in ("messages", "conversations", "conversation") if key in obj)
    turns = row.get("messages")
    if isinstance(turns, str):  # ms-swift repairs a messages column stored as a JSON / Python literal string
        turns = parse_literal(turns)
    out = Normalized("sharegpt" if source != "messages" else "messages", None)
    if not isinstance(turns, list) or not turns:
        out.problems.append(("S001", f"`{source}` is missing, not a list, or empty"))
        return out
    images = _image_list(row.get("images"), "images" if "images" in obj else "image", out)
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


# ---- query/response, alpaca --------------------------------------------------------------------------------------

def _from_alpaca(obj: dict[str, Any], row: dict[str, Any]) -> Normalized:
    instruction, input_ = obj.get("instruction"), obj.get("input")
    query = f"{instruction}\n{input_}" if instruction and input_ else instruction or input_
    response = obj["output"] if obj.get("output") is not None else row.get("response")
    out = Normalized("alpaca", None)
    if not all(value is None or isinstance(value, str) for value in (instruction, input_)) or \
            not isinstance(query, str):
        out.problems.append(("S003", "`instruction`/`input` give no string query: ms-swift's loader drops the record"))
        return out
    return _from_history(row, _history(row), query, response, out)


def _from_query_response(obj: dict[str, Any], row: dict[str, Any]) -> Normalized:
    out = Normalized("query-response", None)
    if "query" not in row and "response" not in row and "history" not in row:
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        out.input_format = None
        out.problems.append(("S010", f"no `messages`, `conversations`, `query`/`response` or `instruction` key "
                                     f"(keys: {keys})"))
        return out
    return _from_history(row, _history(row), row.get("query"), row.get("response"), out)


def _history(row: dict[str, Any]) -> Any:
    history = row.get("history") or []
    return parse_literal(history) if isinstance(history, str) else history


def _from_history(row: dict[str, Any], history: Any, query: Any, response: Any, out: Normalized) -> Normalized:
    """ms-swift's `history_to_messages`: [[query, response], ...] + the last pair; a null side is skipped."""
    if isinstance(response, list):
        if not response or not all(isinstance(item, str) for item in response):
            out.problems.append(("S003", "`response` is a list that is empty or not all strings: ms-swift's loader "
                                         "cannot use it"))
            return out
        response = response[0]  # ms-swift takes the first of several responses
    if not isinstance(history, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in history):
        out.problems.append(("S011", "`history` is not a list of [query, response] pairs"))
        return out
    messages: list[dict[str, Any]] = []
    system = row.get("system")
    if system is not None:
        if not isinstance(system, str):
            out.problems.append(("S003", f"`system` is {type(system).__name__}, not a string"))
            return out
        messages.append({"role": "system", "content": system})
    for index, (user, assistant) in enumerate([*history, [query, response]]):
        for role, content in (("user", user), ("assistant", assistant)):
            if content is None:
                continue
            if not isinstance(content, str):
                where = f"history[{index}]" if index < len(history) else ("query" if role == "user" else "response")
                out.problems.append(("S003", f"{where} is {type(content).__name__}, not a string"))
                return out
            messages.append({"role": role, "content": content})
    if not any(turn["role"] != "system" for turn in messages):
        out.problems.append(("S001", "no query or response"))
        return out
    out.record = {"messages": messages, "images": _image_list(row.get("images"), "images", out)}
    return out


def parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None


# ---- tools ---------------------------------------------------------------------------------------------------------

def _normalize_tools(out: Normalized) -> None:
    """`tools` as ms-swift reads it: a JSON string is parsed, a single tool becomes a list, each tool is an object
    (a JSON string per tool is parsed). Nulls inside tool schemas are refused: ms-swift's loader strips some of them
    (Arrow padding) and keeps others, so the rendered prompt could differ from the count."""
    assert out.record is not None
    tools = out.record.pop("tools")  # back only once every tool is usable
    if isinstance(tools, list):
        conflict = _arrow_type_conflict(tools, "tools")
        if conflict:
            out.problems.append(("S014", f"{conflict}: ms-swift's JSONL loader stores a `tools` list as one Arrow "
                                         "type (ints become floats, mixed kinds fail), so the rendered tools would "
                                         "differ from the record; give `tools` as a JSON string to keep it verbatim"))
            return
    if isinstance(tools, str):
        parsed = parse_literal(tools)
        tools = parsed if parsed is not None else tools
    if not isinstance(tools, list):
        tools = [tools]
    parsed_tools = []
    for index, tool in enumerate(tools):
        tool = parse_literal(tool) if isinstance(tool, str) else tool
        if not isinstance(tool, dict):
            out.problems.append(("S018", f"tools[{index}] is not a JSON object: ms-swift's agent template cannot "
                                         "render it"))
            return
        if _has_null(tool):
            out.problems.append(("S014", f"tools[{index}] holds a null value: ms-swift's loader strips some nulls "
                                         "from tool schemas, so vlprep cannot count the tools prompt exactly"))
            return
        parsed_tools.append(tool)
    out.record["tools"] = parsed_tools


def _arrow_type_conflict(value: Any, path: str) -> str | None:
    """The first path whose values have more than one JSON kind (int and float count as two), as one Arrow column type
    would have to hold them; list items share their path."""
    kinds: dict[str, set[str]] = {}

    def walk(node: Any, at: str) -> None:
        if isinstance(node, dict):
            kinds.setdefault(at, set()).add("object")
            for key, child in node.items():
                walk(child, f"{at}.{key}")
        elif isinstance(node, list):
            kinds.setdefault(at, set()).add("array")
            for child in node:
                walk(child, f"{at}[]")
        else:
            kinds.setdefault(at, set()).add(type(node).__name__)

    walk(value, path)
    return next((f"{at} holds {' and '.join(sorted(found))} values" for at, found in kinds.items() if len(found) > 1),
                None)


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_null(item) for item in value)
    return False


# ---- grounding objects ---------------------------------------------------------------------------------------------

def _normalize_objects(out: Normalized) -> None:
    """`objects` as ms-swift's loader keeps it: ref, bbox, bbox_type, image_id in that order, each 4-number box with
    its corners ordered (x1 <= x2, y1 <= y2). A structure the loader would drop the record for is reported (S020)."""
    assert out.record is not None
    objects = out.record.pop("objects")
    if not isinstance(objects, dict) or not isinstance(objects.get("bbox"), list):
        out.problems.append(("S020", "`objects` has no `bbox` list: ms-swift's loader drops the record"))
        return
    boxes = []
    for index, box in enumerate(objects["bbox"]):
        if not isinstance(box, list) or len(box) not in (2, 4) or \
                not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in box):
            out.problems.append(("S020", f"objects.bbox[{index}] is {json.dumps(box)[:60]}: not 4 numbers "
                                         "(x1, y1, x2, y2) or a 2-number point"))
            return
        if len(box) == 4:
            box = [min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])]
        boxes.append(box)
    refs = objects.get("ref")
    if refs is not None and not (isinstance(refs, list) and all(isinstance(ref, str) for ref in refs)):
        out.problems.append(("S020", "objects.ref is not a list of strings"))
        return
    image_ids = objects.get("image_id")
    if image_ids is not None and not (isinstance(image_ids, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(out.record["images"]) for i in image_ids)):
        out.problems.append(("S020", f"objects.image_id is not a list of indexes into the record's "
                                     f"{len(out.record['images'])} image(s)"))
        return
    if objects.get("bbox_type") not in (None, "real", "norm1"):
        out.problems.append(("S020", f"objects.bbox_type is {objects['bbox_type']!r}: ms-swift 4.6 knows 'real' "
                                     "(pixels, the default) and 'norm1' (0..1); any other value is read as pixels"))
        return
    if not out.record["images"]:
        out.problems.append(("S014", "`objects` in a record without images: ms-swift renders the raw numbers as "
                                     "they come out of its Arrow loader; vlprep counts grounding only with images"))
        return
    out.record["objects"] = {key: boxes if key == "bbox" else objects[key] for key in OBJECT_KEYS if key in objects}
