"""The test tiers, kept honest (hooks imported by conftest.py).

A test that starts ms-swift, trains, sends signals, opens a browser, starts Ray or runs a hypothesis property carries
the marker of each (declared in pyproject.toml); every such test is also `slow`, and `-m "not slow"` (make test-fast)
is the fast tier. Two checks keep the markers from drifting:

- at collection, the code a test runs is read: its function, its fixtures, and the helpers of tests/ they call, down
  to any depth. A name known to be heavy (HEAVY_NAMES; `swift.*`/`ray` imports; the `tiny_model_dir` fixture, also
  when requested by name) or a hypothesis test without its marker stops the session with the list of such tests;
- while a test runs (setup and call), an audit hook sees what this process does: importing ms-swift or Ray, starting
  ms-swift's encoder child, Chromium, `vlprep cache` with verification on, `vltrain make-model`, or Python code that
  imports ms-swift. A test outside the slow tier fails when it lacks the marker; what a fixture's setup did counts for
  every test that uses the fixture. A module is imported once per process, so an import is seen in the first test that makes it:
  in the fast tier, where no marked test runs before, that is the unmarked test that needs the marker.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
MARKERS = ("swift", "train", "signals", "browser", "ray", "fuzz")
HEAVY_NAMES = {  # a name the code refers to -> the marker it needs
    "SwiftOracle": "swift", "Oracles": "swift",  # ms-swift's encoder child
    "tiny_model_dir": "train", "build_random_model": "train",
    "signal_build_after_shards": "signals", "start_vlprep": "signals", "as_from_a_terminal": "signals",
    "killpg": "signals", "send_signal": "signals",
    "open_page": "browser", "find_chromium": "browser",
}
HEAVY_MODULES = {"swift": "swift", "ray": "ray"}  # imported by the code -> the marker


# ---- at collection: what the code refers to ------------------------------------------------------------------------

def _words(code: CodeType) -> Iterator[tuple[str, bool]]:
    """(word, is it a name) for the names (globals, attributes, imported modules) and string constants of a code
    object and of the functions and comprehensions inside it."""
    yield from ((name, True) for name in code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _words(constant)
        elif isinstance(constant, str):
            yield constant, False  # request.getfixturevalue("tiny_model_dir")


def _ours(value: Any) -> bool:
    """A function written in tests/ (not a library's)."""
    return isinstance(value, FunctionType) and Path(inspect.getfile(value)).resolve().is_relative_to(TESTS)


def _needed(function: FunctionType, seen: set[FunctionType]) -> set[str]:
    """The markers the function's code calls for, following the tests/ functions and classes it names."""
    if function in seen:
        return set()
    seen.add(function)
    found = set()
    for word, is_name in _words(function.__code__):
        marker = HEAVY_NAMES.get(word) or (HEAVY_MODULES.get(word.split(".")[0]) if is_name else None)
        if marker:
            found.add(marker)
        if not is_name:
            continue
        target = function.__globals__.get(word)
        if inspect.isclass(target):  # a helper class of tests/: its methods run too
            found |= set().union(*(_needed(method, seen) for method in vars(target).values() if _ours(method)))
        elif _ours(target):
            found |= _needed(target, seen)
    return found


def _fixture_functions(item: pytest.Item) -> Iterator[FunctionType]:
    for definitions in item._fixtureinfo.name2fixturedefs.values():  # noqa: SLF001 - the only way to the functions
        for definition in definitions:
            if _ours(definition.func):
                yield definition.func


def _static_needs(item: pytest.Item) -> set[str]:
    seen: set[FunctionType] = set()
    needed = _needed(item.function, seen) if isinstance(item, pytest.Function) else set()
    for function in _fixture_functions(item):
        needed |= _needed(function, seen)
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):  # @given: many generated examples
        needed.add("fuzz")
    return needed | {HEAVY_NAMES[name] for name in item.fixturenames if name in HEAVY_NAMES}


