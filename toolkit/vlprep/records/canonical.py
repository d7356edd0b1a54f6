"""The canonical record and the ms-swift 4.6 columns it is made from: what every input format is converted to.

Canonical form: {"messages": [{"role", "content"[, "loss"]}], "images": [str], ["videos": [str]], ["tools": [{...}]],
["objects": {ref, bbox, bbox_type, image_id}], ["channel"], ["label"]} where content is a string carrying one `<image>`
tag per image it places, roles are system/user/assistant/tool/tool_call, and each image is a path, a data URI or a URL
exactly as written (`schemas/record.schema.json`).
"""

from __future__ import annotations

import ast
import json
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
QUIET_KEYS = frozenset({"id"})
# Every top-level key a record may have (read by ms-swift, or named by vlprep): a file `{"KEY": [...]}` whose KEY is
# none of these wraps its records (vlprep.inputs.formats).
RECORD_KEYS = (frozenset(MESSAGES_COLUMNS) | frozenset(RESPONSE_COLUMNS) | frozenset(CARRIED_KEYS) | NOT_CARRIED_KEYS
               | OTHER_TASK_KEYS | QUIET_KEYS | {"history"})

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


def parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None



def image_list(value: Any, key: str, out: Normalized) -> list[str]:
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

