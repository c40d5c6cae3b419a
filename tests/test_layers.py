"""The package layers and the size of functions, checked by reading the source (AST).

Layers, top to bottom: ``curator.ui`` -> ``curator.services`` -> {``curator.pipeline``,
``curator.llm``, ``curator.retrieval``, ``trainer``} -> ``db``. A package imports only
packages below it (``trainer`` may use ``curator.pipeline`` and ``curator.retrieval``;
``curator.llm`` may use ``curator.pipeline``), and no two packages import each other,
directly or round a loop. Every import counts, including those inside functions (a lazy
import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "curator.pipeline",
    "curator.services",
    "curator.ui",
    "curator.llm",
    "curator.retrieval",
    "trainer",
    "db",
)
#: package -> what it must never import (a package or an outside library)
FORBIDDEN = {
    "curator.pipeline": (
        "gradio",
        "sqlalchemy",
        "db",
        "curator.services",
        "curator.ui",
        "curator.llm",
        "curator.retrieval",
        "trainer",
    ),
    "curator.llm": ("curator.services", "curator.ui", "curator.retrieval", "trainer", "db"),
    "curator.retrieval": ("curator.services", "curator.ui", "curator.llm", "trainer", "db"),
    "trainer": ("curator.services", "curator.ui", "curator.llm", "db", "sqlalchemy", "gradio"),
    "curator.services": ("curator.ui", "gradio"),
    "db": ("curator", "trainer"),
}
MAX_FUNCTION_LINES = 80
#: functions allowed over the limit (none: add one only with a reason next to it)
LONG_FUNCTIONS_ALLOWED: set[str] = set()


def _modules(*roots: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``roots``."""
    found = {}
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules("curator", "trainer", "db")


def _package(module: str) -> str | None:
    """The layer package a dotted name belongs to (``None`` for curator's top-level
    modules such as ``curator.cli`` and for outside libraries)."""
    for package in PACKAGES:
        if module == package or module.startswith(package + "."):
            return package
    return None


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function; ``from a import b``
    counts as ``a.b`` when that is a module of ours, else as ``a``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
    return names


def _offends(imported: str, forbidden: str) -> bool:
    return imported == forbidden or imported.startswith(forbidden + ".")


def _violations(package: str) -> list[str]:
    """``file: imported`` for each import of ``package`` that its rules forbid."""
    found = []
    for module, path in MODULES.items():
        if _package(module) != package:
            continue
        for imported in sorted(_imports(path)):
            if any(_offends(imported, f) for f in FORBIDDEN[package]):
                found.append(f"{path.relative_to(ROOT)}: {imported}")
    return found


def package_graph() -> dict[str, set[str]]:
    """Layer package -> the other layer packages it imports."""
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module, path in MODULES.items():
        source = _package(module)
        if source is None:
            continue
        for imported in _imports(path):
            target = _package(imported)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop among the packages, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (loop := visit(nxt)):
                return loop
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (loop := visit(node)):
            return loop
    return None


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_above_its_layer(package):
    assert _violations(package) == []


def test_the_ui_reaches_the_database_only_through_services():
    found = []
    for module, path in MODULES.items():
        if _package(module) == "curator.ui":
            found += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in sorted(_imports(path))
                if _offends(name, "db") or _offends(name, "sqlalchemy")
            ]
    assert found == []


def test_no_import_cycle_between_packages():
    assert _cycle(package_graph()) is None


def test_the_cycle_check_finds_a_loop():
    """The check itself: a made-up graph with a loop is caught, one without is not."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from trainer import evaluate\n    import db.models\n")
    assert _imports(source) == {"trainer.evaluate", "db.models"}


def long_functions(limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``file:function`` -> lines, for every function (or method) over ``limit`` lines in
    curator/, trainer/ and db/ (``end_lineno - lineno + 1``, decorators not counted)."""
    found = {}
    for path in MODULES.values():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = lines
    return found


def test_no_function_is_over_80_lines():
    too_long = {k: v for k, v in long_functions().items() if k not in LONG_FUNCTIONS_ALLOWED}
    assert too_long == {}


def test_the_allow_list_names_only_functions_still_too_long():
    """An allowed function that has been split must leave the list."""
    assert sorted(LONG_FUNCTIONS_ALLOWED - set(long_functions())) == []
