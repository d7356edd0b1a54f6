"""Count: a record's input_ids, labels and length exactly as ms-swift 4.6's Qwen3-VL template encodes it for training.

No pixels are touched: image sizes come from headers, are resized with qwen-vl-utils' `smart_resize` arithmetic
(vlprep.counting.resize, factor patch·merge, 32; no torch import) under the pixel limits, and each `<|image_pad|>`
expands to grid_t·grid_h·grid_w / merge² (the model family's geometry and token ids: vlprep.models). The text side
follows the template's own segmentation: the conversation becomes a list of
context pieces (template strings, queries, responses), pieces with the same loss weight are merged, and each merged
segment is tokenized on its own. That is why content starting with
"\n" gives one token more than a plain render of the chat template.

What the template adds around the text is rendered here too: the `tools` system prompt of its default agent template
(hermes), `tool_call` turns as `<tool_call>` blocks, per-turn `loss` (an untrained response), and the grounding tags
`<ref-object>` / `<bbox>` from `objects` (boxes scaled to 0..1000 with the image sizes from the headers).

Videos likewise: each `<video>` becomes `<|vision_start|><|video_pad|><|vision_end|>`, and the `<|video_pad|>` becomes
the per-frame-pair text vlprep.counting.video plans from the container header (timestamps and pads), tokenized on its own as
the template's processor call does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from vlprep.records.diagnostics import ImageInfo
from vlprep.records.canonical import IMAGE_TAG, VIDEO_TAG, parse_literal
from vlprep.counting.resize import smart_resize
from vlprep.counting.settings import CountSettings, UnencodableImage
from vlprep.counting.turns import Turn, split_turns
from vlprep.counting.video import VideoHeader, VideoPlan, plan_video
from vlprep.models.family import ModelFamily

IM_END = "<|im_end|>\n"
STOP_WORDS = ("<|endoftext|>", "<|im_end|>")
_TEMPLATE_TAGS = re.compile("(" + "|".join(map(re.escape, (
    "<image>", "<video>", "<audio>", "<bbox>", "<ref-object>", "<cot-process>", "<start-image>"))) + ")")


@dataclass(frozen=True)
class CountedRecord:
    length: int
    image_tokens: int
    grids: tuple[tuple[int, int, int], ...]
    video_tokens: int = 0
    video_grids: tuple[tuple[int, int, int], ...] = ()
    trained_tokens: int = 0  # labels != -100
    turns: tuple[Turn, ...] = ()  # what a cache stores per row for `vlprep stats`


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    grids: tuple[tuple[int, int, int], ...]
    video_grids: tuple[tuple[int, int, int], ...] = ()


def image_grid(width: int, height: int, settings: CountSettings) -> tuple[int, int, int]:
    family = settings.family
    try:
        resized_h, resized_w = smart_resize(height, width, family.factor, settings.min_pixels, settings.max_pixels,
                                            settings.max_ratio)
    except ValueError as error:
        raise UnencodableImage(f"{width}x{height}: {error}") from None
    if resized_h <= 0 or resized_w <= 0:
        raise UnencodableImage(f"{width}x{height} resizes to {resized_w}x{resized_h} under "
                               f"--image-max-tokens {settings.image_max_tokens}")
    return (1, resized_h // family.patch_size, resized_w // family.patch_size)


def largest_fitting_image_max_tokens(counted: CountedRecord, images: list[ImageInfo], settings: CountSettings,
                                     max_length: int) -> int | None:
    """The largest --image-max-tokens (not below --image-min-tokens) under which the record is at most `max_length`
    tokens, or None when none is: its text tokens stay, each image's tokens follow `image_grid` (monotone in the
    limit, so a bisection finds the exact bound)."""
    text_tokens = counted.length - counted.image_tokens

    def fits(limit: int) -> bool:
        limited = replace(settings, image_max_tokens=limit)
        try:
            grids = [image_grid(info.width, info.height, limited) for info in images]
        except UnencodableImage:
            return False
        return text_tokens + settings.family.tokens_per_grids(grids) <= max_length

    low, high = settings.image_min_tokens, settings.image_max_tokens
    if not images or not fits(low):
        return None
    while low < high:  # fits(low) holds; find the largest such value below `high`
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


class TokenCounter:
    """Encodes canonical records with a tokenizer's Rust backend (`tokenizers.Tokenizer`), one batch call per
    record; a transformers tokenizer's `.backend_tokenizer`, or the same loaded alone (vlprep.counting.processor_memo)."""

    def __init__(self, backend: Any, settings: CountSettings) -> None:
        self._backend = backend
        self.settings = settings

    @property
    def backend(self) -> Any:
        """The `tokenizers.Tokenizer` it counts with."""
        return self._backend

    def count(self, record: dict[str, Any], images: list[ImageInfo], videos: tuple[VideoHeader, ...] = ()
              ) -> CountedRecord:
        encoded = self.encode(record, images, videos)
        family = self.settings.family
        image_pad, video_pad = family.image_pad.id, family.video_pad.id
        image_tokens = sum(1 for token in encoded.input_ids if token == image_pad)
        expected = family.tokens_per_grids(encoded.grids)
        assert image_tokens == expected, f"<|image_pad|> count {image_tokens} != sum(grid)/merge² = {expected}"
        video_tokens = sum(1 for token in encoded.input_ids if token == video_pad)
        expected = family.tokens_per_grids(encoded.video_grids)
        assert video_tokens == expected, f"<|video_pad|> count {video_tokens} != sum(video grid)/merge² = {expected}"
        turns = tuple(split_turns(encoded.input_ids, encoded.labels, self._backend.id_to_token, family.im_start.id))
        return CountedRecord(len(encoded.input_ids), image_tokens, encoded.grids, video_tokens, encoded.video_grids,
                             sum(turn.trained for turn in turns), turns)

    def encode(self, record: dict[str, Any], images: list[ImageInfo], videos: tuple[VideoHeader, ...] = ()
               ) -> Encoded:
        """`videos`: the headers of the record's videos (vlprep.checks.videos), in order; UnencodableVideo when
        ms-swift could not encode one."""
        grids = tuple(image_grid(info.width, info.height, self.settings) for info in images)
        plans = [plan_video(header, self.settings) for header in videos]
        segments = _segments(record, images, self.settings.family, len(plans))
        encodings = self._backend.encode_batch([text for text, _ in segments], add_special_tokens=False)
        input_ids: list[int] = []
        labels: list[int] = []
        for (_, trained), encoding in zip(segments, encodings):
            input_ids += encoding.ids
            labels += encoding.ids if trained else [-100] * len(encoding.ids)
        self._train_end_of_turn(input_ids, labels)
        labels[0] = -100
        encoded = _expand_image_pads(input_ids, labels, grids, self.settings.family)
        return self._expand_video_pads(encoded, plans) if plans else encoded

    def _expand_video_pads(self, encoded: Encoded, plans: list[VideoPlan]) -> Encoded:
        """Each video's `<|video_pad|>` becomes its planned text, tokenized alone (the template splits the
        processor's token list on "\n", which never merges with what is around it)."""
        texts = self._backend.encode_batch([plan.text() for plan in plans], add_special_tokens=False)
        out_ids: list[int] = []
        out_labels: list[int] = []
        video_index = 0
        pad = self.settings.family.video_pad.id
        for token, label in zip(encoded.input_ids, encoded.labels):
            if token == pad and video_index < len(plans):
                out_ids += texts[video_index].ids
                out_labels += [-100] * len(texts[video_index].ids)
                video_index += 1
            else:
                out_ids.append(token)
                out_labels.append(label)
        return Encoded(out_ids, out_labels, encoded.grids, tuple(plan.grid for plan in plans))

    def _train_end_of_turn(self, input_ids: list[int], labels: list[int]) -> None:
        """ms-swift's dynamic EOS: the `<|im_end|>\\n` opening an untrained run right after a trained one is trained."""
        suffix = self._backend.encode(IM_END, add_special_tokens=False).ids
        start = 0
        for i in range(1, len(labels) + 1):
            if labels[i - 1] >= 0 and i < len(labels) and labels[i] == -100:
                start = i
            elif start > 0 and labels[i - 1] == -100 and (i == len(labels) or labels[i] >= 0):
                if i - start >= len(suffix) and input_ids[start:start + len(suffix)] == suffix:
                    labels[start:start + len(suffix)] = suffix


