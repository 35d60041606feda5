"""The import graph of Kindly's own modules, read from the source (nothing is imported).

    python tools/imports.py              # each module and the modules it imports
    python tools/imports.py --packages   # the package-level graph
    python tools/imports.py --cycles     # import cycles, if any (exit 1 when there are)

Every ``import`` statement counts, at module level or inside a function, so a
lazy import cannot hide a cycle. ``tests/test_shape.py`` holds the code to the
rules of docs/design.md ("The shape of the code") with the same functions.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the project's own packages (tests, bench and tools use them; nothing uses those)
PACKAGES = ("service", "connectors", "templates")

Graph = Mapping[str, frozenset[str]]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def imported(path: Path) -> frozenset[str]:
    """Every absolute module name the file imports (``from a import b`` gives ``a`` and,
    when ``a.b`` is a module, that too: the caller filters)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def graph(root: Path = ROOT) -> dict[str, frozenset[str]]:
    """Each project module → the project modules it imports."""
    known = modules(root)
    return {
        name: frozenset(i for i in imported(path) if i in known and i != name)
        for name, path in known.items()
    }


def external(root: Path = ROOT) -> dict[str, frozenset[str]]:
    """Each project module → the top-level names of the libraries it imports."""
    known = modules(root)
    return {
        name: frozenset(i.split(".")[0] for i in imported(path) if i.split(".")[0] not in PACKAGES)
        for name, path in known.items()
    }


def reachable(start: str, edges: Graph) -> set[str]:
    """``start`` and every module it imports, directly or not."""
    seen = {start}
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def cycles(edges: Graph) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def packages(edges: Graph) -> dict[str, frozenset[str]]:
    """The package-level graph: ``connectors.mail.smtp`` counts as ``connectors``."""
    out: dict[str, set[str]] = {}
    for source, targets in edges.items():
        top = source.split(".")[0]
        out.setdefault(top, set()).update(
            t.split(".")[0] for t in targets if t.split(".")[0] != top
        )
    return {name: frozenset(targets) for name, targets in out.items()}


def _lines(edges: Graph) -> Iterator[str]:
    for name in sorted(edges):
        yield f"{name} -> {', '.join(sorted(edges[name])) or '(nothing)'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", action="store_true", help="the package-level graph")
    parser.add_argument("--cycles", action="store_true", help="list import cycles")
    args = parser.parse_args(argv)
    edges = graph()
    if args.cycles:
        found = cycles(edges) + cycles(packages(edges))
        for group in found:
            print(" <-> ".join(group))
        print(f"{len(found)} cycle(s)", file=sys.stderr)
        return 1 if found else 0
    print("\n".join(_lines(packages(edges) if args.packages else edges)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
