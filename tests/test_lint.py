"""`vlprep lint` over the bundled fixture corpus: every planted problem found with its code and line, clean data silent."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from support import FIXTURES, SCHEMAS, codes_by_line, lint_json, runner
from vlprep.cli.app import app
from vlprep.records.rules import RULES



@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_every_planted_problem_is_reported_on_its_line(workers: str, mode: str) -> None:
    expected = {int(line): set(codes) for line, codes in json.loads((FIXTURES / "planted.expected.json").read_text()).items()}
    args = [str(FIXTURES / "planted.jsonl"), "--workers", workers] + (["--fast"] if mode == "fast" else [])
    code, report = lint_json(*args)
    assert code == 1
    found = codes_by_line(report)
    assert {line: found.get(line, set()) for line in expected} == expected
    assert set(found) <= set(expected)


def test_full_decode_finds_corruption_that_fast_mode_cannot(tmp_path: Path) -> None:
    """Both modes see a file cut short (end marker missing); only decoding sees damage inside the stream."""
    chart = (FIXTURES / "images" / "chart.png").read_bytes()
    middle = len(chart) // 2
    (tmp_path / "damaged.png").write_bytes(chart[:middle] + b"\xff" * 64 + chart[middle + 64:])
    shutil.copy(FIXTURES / "images" / "truncated.jpg", tmp_path / "cut.jpg")
    records = [{"messages": [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "y"}],
                "images": [name]} for name in ("cut.jpg", "damaged.png")]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    _, full = lint_json(str(data), "--select", "I004")
    _, fast = lint_json(str(data), "--select", "I004", "--fast")
    assert codes_by_line(full) == {1: {"I004"}, 2: {"I004"}}
    assert codes_by_line(fast) == {1: {"I004"}}


@pytest.mark.parametrize("name", ["clean_messages", "clean_sharegpt", "clean_openai"])
def test_clean_records_in_each_format_produce_nothing(name: str) -> None:
    code, report = lint_json(str(FIXTURES / f"{name}.jsonl"))
    assert code == 0
    found = [(d["line"], d["code"]) for d in report["diagnostics"]]
    # clean_messages' line 9 embeds line 8's small.png as a data URI: the same picture twice, which D002 is for
    assert found == ([(9, "D002")] if name == "clean_messages" else [])
    formats = report["summary"]["files"][0]["formats"]
    assert list(formats) == [name.removeprefix("clean_")]


def test_file_level_rules_bom_and_mixed_formats() -> None:
    _, report = lint_json(str(FIXTURES / "bom.jsonl"), str(FIXTURES / "mixed.jsonl"), "--ignore", "D")
    found = {(Path(d["file"]).name, d["line"], d["code"]) for d in report["diagnostics"]}
    assert found == {("bom.jsonl", 1, "J004"), ("mixed.jsonl", 5, "F001")}


def test_report_matches_its_schema_and_every_rule_is_documented() -> None:
    _, report = lint_json(str(FIXTURES / "planted.jsonl"))
    jsonschema.validate(report, json.loads((SCHEMAS / "lint-report.schema.json").read_text()))
    table = (FIXTURES.parent / "docs" / "rules.md").read_text()
    documented = {match[0]: (*match[1:3], match[3].replace("\\|", "|")) for match in re.findall(r"^\| `(\w\d{3})` \| ([\w-]+) \| (\w+) \| (.+) \|$",
                                                              table, flags=re.MULTILINE)}
    assert documented == {code: (rule.name, "retired" if rule.retired else rule.severity.value, rule.summary)
                          for code, rule in RULES.items()}


def test_what_training_would_learn_wrong_is_an_error(tmp_path: Path) -> None:
    """An empty assistant reply teaches the model to say nothing (S023); a literal <image> with no images trains on
    the tag's text (M004), as more tags than images do (M001): errors, which the cache rejects. Empty content in
    other roles stays a warning (S004)."""
    records = [
        {"messages": [{"role": "user", "content": "Say something."}, {"role": "assistant", "content": ""}]},
        {"messages": [{"role": "user", "content": "What is <image>?"}, {"role": "assistant", "content": "A tag."}]},
        {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello."}]},
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    code, report = lint_json(str(data))
    found = {(d["line"], d["code"], d["severity"]) for d in report["diagnostics"]}
    assert found == {(1, "S023", "error"), (2, "M004", "error"), (3, "S004", "warning")}
    assert code == 1
    assert {row["code"]: row["severity"] for row in json.loads(runner.invoke(app, ["rules", "--format", "json"]).output)
            if row["code"] in ("S004", "S023", "M004")} == {"S004": "warning", "S023": "error", "M004": "error"}


def test_select_ignore_and_fail_on() -> None:
    code, report = lint_json(str(FIXTURES / "planted.jsonl"), "--select", "T,D001")
    assert set(report["summary"]["counts"]) == {"T001", "T002", "D001"}
    assert code == 1
    code, _ = lint_json(str(FIXTURES / "planted.jsonl"), "--select", "D001")
    assert code == 0
    code, _ = lint_json(str(FIXTURES / "planted.jsonl"), "--select", "D001", "--fail-on", "warning")
    assert code == 1
    code, report = lint_json(str(FIXTURES / "planted.jsonl"), "--ignore", "ALL")
    assert (code, report["diagnostics"]) == (0, [])


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["lint", "no-such-file.jsonl"]).exit_code == 2
    assert runner.invoke(app, ["lint", str(FIXTURES / "demo.jsonl"), "--select", "Z999"]).exit_code == 2
    assert runner.invoke(app, ["lint", str(FIXTURES / "demo.jsonl"), "--format", "xml"]).exit_code == 2


def test_github_and_text_formats_name_file_and_line() -> None:
    result = runner.invoke(app, ["lint", "-q", "--format", "github", str(FIXTURES / "planted.jsonl"), "--select", "J001"])
    assert result.stdout.strip() == (f"::error file={FIXTURES / 'planted.jsonl'},line=1,col=15,title=J001 invalid-json::"
                                     "invalid JSON: Expecting value at column 15")
    result = runner.invoke(app, ["lint", "-q", str(FIXTURES / "planted.jsonl"), "--select", "I001"])
    assert f"{FIXTURES / 'planted.jsonl'}:25: I001" in result.stdout.replace("\n", "")


def test_image_root_refuses_paths_that_escape_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(FIXTURES / "images" / "photo.jpg", root / "inside.jpg")
    (root / "link.jpg").symlink_to(FIXTURES / "images" / "photo.jpg")
    records = [{"messages": [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "y"}],
                "images": [path]} for path in ("inside.jpg", "link.jpg", "../root/inside.jpg", "../../etc/passwd")]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    _, report = lint_json(str(data), "--image-root", str(root), "--ignore", "D")
    assert {line: codes for line, codes in codes_by_line(report).items()} == {2: {"I002"}, 4: {"I002"}}


def test_long_lines_are_rejected_without_parsing(tmp_path: Path) -> None:
    data = tmp_path / "long.jsonl"
    big = {"messages": [{"role": "user", "content": "x" * 300_000}, {"role": "assistant", "content": "y"}]}
    data.write_text(json.dumps(big) + "\n" + (FIXTURES / "clean_messages.jsonl").read_text().splitlines()[-1] + "\n")
    _, report = lint_json(str(data), "--max-line-bytes", "100000")
    assert codes_by_line(report) == {1: {"J006"}}


def test_deep_nesting_is_rejected(tmp_path: Path) -> None:
    data = tmp_path / "deep.jsonl"
    data.write_text('{"messages": ' + "[" * 5000 + "]" * 5000 + "}\n" + '{"a": ' + "[" * 100 + "]" * 100 + "}\n")
    _, report = lint_json(str(data))
    assert codes_by_line(report) == {1: {"J007"}, 2: {"J007"}}


def test_input_file_is_not_modified() -> None:
    before = (FIXTURES / "planted.jsonl").read_bytes()
    lint_json(str(FIXTURES / "planted.jsonl"))
    assert (FIXTURES / "planted.jsonl").read_bytes() == before
