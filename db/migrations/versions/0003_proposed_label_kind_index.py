"""proposed label kind index

The annotation queues "positive changed" and "lowest confidence" look up the newest
LLM-proposed positive of every query; this index lets SQLite read just those label rows
in query order (covering, no table look-ups) instead of every proposed label.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:40:00.000000
"""

from __future__ import annotations

from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('proposed_labels', schema=None) as batch_op:
        batch_op.create_index(
            'ix_proposed_labels_kind_query', ['provenance', 'label', 'query_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('proposed_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_proposed_labels_kind_query')
