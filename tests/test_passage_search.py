"""Passage search on the full-text index (SQLite FTS5, migration 0007) and its fallback."""

from __future__ import annotations

import json

import pytest
from conftest import write
from sqlalchemy import delete, select, text, update

import db.queries
from curator.services.ingest import ingest_path
from curator.ui.context import Context
from curator.ui.passages import passages_table
from db import open_database
from db.models import Passage
from db.queries import get_project, passage_page
from db.session import sqlite_url

DOCS = [
    ("a1", "Apples", "Red apples grow on trees in the orchard."),
    ("a2", "Pears", "Pears and apples are both fruit."),
    ("d1", "Discount", "Everything 50% off this week."),
    ("d2", "Numbers", "Some 500 items and 5 boxes."),
    ("u1", "Names", "The variable my_name holds a string."),
    ("u2", "Other", "The variable myxname is a typo."),
]


def ingest_docs(database, tmp_path, docs=DOCS, project="p"):
    lines = [json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in docs]
    report = ingest_path(database, project, write(tmp_path / "c.jsonl", "\n".join(lines)))
    assert report.errors == []


def search(database, words, project="p"):
    """(total, external ids of the first page) for one search."""
    with database.sessions() as session:
        project_id = get_project(session, project).id
        total, rows = passage_page(session, project_id, search=words)
        return total, [p.external_id for p in rows]


def test_words_match_title_or_text_and_all_words_are_required(database, tmp_path):
    ingest_docs(database, tmp_path)
    assert search(database, "apples") == (2, ["a1", "a2"])
    assert search(database, "APPLES orchard") == (1, ["a1"])  # every word, any case
    assert search(database, "pears") == (1, ["a2"])  # title or text
    assert search(database, "appl") == (0, [])  # whole words, not substrings
    assert search(database, "d2") == (1, ["d2"])  # an exact passage id
    assert search(database, "") == (6, ["a1", "a2", "d1", "d2", "u1", "u2"])


def test_percent_and_underscore_are_literal(database, tmp_path):
    ingest_docs(database, tmp_path)
    assert search(database, "%") == (1, ["d1"])  # no words: the substring fallback
    assert search(database, "50%") == (1, ["d1"])  # the word 50, not 500
    assert search(database, "_") == (1, ["u1"])  # not "any one character"
    assert search(database, "%%_") == (0, [])


def test_the_index_follows_edits_and_deletes(database, tmp_path):
    ingest_docs(database, tmp_path)
    with database.sessions() as session:
        session.execute(
            update(Passage).where(Passage.external_id == "a1").values(text="Bananas now.")
        )
        session.execute(delete(Passage).where(Passage.external_id == "a2"))
        session.commit()
    assert search(database, "bananas") == (1, ["a1"])
    assert search(database, "apples") == (1, ["a1"])  # its title; a2 is gone
    assert search(database, "orchard") == (0, [])  # the old text no longer matches


def test_upgrading_indexes_the_passages_already_stored(db_path, tmp_path):
    database = open_database(sqlite_url(db_path), upgrade=False)
    database.upgrade("0006")
    ingest_docs(database, tmp_path)  # stored before the full-text table exists
    assert search(database, "appl") == (2, ["a1", "a2"])  # the old substring search
    database.upgrade()
    assert search(database, "orchard") == (1, ["a1"])
    database.downgrade("0006")
    assert search(database, "orchard") == (1, ["a1"])  # no index: the fallback again
    database.dispose()


def test_upgrade_and_downgrade_keep_search_working_on_either_database(database_url, tmp_path):
    """0006 -> head -> 0007 -> 0006 -> head on the same passages, on SQLite and PostgreSQL:
    the same answers at every step (0008 moves PostgreSQL's index to a stored column)."""
    database = open_database(database_url, upgrade=False)
    database.upgrade("0006")
    ingest_docs(database, tmp_path)  # stored before any full-text index exists
    for revision in ("head", "0007", "0006", "head"):
        if revision == "head":
            database.upgrade()
        else:
            database.downgrade(revision)
        assert search(database, "orchard") == (1, ["a1"]), revision
        assert search(database, "apples") == (2, ["a1", "a2"]), revision
    database.dispose()


def test_postgres_searches_the_stored_column_with_its_index(database, backend, tmp_path):
    """On PostgreSQL (migration 0008) the words are matched against ``search_vector``
    through its GIN index, not a tsvector computed per row; the answers equal SQLite's."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only (SQLite searches FTS5)")
    ingest_docs(database, tmp_path)
    assert search(database, "apples") == (2, ["a1", "a2"])
    with database.sessions() as session:
        stored = session.scalar(
            select(text("search_vector::text"))
            .select_from(Passage)
            .where(Passage.external_id == "a1")
        )
        assert "'orchard'" in stored and "'apples'" in stored
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a 6-row table: force it
        condition = db.queries._search_condition(session, "apples", ["apples"], "postgresql")
        statement = select(Passage.id).where(condition)
        compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(session.scalars(text(f"EXPLAIN {compiled}")))
    assert "ix_passages_search_vector" in plan and "to_tsvector" not in plan


def test_search_counts_stop_at_the_limit(database, tmp_path, monkeypatch):
    docs = [(f"x{i}", "", f"common word {i}") for i in range(8)]
    ingest_docs(database, tmp_path, docs)
    monkeypatch.setattr(db.queries, "SEARCH_COUNT_LIMIT", 5)
    monkeypatch.setattr("curator.ui.passages.SEARCH_COUNT_LIMIT", 5)
    assert search(database, "common")[0] == 6  # means "more than 5"
    assert search(database, "")[0] == 8  # browsing counts everything
    rows, caption, _ = passages_table(Context(database, "p", tmp_path), "common", 1)
    assert len(rows) == 8 and caption == "more than 5 passages · page 1"


def test_search_stays_within_the_project(database, tmp_path):
    ingest_docs(database, tmp_path, DOCS[:2], project="one")
    ingest_docs(database, tmp_path, [("b1", "", "apples elsewhere")], project="two")
    assert search(database, "apples", project="one") == (2, ["a1", "a2"])
    assert search(database, "apples", project="two") == (1, ["b1"])


@pytest.mark.parametrize("query", ['"', "apples OR", "NEAR(a b)", "a*", "-x", "(", "^"])
def test_query_syntax_is_never_interpreted(database, tmp_path, query):
    """FTS5 operators typed into the box are words or punctuation, never errors."""
    ingest_docs(database, tmp_path)
    total, _ = search(database, query)
    assert total >= 0
    with database.sessions() as session:
        assert session.scalar(select(Passage.id).limit(1)) is not None
