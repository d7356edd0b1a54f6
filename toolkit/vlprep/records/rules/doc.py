"""The rules explained in words: one rule as `vlprep rules CODE` prints it, and docs/rules.md (the table and every
explanation), generated from the catalog.

`python -m vlprep.records.rules.doc --write` rewrites docs/rules.md; `--check` exits 1 when it differs from the catalog
(tests/test_rules_catalog.py fails on that drift too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlprep.records.rules import RULES, Rule

DOC_PATH = Path(__file__).resolve().parents[4] / "docs" / "rules.md"  # the repository's docs/, beside toolkit/
_INTRO = """\
# Rules

Every problem `vlprep lint` and `vlprep cache` report has a stable code, a name and a default severity. `vlprep cache`
rejects a record with an error and caches one with only warnings or infos; `vlprep lint` exits 1 on errors (or on
what `--fail-on` names) and takes `--select`/`--ignore` code prefixes, like ruff (`--select I,S002`, `--ignore D`).
`vlprep rules CODE` prints a rule's explanation in the terminal (`--format json` for tools).

This page is generated from the rule catalog (`toolkit/vlprep/records/rules/`): edit the catalog, then run
`python -m vlprep.records.rules.doc --write`.
"""


def severity_label(rule: Rule) -> str:
    """The severity column: a retired code is never reported, so it has none."""
    return "retired" if rule.retired else rule.severity.value


def explain(rule: Rule, level: int = 1) -> str:
    """The rule in Markdown that also reads as plain text: heading, severity, summary, why, example, fix."""
    heading, section = "#" * level, "#" * (level + 1)
    example = "\n".join(f"    {line}" for line in rule.example.splitlines())
    parts = [f"{heading} {rule.code} {rule.name}", f"Severity: {severity_label(rule)}", rule.summary]
    if rule.retired:
        parts.append(f"Retired: {rule.retired}")
    parts += [f"{section} Why it matters", rule.why, f"{section} Example", example, f"{section} Fix", rule.fix]
    return "\n\n".join(parts) + "\n"


def table() -> str:
    rows = []
    for rule in RULES.values():
        summary = rule.summary.replace("|", "\\|")  # a pipe would end the cell
        rows.append(f"| `{rule.code}` | {rule.name} | {severity_label(rule)} | {summary} |")
    return "\n".join(["| code | name | severity | summary |", "|---|---|---|---|", *rows]) + "\n"


def render() -> str:
    """docs/rules.md as the catalog makes it."""
    return "\n".join([_INTRO, table(), *(explain(rule, level=2) for rule in RULES.values())])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"rewrite {DOC_PATH}")
    action.add_argument("--check", action="store_true", help="exit 1 when the file differs from the catalog")
    args = parser.parse_args(argv)
    if args.write:
        DOC_PATH.write_text(render(), encoding="utf-8")
        return 0
    if DOC_PATH.read_text(encoding="utf-8") != render():
        print(f"{DOC_PATH} differs from the rule catalog: python -m vlprep.records.rules.doc --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
