"""The rule catalog against the code and the docs: every published code is reported by some check and every reported
code is published; docs/rules.md is the catalog; `vlprep rules CODE` explains a rule; each example record that needs
no media file or option is reported by lint with its own rule."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from vlprep.cli.app import app
from vlprep.records.rules import RULES
from vlprep.records.rules.doc import DOC_PATH, render

TOOLKIT = Path(__file__).resolve().parent.parent / "toolkit" / "vlprep"
CATALOG = TOOLKIT / "records" / "rules"
CODE = re.compile(r"[A-Z]\d{3}")
# Examples that describe a file's content (a truncated JPEG, a rotated video, ...) or an option (--image-root): the
# record alone does not trigger them. Every other example that is a whole JSON value must.
NEEDS_SETUP = {"I002", "I003", "I004", "I005", "I006", "I007", "I008", "I009", "I010", "I013", "I014", "I015",
               "V002", "V003", "V004", "V005", "V006", "V009", "V010", "V011", "V013", "V014"}
runner = CliRunner()


def codes_in_source() -> dict[str, set[str]]:
    """Every string constant shaped like a rule code in vlprep's source outside the catalog -> the files using it."""
    found: dict[str, set[str]] = {}
    for path in TOOLKIT.rglob("*.py"):
        if CATALOG in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value):
                found.setdefault(node.value, set()).add(str(path.relative_to(TOOLKIT)))
    return found


def test_every_published_code_is_reported_and_every_reported_code_is_published() -> None:
    used = codes_in_source()
    live = {code for code, rule in RULES.items() if not rule.retired}
    assert sorted(live - set(used)) == [], "published but reported by nothing: report it, or retire it"
    assert sorted(set(used) - set(RULES)) == [], "reported but not in the catalog (toolkit/vlprep/records/rules/)"
    retired = {code: sorted(used[code]) for code in set(RULES) - live if code in used}
    assert retired == {}, "a retired code is reported again: give the check a new code"


def test_docs_rules_md_is_generated_from_the_catalog() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), \
        "docs/rules.md drifted from the catalog: python -m vlprep.records.rules.doc --write"


def test_rules_code_explains_the_rule_in_text_and_json() -> None:
    rule = RULES["I004"]
    text = runner.invoke(app, ["rules", "I004"])
    assert text.exit_code == 0, text.output
    for part in (rule.code, rule.name, rule.severity.value, rule.summary, rule.why, rule.fix,
                 *rule.example.splitlines()):
        assert part in text.stdout
    as_json = runner.invoke(app, ["rules", "S023", "i00", "I004", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [row["code"] for row in rows] == ["S023"] + [f"I00{digit}" for digit in range(1, 10)]  # as named, once
    assert rows[4] == {"code": "I004", "name": rule.name, "severity": "error", "summary": rule.summary,
                       "why": rule.why, "example": rule.example, "fix": rule.fix, "retired": None}


def test_rules_lists_every_rule_with_its_explanation_and_refuses_an_unknown_code() -> None:
    listed = runner.invoke(app, ["rules", "--format", "json"])
    assert [row["code"] for row in json.loads(listed.stdout)] == list(RULES)
    assert {row["code"]: row["retired"] for row in json.loads(listed.stdout) if row["retired"]} == \
        {code: rule.retired for code, rule in RULES.items() if rule.retired}
    unknown = runner.invoke(app, ["rules", "I004", "S0023"])
    assert unknown.exit_code == 2
    assert "unknown rule code or prefix: 'S0023' (did you mean S023?)" in unknown.stderr


def test_each_self_contained_example_is_reported_with_its_rule(tmp_path: Path) -> None:
    """An example is the record as written, then optionally two spaces and a note in parentheses. The examples that
    are whole JSON values are linted as one file (a non-object last: a leading `[` would make the file an array)."""
    examples = []
    for rule in RULES.values():
        record = rule.example.split("  (")[0]
        try:
            value = json.loads(record)
        except ValueError:
            continue
        if rule.code not in NEEDS_SETUP and not rule.retired:
            examples.append((not isinstance(value, dict), rule.code, record))
    examples.sort(key=lambda example: example[0])
    assert len(examples) >= 35  # most record-level rules have a runnable example
    data = tmp_path / "examples.jsonl"
    data.write_text("".join(record + "\n" for _, _, record in examples), encoding="utf-8")
    result = runner.invoke(app, ["lint", "-q", "--format", "json", str(data)])
    reported: dict[int, set[str]] = {}
    for diagnostic in json.loads(result.stdout)["diagnostics"]:
        reported.setdefault(diagnostic["line"], set()).add(diagnostic["code"])
    missed = {code: sorted(reported.get(line, ())) for line, (_, code, _) in enumerate(examples, start=1)
              if code not in reported.get(line, ())}
    assert missed == {}, "these rules' examples do not trigger them (what lint reported instead)"
