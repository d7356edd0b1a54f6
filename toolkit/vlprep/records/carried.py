"""The carried fields `tools` and `objects`, as ms-swift's loader reads them, or the problem that keeps them out."""

from __future__ import annotations

import json
from typing import Any

from vlprep.records.canonical import OBJECT_KEYS, Normalized, parse_literal


# ---- tools ---------------------------------------------------------------------------------------------------------

def normalize_tools(out: Normalized) -> None:
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

def normalize_objects(out: Normalized) -> None:
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
