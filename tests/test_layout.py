"""The package's shape: no import circles, modules of readable size, no heavy imports for --help."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deploysim"
#: A module longer than this says why at its top, in a line starting with "Long:".
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """Modules of the package imported when ``path`` is imported (not inside functions, not
    under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("deploysim"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.startswith("deploysim"):
                    found.add(mod)
                    for a in node.names:  # ``from deploysim.kube import naming`` imports a module
                        found.add(f"{mod}.{a.name}")
            elif isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
    visit(tree.body)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for imported in _top_level_imports(path):
            # importing a.b.c runs a, a.b and a.b.c; keep the ones that are modules here
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules and candidate != name:
                    deps.add(candidate)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return out


def _is_package_of(parent: str, child: str) -> bool:
    return child.startswith(parent + ".")


def test_no_import_circles() -> None:
    graph = _graph()
    # a package's __init__ importing its own submodules is how Python packages work; a circle
    # needs a submodule importing something that imports it back by another way
    trimmed = {m: {d for d in deps if not _is_package_of(m, d) and not _is_package_of(d, m)}
               for m, deps in graph.items()}
    assert _cycles(trimmed) == []


def test_the_circle_finder_finds_circles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_of_readable_size(path: Path) -> None:
    lines = path.read_text().splitlines()
    if len(lines) <= MAX_LINES:
        return
    head = "\n".join(lines[:15])
    assert "Long:" in head, f"{path.name} has {len(lines)} lines and no 'Long:' reason at its top"


def test_help_does_not_import_the_heavy_parts() -> None:
    code = ("import sys; from deploysim.cli import build_parser; build_parser(); "
            "print(','.join(m for m in ('pandas', 'matplotlib', 'kubernetes', 'simpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
