"""Record shapes: what decides how a record is encoded, so that verification can cover every kind a cache contains.

A random sample of a large cache proves the common records and can miss the rare kind that normalization or counting
gets wrong (the one ShareGPT record with tool calls, the one CMYK image, the one data URI). A record's shape names
what can change its encode: its input format, its turn pattern (system prompt, one round or several, tool results, tool
calls, untrained turns), the fields the template renders (`tools`, `objects`), how many images it has, their formats
and pixel modes, where they fall against the pixel limits, data URIs, and the warnings it was cached with (EXIF
rotation, unusual modes, animation, prepended tags, leading newlines...). Verification sends the cheapest record of
every shape it has not sampled at random (vlprep.cache.verify).
"""

from __future__ import annotations

from vlprep.records.diagnostics import RecordResult
from vlprep.counting.settings import CountSettings


def record_shape(result: RecordResult, settings: CountSettings) -> str:
    """A short readable key; two records with the same key go through the same code paths of the template."""
    assert result.record is not None
    messages = result.record["messages"]
    roles = [turn["role"] for turn in messages]
    turns = ["system"] if roles and roles[0] == "system" else []
    turns.append("multi-turn" if roles.count("assistant") + roles.count("tool_call") > 1 else "one round")
    turns += [name for name, present in (
        ("tool results", "tool" in roles), ("tool calls", "tool_call" in roles),
        ("untrained turn", any(turn.get("loss") is False for turn in messages)),
        ("tools", bool(result.record.get("tools"))), ("objects", bool(result.record.get("objects")))) if present]
    images = result.images
    parts = [f"format={result.input_format}", "turns=" + "+".join(turns),
             f"images={'0' if not images else '1' if len(images) == 1 else 'many'}"]
    if result.videos:
        parts.append(f"videos={'1' if len(result.videos) == 1 else 'many'}")
    if images:
        parts.append("kinds=" + ",".join(sorted({f"{info.format or '?'}/{info.mode or '?'}" for info in images})))
        parts.append("pixels=" + ",".join(sorted({_against_limits(info.width * info.height, settings)
                                                   for info in images})))
        if any(not info.path for info in images):
            parts.append("data-uri")
    warnings = sorted({d.code for d in result.diagnostics if d.severity.value != "error"} - {"D001"})
    if warnings:
        parts.append("warnings=" + ",".join(warnings))
    return "; ".join(parts)


def _against_limits(pixels: int, settings: CountSettings) -> str:
    if pixels > settings.max_pixels:
        return "above max"
    if pixels < settings.min_pixels:
        return "below min"
    return "within"


def encode_cost(result: RecordResult) -> int:
    """What ms-swift's encode of the record costs, roughly: its pixels (decoded, resized, patchified) and tokens."""
    assert result.counted is not None
    frames = sum(header.frames * header.width * header.height for header in result.videos)  # decoded in full
    return sum(info.width * info.height for info in result.images) + frames + result.counted.length
