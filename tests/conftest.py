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


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory):
    """LLM settings for the embedded Gemma 3 270M, assembled once per test session."""
    from curator.llm.client import LLMSettings
    from curator.llm.local import configure_local

    configure_local(models_dir=tmp_path_factory.mktemp("models"), n_threads=2, n_threads_batch=2)
    return LLMSettings(model="local/gemma3-270m")


def scifact_subset(scifact_dir: Path, target: Path, n: int, skip: int = 0) -> Path:
    """Write lines ``skip``..``skip+n`` of SciFact's corpus.jsonl to ``target``."""
    with (scifact_dir / "corpus.jsonl").open(encoding="utf-8") as source:
        lines = [line for i, line in enumerate(source) if skip <= i < skip + n]
    return write(target, "".join(lines))
