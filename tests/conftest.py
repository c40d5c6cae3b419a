"""Shared fixtures: a real SQLite file per test, paths to the shared BEIR datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from db import Database, open_database
from db.session import sqlite_url

SHARED = Path(os.environ.get("CURATOR_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SCIFACT = SHARED / "datasets" / "scifact"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "curator.db"


@pytest.fixture
def database(db_path: Path) -> Database:
    """A migrated database in a real SQLite file."""
    database = open_database(sqlite_url(db_path))
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {SCIFACT} (set CURATOR_SHARED_DIR)")
    return SCIFACT


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path`` (bytes as is, text as UTF-8) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