def _markers(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers()}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by `slow`
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = []
    for item in items:
        missing = _static_needs(item) - _markers(item)
        if missing:
            unmarked.append(f"  {item.nodeid}: needs {', '.join(sorted(missing))}")
        if _markers(item) & set(MARKERS):
            item.add_marker(pytest.mark.slow)
    if unmarked:
        raise pytest.UsageError("tests that use heavy fixtures or helpers without their markers (see tests/tiers.py):\n"
                                + "\n".join(unmarked))


# ---- while a test runs: what this process does ---------------------------------------------------------------------

_seen: list[tuple[str, str]] | None = None  # (marker, what was seen) during a test's setup or call; None: not recording


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _seen is None:
        return
    if event == "import":
        marker = HEAVY_MODULES.get(args[0].split(".")[0])
        if marker:
            _seen.append((marker, f"imported {args[0]}"))
    elif event == "subprocess.Popen":
        needed = _process_needs([str(word) for word in args[1]] if not isinstance(args[1], (str, bytes)) else
                                [str(args[1])])
        if needed:
            _seen.append(needed)


def _process_needs(argv: list[str]) -> tuple[str, str] | None:
    shown = " ".join(argv)[:200]
    if "vlprep.cache.swift_oracle" in argv:
        return "swift", "started ms-swift's encoder child"
    if Path(argv[0]).name.startswith("chromium"):
        return "browser", "started Chromium"
    if any(word.startswith(("import swift", "from swift")) or "\nfrom swift" in word or "\nimport swift" in word
           for word in argv):
        return "swift", f"started Python code importing ms-swift: {shown}"
    tool = Path(argv[0]).name if len(argv) > 1 else ""
    if argv[1:3] == ["-m", "vlprep"] or argv[1:3] == ["-m", "vltrain"]:
        tool, argv = argv[2], argv[2:]
    command = argv[1:2]
    if "--help" in argv or "-h" in argv:
        return None
    if tool == "vlprep" and command == ["cache"] and not _verify_off(argv):
        return "swift", f"started `vlprep cache` with ms-swift verification on: {shown}"
    if tool == "vltrain" and command == ["make-model"]:
        return "train", f"started `vltrain make-model` (builds a model): {shown}"
    return None


def _verify_off(argv: list[str]) -> bool:
    return "--verify=0" in argv or any(word == "--verify" and value == "0" for word, value in zip(argv, argv[1:]))


sys.addaudithook(_audit)


_fixture_seen: dict[Any, list[tuple[str, str]]] = {}  # FixtureDef -> what its setup was seen doing


def _check(item: pytest.Item, seen: list[tuple[str, str]]) -> None:
    """Fail the test for what it, or any fixture it uses (set up now or for an earlier test), was seen doing."""
    for definitions in item._fixtureinfo.name2fixturedefs.values():  # noqa: SLF001
        seen = seen + _fixture_seen.get(definitions[-1], [])
    if "slow" in _markers(item):  # outside the fast tier already: the fast tier, what this guards, stays fast
        return
    missing = {marker: what for marker, what in seen if marker not in _markers(item)}
    if missing:
        pytest.fail("this test is missing markers (see tests/tiers.py): "
                    + "; ".join(f"@pytest.mark.{marker}: it {what}" for marker, what in sorted(missing.items())),
                    pytrace=False)


def _recording(item: pytest.Item) -> Iterator[Any]:
    """The body of the phase wrappers below: record while the phase runs, then check what was seen."""
    global _seen
    _seen = seen = []
    try:
        result = yield
    finally:
        _seen = None
    _check(item, seen)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[Any]:
    return (yield from _recording(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[Any]:
    return (yield from _recording(item))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """What a fixture's setup does is the fixture's: every test that uses it needs the markers, not only the test
    that happened to set it up."""
    global _seen
    outer, _seen = _seen, []
    mine = _seen
    try:
        return (yield)
    finally:
        if mine:
            _fixture_seen[fixturedef] = mine
        if outer is not None:
            outer.extend(mine)
        _seen = outer
