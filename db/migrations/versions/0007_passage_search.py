"""passage full-text search and queue indexes

Passage search on a large corpus: SQLite gets an FTS5 table over the passages' title and
text (external content: the text is not stored twice, the table holds only the index),
kept in step by triggers on insert, update and delete; PostgreSQL gets a GIN index over
``to_tsvector('simple', title || ' ' || text)``, which ``plainto_tsquery`` searches. Both
are built from the passages already stored. The annotation queues get an index for the
retracted-judgment lookup they run on every card, and the overview's count of distinct
documents an index on (project_id, document_id) (3.7 s -> 0.15 s on a million passages).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 18:40:00.000000
"""

from __future__ import annotations

from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE passages_fts USING fts5("
    "title, text, content='passages', content_rowid='id')",
    "CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN "
    "INSERT INTO passages_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN "
    "INSERT INTO passages_fts(passages_fts, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER passages_fts_update AFTER UPDATE OF title, text ON passages BEGIN "
    "INSERT INTO passages_fts(passages_fts, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); "
    "INSERT INTO passages_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "INSERT INTO passages_fts(passages_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS passages_fts_update",
    "DROP TRIGGER IF EXISTS passages_fts_delete",
    "DROP TRIGGER IF EXISTS passages_fts_insert",
    "DROP TABLE IF EXISTS passages_fts",
]
POSTGRES_UP = [
    "CREATE INDEX ix_passages_fts ON passages USING gin "
    "(to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || text))",
]
POSTGRES_DOWN = ["DROP INDEX IF EXISTS ix_passages_fts"]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}.get(dialect, []):
        op.execute(statement)
    with op.batch_alter_table('judgments', schema=None) as batch_op:
        batch_op.create_index('ix_judgments_retracts', ['retracts_judgment_id'], unique=False)
    op.create_index(
        'ix_passages_project_document', 'passages', ['project_id', 'document_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_passages_project_document', table_name='passages')
    with op.batch_alter_table('judgments', schema=None) as batch_op:
        batch_op.drop_index('ix_judgments_retracts')
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}.get(dialect, []):
        op.execute(statement)
