"""The schema on a real SQLite file: migrations, pragmas, constraints."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db import open_database
from db.database import head_revision
from db.models import (
    Annotator,
    Base,
    GeneratedQuery,
    Judgment,
    JudgmentPassage,
    Passage,
    Project,
    schema_object_filter,
)
from db.session import sqlite_url

PIPELINE_TABLES = {
    "projects",
    "pipeline_runs",
    "passages",
    "generated_queries",
    "candidates",
    "llm_scores",
    "proposed_labels",
    "annotators",
    "judgments",
    "judgment_passages",
    "query_splits",
    "training_runs",
    "models",
    "evaluation_results",
}


def test_upgrade_from_empty_database_creates_every_table(database_url):
    database = open_database(database_url, upgrade=False)
    assert database.current_revision() is None
    assert database.table_names() == []
    database.upgrade()
    assert database.current_revision() == head_revision()
    assert set(database.table_names()) >= PIPELINE_TABLES


def test_migrations_match_the_models(database):
    """No model change without a migration: autogenerate finds nothing to do."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": schema_object_filter}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(database):
    database.downgrade("base")
    assert set(database.table_names()) <= {"alembic_version"}
    database.upgrade()
    assert set(database.table_names()) >= PIPELINE_TABLES


def test_open_refuses_a_database_from_a_newer_version(database_url):
    database = open_database(database_url)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'zz_future'"))
    database.dispose()
    with pytest.raises(RuntimeError, match="zz_future"):
        open_database(database_url)


def test_sqlite_pragmas_are_set_on_every_connection(db_path):
    database = open_database(sqlite_url(db_path))
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


def test_foreign_keys_are_enforced(database):
    with database.sessions() as session, pytest.raises(IntegrityError):
        session.add(
            Passage(project_id=999, external_id="x", document_id="x", text="t", content_hash="h")
        )
        session.commit()


def test_check_constraints_reject_unknown_values(database):
    with database.sessions() as session:
        project = Project(name="p")
        annotator = Annotator(username="ann")
        session.add_all([project, annotator])
        session.flush()
        passage = Passage(
            project_id=project.id, external_id="1", document_id="1", text="t", content_hash="h"
        )
        session.add(passage)
        session.flush()
        query = GeneratedQuery(
            project_id=project.id,
            seed_passage_id=passage.id,
            task="t",
            query="q",
            model="m",
            prompt_version="v1",
        )
        session.add(query)
        session.flush()
        session.add(Judgment(query_id=query.id, annotator_id=annotator.id, decision="maybe"))
        with pytest.raises(IntegrityError, match="ck_judgments_decision"):
            session.flush()


def test_judgment_keeps_its_passages_and_deleting_a_query_cascades(database):
    with database.sessions() as session:
        project = Project(name="p")
        annotator = Annotator(username="ann")
        session.add_all([project, annotator])
        session.flush()
        passages = [
            Passage(
                project_id=project.id,
                external_id=str(i),
                document_id=str(i),
                text=f"t{i}",
                content_hash=f"h{i}",
            )
            for i in range(2)
        ]
        session.add_all(passages)
        session.flush()
        query = GeneratedQuery(
            project_id=project.id,
            seed_passage_id=passages[0].id,
            task="t",
            query="q",
            model="m",
            prompt_version="v1",
        )
        session.add(query)
        session.flush()
        judgment = Judgment(query_id=query.id, annotator_id=annotator.id, decision="override")
        judgment.passages = [
            JudgmentPassage(passage_id=passages[1].id, label="positive"),
            JudgmentPassage(passage_id=passages[0].id, label="negative"),
        ]
        session.add(judgment)
        session.commit()
        assert {(jp.passage_id, jp.label) for jp in judgment.passages} == {
            (passages[1].id, "positive"),
            (passages[0].id, "negative"),
        }
        session.delete(query)
        session.commit()
        assert session.execute(text("SELECT count(*) FROM judgment_passages")).scalar() == 0


def test_upgrade_keeps_data_written_under_an_older_schema(database_url):
    """A user database at revision 0001 survives the upgrade to head with its rows."""
    database = open_database(database_url, upgrade=False)
    database.upgrade("0001")
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO projects (id, name, description, settings, created_at) "
                "VALUES (1, 'old', '', '{}', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO passages (id, project_id, external_id, document_id, chunk_index,"
                " title, text, content_hash, created_at)"
                " VALUES (1, 1, 'a', 'a', 0, '', 'kept', 'h', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO generated_queries (id, project_id, seed_passage_id, sample_index,"
                " task, query, model, prompt_version, raw_output, status, created_at) VALUES "
                "(1, 1, 1, 0, 't', 'q', 'm', 'v', 'raw', 'ok', '2026-01-01')"
            )
        )
    database.dispose()
    upgraded = open_database(database_url)
    assert upgraded.current_revision() == head_revision()
    with upgraded.engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT p.text, q.query, q.note FROM generated_queries q "
                "JOIN passages p ON p.id = q.seed_passage_id"
            )
        ).one()
    assert tuple(row) == ("kept", "q", None)