def _expand_image_pads(input_ids: list[int], labels: list[int], grids: tuple[tuple[int, int, int], ...],
                       family: ModelFamily) -> Encoded:
    pad = family.image_pad.id
    out_ids: list[int] = []
    out_labels: list[int] = []
    image_index = 0
    for token, label in zip(input_ids, labels):
        if token == pad and image_index < len(grids):
            count = family.tokens_per_grid(grids[image_index])
            out_ids += [pad] * count
            out_labels += [-100] * count
            image_index += 1
        else:
            out_ids.append(token)
            out_labels.append(label)
    return Encoded(out_ids, out_labels, grids)


# ---- the template's segmentation -------------------------------------------------------------------------------

def _prepare_messages(record: dict[str, Any], image_count: int, family: ModelFamily
                      ) -> tuple[str | None, list[dict[str, Any]]]:
    """System split off (the tools prompt added), missing image tags prepended, tool calls rendered, tool turns and
    repeated roles folded, as ms-swift does. An assistant turn keeps its text as (text, loss) parts: ms-swift merges
    consecutive assistant turns into a list whose parts keep their own `loss`."""
    messages = [dict(turn) for turn in record["messages"]]
    if family.trims_content:
        _trim_contents(messages)
    system = messages.pop(0)["content"] if messages and messages[0]["role"] == "system" else None
    if record.get("tools"):
        system = tools_system_prompt(record["tools"], system)
    if image_count and messages:
        everything = "\n".join(([system] if system else []) + [turn["content"] for turn in messages])
        missing = image_count - everything.count(IMAGE_TAG)
        if missing > 0:
            messages[0]["content"] = IMAGE_TAG * missing + messages[0]["content"]
    messages = _render_tool_calls(messages)
    for turn in messages:
        if turn["role"] == "assistant":
            turn["parts"] = [(turn["content"], turn.get("loss"))]
    _fold_tools_after_user(messages)
    folded: list[dict[str, Any]] = []
    index = 0
    while index < len(messages):
        turn = messages[index]
        previous = folded[-1] if folded else None
        if previous and previous["role"] == "assistant" and turn["role"] == "tool":
            tools = [turn]
            while index + 1 < len(messages) and messages[index + 1]["role"] == "tool":
                index += 1
                tools.append(messages[index])
            folded.append({"role": "tool", "prompt": [IM_END, _user_turn(_tool_responses(tools))]})
        elif previous and previous["role"] == turn["role"] == "assistant":
            previous["parts"] = previous["parts"] + turn["parts"]
            previous["content"] += turn["content"]
        elif previous and previous["role"] == turn["role"] == "user":
            previous["content"] += turn["content"]
        else:
            folded.append(turn)
        index += 1
    if family.non_thinking_prefix:
        _thinking_prefixes(folded, family.non_thinking_prefix)
    return system, folded


