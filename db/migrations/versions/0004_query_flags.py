"""query flags and example-set version

Generated queries get flags with reasons (copy, junk, duplicate, inconsistent), written
by the stage that finds them, and the fingerprint of the few-shot example set their
prompt used (the generator learns from curation: accepted queries become examples).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('query_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('query_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('copy', 'junk', 'duplicate', 'inconsistent')", name=op.f('ck_query_flags_kind')),
    sa.ForeignKeyConstraint(['query_id'], ['generated_queries.id'], name=op.f('fk_query_flags_query_id_generated_queries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['pipeline_runs.id'], name=op.f('fk_query_flags_run_id_pipeline_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_query_flags')),
    sa.UniqueConstraint('query_id', 'kind', name=op.f('uq_query_flags_query_id_kind'))
    )
    with op.batch_alter_table('query_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_query_flags_query_id'), ['query_id'], unique=False)
    with op.batch_alter_table('generated_queries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('examples_version', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generated_queries', schema=None) as batch_op:
        batch_op.drop_column('examples_version')
    with op.batch_alter_table('query_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_query_flags_query_id'))
    op.drop_table('query_flags')
