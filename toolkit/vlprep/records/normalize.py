"""Normalize: detect a record's input format and convert it to the canonical form, the way ms-swift 4.6's loader does.

ms-swift's `swift sft --dataset FILE.jsonl` runs `AutoPreprocessor` (swift/dataset/preprocessor/core.py) with column
auto-mapping: records with `messages`/`conversations`/`conversation` go through its messages preprocessor (role/content
or ShareGPT from/value, OpenAI `tool_calls`), records with both `instruction` and `input` through its alpaca
preprocessor, everything else through its query/response preprocessor. This module reproduces that mapping, so the
canonical record is what ms-swift's template would be given, and reports what it cannot carry (the canonical form:
vlprep.records.canonical; messages/ShareGPT/OpenAI: vlprep.records.messages; tools and objects: vlprep.records.carried).

Input formats (the name lint reports):
- ``messages``: `messages` with string content (roles also as ShareGPT names), top-level `images`;
- ``sharegpt``: `conversations` with `from`/`value`;
- ``openai``: `messages` whose content is a list of typed parts, or assistant `tool_calls` with `tool` turns;
- ``query-response``: ms-swift's `query`/`response`/`history`/`system` (and the column aliases it maps);
- ``alpaca``: `instruction`/`input`/`output`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from vlprep.records.canonical import (CARRIED_KEYS, MESSAGES_COLUMNS, NOT_CARRIED_KEYS, OTHER_TASK_KEYS, QUIET_KEYS,
                                      RESPONSE_COLUMNS, Normalized, image_list, parse_literal)
from vlprep.records.carried import normalize_objects, normalize_tools
from vlprep.records.messages import from_messages


def normalize(obj: dict[str, Any]) -> Normalized:
    """Detect the format of a parsed JSON object and return its canonical form with the problems met on the way."""
    alpaca = False
    if any(key in obj for key in ("messages", "conversations", "conversation")):
        columns = MESSAGES_COLUMNS
        row = rename_columns(obj, columns)
        out = from_messages(obj, row)
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
            normalize_tools(out)
        if "objects" in out.record:
            normalize_objects(out)
    videos = image_list(row.get("videos"), "videos", out)
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
        if key in used or key in CARRIED_KEYS or name in QUIET_KEYS:
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
    out.record = {"messages": messages, "images": image_list(row.get("images"), "images", out)}
    return out

