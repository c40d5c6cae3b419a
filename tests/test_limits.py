"""Unbounded or hostile text from the app: the passage search takes its words literally
(``%``, ``_`` and ``\\`` are no wildcards) and has a length cap; edited queries, notes and
names have size limits; provider errors reach the user as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import add_queries, write
from sqlalchemy import func, select

from curator.llm.client import classify_error, one_line
from curator.services.annotate import JudgmentError, record_judgment
from curator.services.ingest import ingest_path
from curator.services.projects import ensure_project, require_project
from curator.ui.context import Context
from curator.ui.passages import passages_table
from db.limits import MAX_PASSAGE_EDIT_CHARS, MAX_QUERY_CHARS, MAX_SEARCH_CHARS, TextTooLong
from db.models import Judgment, Passage
from db.queries import passage_page

TEXTS = {
    "pct": "a discount of 100% on tea",
    "under": "snake_case names in code",
    "slash": "a back\\slash in a path",
    "plain": "plain words about bread",
    "other": "percent and underscore spelled out",
}


@pytest.fixture
def project(database, tmp_path):
    import json

    rows = [{"_id": key, "text": text} for key, text in TEXTS.items()]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    ingest_path(database, "p", path)
    return require_project(database, "p")


def found(database, project_id, search):
    with database.sessions() as session:
        total, rows = passage_page(session, project_id, search=search)
    assert total == len(rows)
    return sorted(p.external_id for p in rows)


@pytest.mark.parametrize(
    "search, expected",
    [
        ("%", ["pct"]),
        ("_", ["under"]),
        ("\\", ["slash"]),
        ("100%", ["pct"]),
        ("snake_case", ["under"]),
        ("e_c", []),
    ],
)
def test_wildcards_in_a_search_match_only_themselves(database, project, search, expected):
    assert found(database, project, search) == expected


def test_an_ordinary_search_still_matches_case_insensitively(database, project):
    assert found(database, project, "BREAD") == ["plain"]
    assert found(database, project, "") == sorted(TEXTS)


def test_a_search_over_the_cap_is_refused_in_one_line(database, project):
    long_search = "tea " * 15_000  # 60 KB: SQLite's LIKE once failed with SQL in the message
    with database.sessions() as session, pytest.raises(TextTooLong, match="at most 500"):
        passage_page(session, project, search=long_search)
    rows, caption, page = passages_table(Context(database, "p", Path(".")), long_search, 1)
    assert rows == [] and page == 1
    assert "at most 500" in caption and "\n" not in caption
    assert "SELECT" not in caption and "sqlite" not in caption.lower()
    assert found(database, project, "t" * MAX_SEARCH_CHARS) == []  # at the cap: searched


def test_an_oversized_edited_query_or_note_stores_nothing(database, project):
    (query_id,) = add_queries(database, "p", [("tea discount", "pct")])
    with database.sessions() as session:
        passage = session.scalar(select(Passage.id).where(Passage.external_id == "pct"))
    for kwargs in (
        {"edited_query": "x" * (MAX_QUERY_CHARS + 1)},
        {"edited_query": "y" * 5_000_000},
        {"note": "n" * 100_000},
        {"edited_texts": {passage: "p" * (MAX_PASSAGE_EDIT_CHARS + 1)}},
    ):
        with pytest.raises(JudgmentError, match="characters long; at most"):
            record_judgment(database, query_id, "ann", "override", positives=[passage], **kwargs)
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Judgment)) == 0
    record_judgment(
        database, query_id, "ann", "override", positives=[passage], edited_query="x" * 2000
    )
    with pytest.raises(JudgmentError, match="annotator name"):
        record_judgment(database, query_id, "a" * 201, "override", positives=[passage])
    with pytest.raises(TextTooLong, match="project name"):
        ensure_project(database, "p" * 201)


def test_provider_errors_are_one_line():
    message = "Failed to load model\nTraceback (most recent call last):\n  File x\nValueError: y"
    error = classify_error(ValueError(message), "local/junk.gguf")
    assert "\n" not in str(error) and "Traceback" not in str(error)
    assert "Failed to load model" in str(error)
    assert one_line("x" * 2000).endswith("…") and len(one_line("x" * 2000)) == 500


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--model"],
        ["rerank", "--model"],
        ["mine", "--guide"],
        ["train", "--base-model"],
        ["eval", "--base-model"],
        ["init", "--allow-model"],
    ],
)
def test_a_model_name_over_the_limit_is_refused_by_the_cli(tmp_path, capsys, command):
    from curator.cli import main
    from curator.llm.client import MAX_MODEL_CHARS as LLM_LIMIT
    from db.limits import MAX_MODEL_CHARS

    assert MAX_MODEL_CHARS == LLM_LIMIT == 300  # the model columns hold 300 characters
    data = tmp_path / "data"
    data.mkdir()
    code = main(["--data-dir", str(data), *command, "local/" + "m" * (MAX_MODEL_CHARS - 5)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: the model name given to {command[1]} is 301 characters long; "
        "at most 300 are allowed"
    ]
    assert list(data.iterdir()) == []  # no database, no job row, nothing stored


def test_a_model_name_at_the_limit_passes_the_cli_check(tmp_path, capsys):
    from curator.cli import main

    data = tmp_path / "data"
    name = "openai/" + "m" * 293  # 300 characters: allowed, and stored as given
    assert main(["--data-dir", str(data), "init", "--allow-model", name]) == 0
    assert name in capsys.readouterr().out
