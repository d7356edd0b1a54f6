"""The shape of the code stays readable: no import cycle (function-level imports count), no package over 12 modules, no
module over 450 lines. `python tests/test_layout.py` prints the figures (modules per package, largest modules)."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"vlprep": ROOT / "toolkit" / "vlprep", "vltrain": ROOT / "trainer" / "vltrain"}
MAX_MODULES = 12  # per package, __init__ and __main__ not counted
MAX_LINES = 450


def modules() -> dict[str, Path]:
    found = {}
    for name, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules this module imports, anywhere in it (function bodies included)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    return {target for target in targets if target in known and target != name}


def cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    return found


def modules_per_package() -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for root in PACKAGES.values():
        for path in root.rglob("*.py"):
            if path.name not in ("__init__.py", "__main__.py"):
                counts[str(path.parent.relative_to(ROOT))] += 1
    return dict(sorted(counts.items()))


def line_counts() -> dict[str, int]:
    return {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
            for path in modules().values()}


def test_no_import_cycles() -> None:
    assert cycles() == []


def test_no_package_has_more_than_twelve_modules() -> None:
    assert {package: count for package, count in modules_per_package().items() if count > MAX_MODULES} == {}


def test_no_module_is_over_450_lines() -> None:
    assert {path: lines for path, lines in line_counts().items() if lines > MAX_LINES} == {}


if __name__ == "__main__":
    print("import cycles:", cycles() or "none")
    print("modules per package:")
    for package, count in modules_per_package().items():
        print(f"  {package}: {count}")
    print("largest modules:")
    for path, lines in sorted(line_counts().items(), key=lambda item: -item[1])[:8]:
        print(f"  {lines:4} {path}")