def _trim_contents(messages: list[dict[str, Any]]) -> None:
    """The Qwen3.5 template (a family with `trims_content`)'s `|trim` of user/system/tool text and its canonical `<think>` re-wrapping."""
    for turn in messages:
        content = turn.get("content")
        if not isinstance(content, str):
            continue
        stripped = content.strip()
        if turn["role"] == "assistant" and "<think>" in stripped and "</think>" in stripped:
            before, _, after = stripped.partition("</think>")
            reasoning = before.rstrip("\n").rsplit("<think>", 1)[-1].lstrip("\n").strip()
            stripped = f"<think>\n{reasoning}\n</think>\n\n{after.lstrip(chr(10))}"
        if turn["role"] in ("user", "system", "tool", "assistant"):
            turn["content"] = stripped


def _thinking_prefixes(messages: list[dict[str, Any]], prefix: str) -> None:
    """ms-swift in training: the non-thinking prefix before every assistant reply not starting with `<think>`, in every
    round (earlier rounds keep their reasoning too: measured against ms-swift 4.6's train mode)."""
    for turn in messages:
        if turn["role"] != "assistant" or not turn["parts"]:
            continue
        first, loss = turn["parts"][0]
        if not first.startswith(("<think>", prefix)):
            turn["parts"] = [(prefix + first, loss)] + turn["parts"][1:]
        turn["content"] = "".join(text for text, _ in turn["parts"])


