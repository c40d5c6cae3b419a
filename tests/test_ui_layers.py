"""The app's layering, read from its source: ``curator/ui`` reaches the database only
through ``curator.services`` and keeps its functions short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[1] / "curator" / "ui"
FORBIDDEN = ("db", "sqlalchemy")
MAX_LINES = 80


def _modules():
    files = sorted(UI.glob("*.py"))
    assert len(files) >= 8, files  # the tab modules are there
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in files]


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    names = []
    for node in ast.walk(tree):  # also imports inside functions
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.lineno, node.module))
    return names


def test_the_ui_imports_no_database_module():
    offending = [
        f"{path.name}:{line}: imports {name}"
        for path, tree in _modules()
        for line, name in _imported(tree)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offending == []


def test_the_check_would_catch_a_database_import():
    tree = ast.parse("def f():\n    from db.models import Judgment\nimport sqlalchemy\n")
    assert sorted(name for _, name in _imported(tree)) == ["db.models", "sqlalchemy"]


@pytest.mark.parametrize("limit", [MAX_LINES])
def test_no_function_in_the_ui_is_longer_than_the_limit(limit):
    long = [
        f"{path.name}:{node.lineno}: {node.name} has {node.end_lineno - node.lineno + 1} lines"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > limit
    ]
    assert long == []


def test_tab_builders_define_no_handlers_of_their_own():
    """``build_*_tab`` only creates components and wires module-level handlers."""
    nested = [
        f"{path.name}:{inner.lineno}: {node.name} defines {inner.name}"
        for path, tree in _modules()
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("build_")
        for inner in ast.walk(node)
        if inner is not node and isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    assert nested == []
