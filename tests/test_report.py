"""`vlprep report`: one self-contained HTML page, opened in headless Chromium (Debian's `chromium`, installed by the test
setup when missing): no console error, no network request, every section present, every image decoded; a screenshot
is saved in the test's tmp dir. Without a browser the test skips with the reason, except under CI=true."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from headless_browser import find_chromium, open_page
from insight_data import varied_records, write_images, write_jsonl
from vlprep.cli.app import app
from vlprep.insight.report_html import SECTIONS

runner = CliRunner()


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why_not = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no headless browser: {why_not}")
        pytest.skip(f"no headless browser: {why_not}")
    return path


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory, embedded_processor: Any) -> Path:
    root = tmp_path_factory.mktemp("report")
    data = write_jsonl(root / "data.jsonl", varied_records(60, write_images(root / "images"), seed=3),
                       extra_lines=("{not json", '{"messages": []}'))
    built = runner.invoke(app, ["cache", "-q", str(data), "--out", str(root / "cache"), "--verify", "0", "-j", "1"])
    assert built.exit_code == 1, built.output  # two lines rejected
    made = runner.invoke(app, ["report", str(root / "cache"), "--out", str(root / "report.html")])
    assert made.exit_code == 0, made.output
    return root / "report.html"


@pytest.mark.swift
def test_report_is_self_contained(report_page: Path) -> None:
    page = report_page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:|//)""", page) and "<script" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    for section in SECTIONS:
        assert f"<section id={section}>" in page
    assert "J001" in page and "S001" in page and "data.jsonl:61" in page and "data.jsonl:62" in page


@pytest.mark.browser
@pytest.mark.signals
@pytest.mark.swift
def test_report_opens_in_headless_chromium(report_page: Path, chromium: str, tmp_path: Path) -> None:
    seen = open_page(chromium, report_page, tmp_path / "report.png")
    assert seen.console_errors == []
    assert seen.requests == []
    assert seen.section_ids == list(SECTIONS)
    from datasets import load_from_disk

    shown = load_from_disk(str(report_page.parent / "cache" / "train"))[:3]["images"]
    assert len(seen.images) == 1 + sum(len(images) for images in shown) > 1  # the plots and each sample's thumbnails
    assert all(image["complete"] and image["naturalWidth"] > 0 for image in seen.images), seen.images
    assert seen.screenshot is not None and seen.screenshot.stat().st_size > 10_000


@pytest.mark.swift
def test_report_embeds_a_training_runs_curves(report_page: Path, tmp_path: Path) -> None:
    """`--run DIR` embeds DIR/curves.png (what `vltrain fit` writes) in the page, as a data URI of the same bytes."""
    import base64

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    run = tmp_path / "run"
    run.mkdir()
    figure, axis = pyplot.subplots(figsize=(3, 2))
    axis.plot([1, 2, 3], [2.0, 1.5, 1.2])
    figure.savefig(run / "curves.png")
    out = tmp_path / "with-run.html"
    made = runner.invoke(app, ["report", str(report_page.parent / "cache"), "--out", str(out), "--run", str(run)])
    assert made.exit_code == 0, made.output
    encoded = base64.b64encode((run / "curves.png").read_bytes()).decode()
    assert f"src='data:image/png;base64,{encoded}' alt='training curves (vltrain fit)'" in out.read_text()
    missing = runner.invoke(app, ["report", str(report_page.parent / "cache"), "--out", str(out), "--run",
                                  str(tmp_path)])
    assert missing.exit_code == 2 and "curves.png" in missing.output