def tools_system_prompt(tools: list[dict[str, Any]], system: str | None) -> str:
    """The system prompt the Qwen3-VL template's default agent template (hermes) renders for `tools`."""
    described = "\n".join(json.dumps(tool if "type" in tool or "function" in tool else
                                     {"type": "function", "function": tool}, ensure_ascii=False) for tool in tools)
    return (f"{system or ''}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            f"{described}\n</tools>\n\nFor each function call, return a json object with function name and "
            "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


def _render_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run of tool_call turns (parallel calls) becomes one assistant turn of `<tool_call>` blocks, keeping the
    first `loss` given in the run."""
    out: list[dict[str, Any]] = []
    for turn in messages:
        if turn["role"] != "tool_call":
            out.append(turn)
            continue
        call = parse_literal(turn["content"])
        arguments = call["arguments"] if call.get("arguments") is not None else call.get("parameters")
        rendered = json.dumps({"name": call["name"], "arguments": parse_literal(arguments)
                               if isinstance(arguments, str) else arguments}, ensure_ascii=False)
        block = f"<tool_call>\n{rendered}\n</tool_call>"
        previous = out[-1] if out else None
        if previous is not None and previous.get("calls"):
            previous["content"] += "\n" + block
            if "loss" not in previous and "loss" in turn:
                previous["loss"] = turn["loss"]
        else:
            out.append({"role": "assistant", "content": block, "calls": True,
                        **({"loss": turn["loss"]} if "loss" in turn else {})})
    return out


def _fold_tools_after_user(messages: list[dict[str, Any]]) -> None:
    """Tool results straight after a user turn are appended to that user turn."""
    index = 0
    while index < len(messages):
        if messages[index]["role"] != "tool" or index == 0 or messages[index - 1]["role"] != "user":
            index += 1
            continue
        end = index
        while end + 1 < len(messages) and messages[end + 1]["role"] == "tool":
            end += 1
        messages[index - 1]["content"] += IM_END + "<|im_start|>user\n" + _tool_responses(messages[index:end + 1])
        del messages[index:end + 1]


def _tool_responses(tools: list[dict[str, Any]]) -> str:
    return "\n".join(f"<tool_response>\n{turn['content']}\n</tool_response>" for turn in tools)


def _user_turn(query: str) -> str:
    return f"<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n"


def _segments(record: dict[str, Any], images: list[ImageInfo], family: ModelFamily, video_count: int = 0
              ) -> list[tuple[str, bool]]:
    """The merged (text, trained) segments the template tokenizes one by one."""
    image_count = len(images)
    system, messages = _prepare_messages(record, image_count, family)
    if messages and messages[0]["role"] == "assistant":
        messages.insert(0, {"role": "user", "content": ""})
    if len(messages) % 2:
        messages.append({"role": "assistant", "content": None, "parts": []})
    pieces: list[tuple[str, bool]] = []
    if system:
        pieces.append((f"<|im_start|>system\n{system}<|im_end|>\n", False))
    rounds = len(messages) // 2
    for round_index in range(rounds):
        query, answer = messages[2 * round_index], messages[2 * round_index + 1]
        response = answer["content"]
        if query["role"] == "tool":
            pieces += [(piece, False) for piece in query["prompt"]]
        else:
            pieces.append((_user_turn(query["content"]), False))
        if response is None:
            continue
        pieces += [(text, loss is not False) for text, loss in answer["parts"]]
        if round_index < rounds - 1:
            if messages[2 * round_index + 2]["role"] != "tool":
                pieces.append((IM_END, False))
        elif not response.endswith(STOP_WORDS):
            pieces.append((IM_END, True))
    refs, boxes = grounding_texts(record.get("objects"), images)
    return _merge(_replace_tags(pieces, image_count, refs, boxes, family, video_count))


def grounding_texts(objects: dict[str, Any] | None, images: list[ImageInfo]) -> tuple[list[str], list[str]]:
    """What the Qwen3-VL template puts for each `<ref-object>` and `<bbox>` (its legacy QWENVL_BBOX_FORMAT): boxes
    scaled to 0..1000 from pixels (bbox_type real, against the size of image `image_id`) or from 0..1 (norm1)."""
    if not objects:
        return [], []
    boxes = [list(box) for box in objects["bbox"]]
    if images:
        image_ids = list(objects.get("image_id") or [])
        image_ids += [0] * (len(boxes) - len(image_ids))
        for box, image_id in zip(boxes, image_ids):
            width, height = (1, 1) if objects.get("bbox_type") == "norm1" else \
                (images[image_id].width, images[image_id].height)
            for i in range(0, len(box) - 1, 2):
                box[i], box[i + 1] = int(round(box[i] / width * 1000)), int(round(box[i + 1] / height * 1000))
    refs = [f"<|object_ref_start|>{ref}<|object_ref_end|>" for ref in objects.get("ref") or []]
    points = [",".join(f"({x},{y})" for x, y in zip(box[::2], box[1::2])) for box in boxes]
    return refs, [f"<|box_start|>{point}<|box_end|>" for point in points]


def _replace_tags(pieces: list[tuple[str, bool]], image_count: int, refs: list[str], boxes: list[str],
                  family: ModelFamily, video_count: int = 0) -> list[tuple[str, bool]]:
    """Images, videos, then grounding tags, replaced in order; tags beyond what the record provides stay text."""
    start, end = family.vision_start.text, family.vision_end.text
    image_replacement, video_replacement = start + family.image_pad.text + end, start + family.video_pad.text + end
    out: list[tuple[str, bool]] = []
    replaced = {IMAGE_TAG: 0, VIDEO_TAG: 0, "<ref-object>": 0, "<bbox>": 0}
    for text, trained in pieces:
        for part in _TEMPLATE_TAGS.split(text):
            if not part:
                continue
            if part == IMAGE_TAG and replaced[part] < image_count:
                out.append((image_replacement, False))
            elif part == VIDEO_TAG and replaced[part] < video_count:
                out.append((video_replacement, False))
            elif part == "<ref-object>" and replaced[part] < len(refs):
                out.append((refs[replaced[part]], trained))
            elif part == "<bbox>" and replaced[part] < len(boxes):
                out.append((boxes[replaced[part]], trained))
            else:
                out.append((part, trained))
                continue
            replaced[part] += 1
    return out


def _merge(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    merged: list[tuple[str, bool]] = []
    for text, trained in pieces:
        if merged and merged[-1][1] == trained:
            merged[-1] = (merged[-1][0] + text, trained)
        else:
            merged.append((text, trained))
    return merged
