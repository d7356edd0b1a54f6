"""The rule catalog: every problem vlprep reports has a stable code, a name, a default severity and an explanation
(why it matters, a failing example, the fix), printed by `vlprep rules CODE` and in docs/rules.md.

Codes never change meaning once published (like ruff's): a new check gets a new code, and a code no longer reported is
kept, marked retired. The first letter says the family (one module each):
J = the JSONL line or array element itself (and the file's JSON / compression framing) (lines),
S = structure of the conversation (turns, fields), M = media tags, T = template injection (media),
I = images (images), V = videos (videos), D = duplicates, F = file-level, L = token length, W = worker/limits (the run
itself) (limits).
"""

from __future__ import annotations

from vlprep.errors import closest
from vlprep.records.rules import fields, images, limits, lines, media, turns, videos
from vlprep.records.rules.rule import Rule, Severity

__all__ = ["RULES", "Rule", "Severity", "expand", "select_codes"]

_FAMILIES = (lines.RULES, sorted(turns.RULES + fields.RULES, key=lambda rule: rule.code), media.RULES, videos.RULES,
             images.RULES, limits.RULES)
RULES: dict[str, Rule] = {rule.code: rule for family in _FAMILIES for rule in family}


def expand(prefixes: list[str]) -> list[str]:
    """The codes that ruff-style prefixes ("I", "I00", "I004", "ALL") name, prefix by prefix (each one's in catalog
    order), without repeats; ValueError for a prefix that names none (with the closest code)."""
    out: dict[str, None] = {}  # ordered set
    for prefix in prefixes:
        prefix = prefix.strip().upper()
        matched = [code for code in RULES if prefix == "ALL" or code.startswith(prefix)]
        if not matched:
            raise ValueError(f"unknown rule code or prefix: {prefix!r}{closest(prefix, RULES)} (see `vlprep rules`)")
        out.update(dict.fromkeys(matched))
    return list(out)


def select_codes(select: list[str] | None, ignore: list[str] | None) -> frozenset[str]:
    """Resolve --select/--ignore prefixes to the set of active codes."""
    active = set(expand(select)) if select else set(RULES)
    if ignore:
        active -= set(expand(ignore))
    return frozenset(active)
