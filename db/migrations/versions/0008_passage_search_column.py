"""PostgreSQL passage search on a stored tsvector column

On PostgreSQL, 0007's GIN index over the *expression*
``to_tsvector('simple', coalesce(title, '') || ' ' || text)`` made every heap recheck
recompute the tsvector: a common word over 100,000 passages took 0.56 s (p95 of the
scale bench). This revision stores the tsvector in a generated column
(``passages.search_vector``, ``GENERATED ALWAYS AS (...) STORED``, PostgreSQL 12+),
indexes that column with GIN and drops the expression index; ``db.queries`` searches the
column when it exists. Adding the column rewrites the table (and computes every row's
tsvector) once. SQLite is unchanged (FTS5 from 0007): the revision does nothing there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 21:40:00.000000
"""

from __future__ import annotations

from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SEARCH_VECTOR = "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || text)"
POSTGRES_UP = [
    f"ALTER TABLE passages ADD COLUMN search_vector tsvector "
    f"GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED",
    "CREATE INDEX ix_passages_search_vector ON passages USING gin (search_vector)",
    "DROP INDEX IF EXISTS ix_passages_fts",
]
POSTGRES_DOWN = [
    f"CREATE INDEX IF NOT EXISTS ix_passages_fts ON passages USING gin ({SEARCH_VECTOR})",
    "DROP INDEX IF EXISTS ix_passages_search_vector",
    "ALTER TABLE passages DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
