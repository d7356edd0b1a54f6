"""The documentation cannot rot silently: every test docs/guarantees.md names as holding a promise exists, and every
repository path, module and relative link in README.md and docs/*.md points at something that exists.

(docs/cli.md's drift test is tests/test_first_hour.py::test_cli_reference_option_tables_are_the_clis_own.)
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE = re.compile(r"`([^`]+)`")
# `test_x.py`, `tests/child_process.py`, `test_x.py::test_y`, `::test_y` (in the file named before it), `[param]` ids
_TEST_REFERENCE = re.compile(r"^(?:(?:tests/)?(?P<file>\w+\.py))?(?:::(?P<function>\w+)(?:\[[^\]]*\])?)?$")
# a path inside the repository, starting at one of its top-level folders (`toolkit/vlprep/cache/`, `bench/*.py`)
_REPO_PATH = re.compile(r"(?<![\w./$~-])((?:toolkit|trainer|schemas|fixtures|tests|bench|scripts|docs)/[\w.*/-]*)")
# a module of either package, maybe followed by a name it defines (`vlprep.cache.image_staleness.file_digest`)
_MODULE = re.compile(r"(?<![\w./-])((?:vlprep|vltrain)(?:\.\w+)+)")
_PACKAGES = {"vlprep": ROOT / "toolkit" / "vlprep", "vltrain": ROOT / "trainer" / "vltrain"}
_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)(?:#[^)]*)?\)")


def module_exists(dotted: str) -> bool:
    """Whether `vlprep.x.y` is a package or module of the repository, or a name defined at the top of one."""
    first, *rest = dotted.split(".")
    place = _PACKAGES[first]
    for index, part in enumerate(rest):
        if (place / part).is_dir():
            place = place / part
        elif (place / f"{part}.py").is_file():
            names = rest[index + 1:]
            return not names or (len(names) == 1 and names[0] in _top_level_names(place / f"{part}.py"))
        else:
            return False
    return True


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assigned = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)}
    return frozenset(defined | assigned)


@cache
def _defined_functions(path: Path) -> frozenset[str]:
    """Names of the functions a test file defines, at module level or in its classes."""
    tree = ast.parse(path.read_text())
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))


def guarantee_rows(text: str) -> list[tuple[str, list[str]]]:
    """(promise, the code spans of its "proved by" cell) for each row of the guarantees table."""
    rows, in_table = [], False
    for line in text.splitlines():
        if line.startswith("| promise |"):
            in_table = True
        elif in_table and line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in _CELL_SPLIT.split(line.strip())[1:-1]]
            rows.append((cells[0], _CODE.findall(cells[-1])))
        elif in_table and not line.startswith("|"):
            break
    return rows


def missing_tests(spans: list[str]) -> tuple[list[str], int]:
    """(the references among `spans` that name no existing test file or function, how many references there were)."""
    missing, count, current = [], 0, None
    for span in spans:
        match = _TEST_REFERENCE.match(span)
        if match is None or not (match["file"] or match["function"]):
            continue  # a code span that is no test reference (an option, a count)
        count += 1
        current = TESTS / match["file"] if match["file"] else current
        if current is None or not current.is_file():
            missing.append(span)
        elif match["function"] and match["function"] not in _defined_functions(current):
            missing.append(f"{current.name}::{match['function']}")
    return missing, count


def test_every_promise_names_tests_that_exist() -> None:
    rows = guarantee_rows((ROOT / "docs" / "guarantees.md").read_text())
    assert len(rows) >= 30, "the guarantees table was not found or lost rows"
    problems = {}
    for promise, spans in rows:
        missing, count = missing_tests(spans)
        if missing or count == 0:
            problems[promise] = missing or "names no test"
    assert not problems, problems


def test_the_guarantee_check_sees_a_renamed_test() -> None:
    """The check itself: a function that is not in the file, or a file that is not in tests/, is reported."""
    assert missing_tests(["test_docs.py::test_every_promise_names_tests_that_exist", "::test_gone[x]",
                          "test_nowhere.py", "--fast"]) == (["test_docs.py::test_gone", "test_nowhere.py"], 3)


def test_the_module_check_sees_a_moved_module() -> None:
    assert module_exists("vlprep.cache.image_staleness.file_digest") and module_exists("vltrain.training")
    assert not module_exists("vlprep.ray_engine") and not module_exists("vlprep.cache.shapes.nothing_here")


def test_every_path_module_and_link_in_the_docs_exists() -> None:
    missing = []
    for document in DOCUMENTS:
        text = document.read_text()
        for named in _REPO_PATH.findall(text):
            named = named.rstrip(".,;:")
            if not (list(ROOT.glob(named)) if "*" in named else (ROOT / named).exists()):
                missing.append(f"{document.name}: {named}")
        for dotted in _MODULE.findall(text):
            if not module_exists(dotted.rstrip(".")):
                missing.append(f"{document.name}: module {dotted}")
        for target in _LINK.findall(text):
            if not (document.parent / target).exists():
                missing.append(f"{document.name}: link {target}")
    assert not missing, sorted(set(missing))
