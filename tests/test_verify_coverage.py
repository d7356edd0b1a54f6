"""The verification sample covers every record shape a cache contains, not only what a random draw happens to hit.

A corpus of 40 plain records and one record of each rare kind (other input formats, tools, tool results, several
images, each image format and pixel mode, EXIF rotation, images above and below the pixel limits, a data URI, a
prepended tag): `vlprep cache` with its default --verify sends 16 records at random and then the cheapest record of every
shape the random ones missed, and the manifest names the shapes it covered: the same set as verifying everything.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from support import FIXTURES
from vlprep.cli.app import app

runner = CliRunner()


def turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def rare_records() -> dict[str, dict[str, Any]]:
    """A feature each shape key must show -> a record that has it."""
    one = lambda image, text="<image>What is this?": {"messages": [turn("user", text), turn("assistant", "A picture.")],  # noqa: E731
                                                      "images": [image]}
    data_uri = "data:image/png;base64," + base64.b64encode((FIXTURES / "images" / "small.png").read_bytes()).decode()
    tools = [{"type": "function", "function": {"name": "get_time", "description": "Current time",
                                               "parameters": {"type": "object", "properties": {}}}}]
    return {
        "format=sharegpt": {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]},
        "format=openai": {"messages": [{"role": "user", "content": [{"type": "text", "text": "Look: "},
                                                                    {"type": "image", "image": "images/photo.jpg"}]},
                                       turn("assistant", "A photo.")]},
        "format=query-response": {"query": "2+2?", "response": "4", "history": [["1+1?", "2"]]},
        "format=alpaca": {"instruction": "Add the numbers.", "input": "3 and 4", "output": "7"},
        "turns=system": {"messages": [turn("system", "Be brief."), turn("user", "Hi"), turn("assistant", "Hi.")]},
        "tool results": {"messages": [turn("user", "Time?"), turn("assistant", "Checking."), turn("tool", "12:00"),
                                      turn("assistant", "Noon.")]},
        "tools": {"tools": tools, "messages": [turn("user", "Time?"), turn("assistant", "Noon.")]},
        "images=many": {"messages": [turn("user", "<image><image>Same?"), turn("assistant", "No.")],
                        "images": ["images/photo.jpg", "images/chart.png"]},
        "kinds=PNG/RGBA": one("images/rgba.png"),
        "kinds=PNG/L": one("images/gray.png"),
        "kinds=GIF/P": one("images/animated.gif"),
        "kinds=WEBP/RGB": one("images/icon.webp"),
        "I008": one("images/rotated.jpg"),
        "pixels=above max": one("images/large.jpg"),
        "pixels=below min": one("images/tiny.png"),
        "data-uri": one(data_uri),
        "M002": one("images/photo.jpg", "Describe it."),
    }


@pytest.mark.swift
def test_default_verification_covers_every_shape(tmp_path: Path, embedded_processor: Any) -> None:
    (tmp_path / "images").symlink_to(FIXTURES / "images", target_is_directory=True)
    plain = [{"messages": [turn("user", f"Question {n}?"), turn("assistant", f"Answer {n}.")]} for n in range(40)]
    rare = rare_records()
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in plain + list(rare.values())), encoding="utf-8")
    limits = ["--image-max-tokens", "256", "--image-min-tokens", "16", "--workers", "2", "-q"]

    sampled = runner.invoke(app, ["cache", str(data), "--out", str(tmp_path / "sampled"), *limits])
    assert sampled.exit_code == 0, sampled.output
    verified = json.loads((tmp_path / "sampled" / "manifest.json").read_text())["verification"]["ms_swift_template"]
    assert (verified["mode"], verified["random"], verified["mismatches"]) == ("sample", 16, 0)
    assert verified["records_checked"] == 16 + verified["for_coverage"] < len(plain) + len(rare)
    assert verified["for_coverage"] > 0  # the random part alone misses shapes here
    shapes = verified["shapes"]
    for feature in rare:
        assert any(feature in shape for shape in shapes), (feature, sorted(shapes))

    everything = runner.invoke(app, ["cache", str(data), "--out", str(tmp_path / "all"), "--verify", "all", *limits])
    assert everything.exit_code == 0, everything.output
    all_shapes = json.loads((tmp_path / "all" / "manifest.json").read_text())["verification"]["ms_swift_template"]
    assert set(shapes) == set(all_shapes["shapes"])
    assert len(shapes) >= len(rare)
