"""annotator roles

Accounts get a role, ``admin`` or ``annotator``: under ``curator serve --login``
annotators browse passages, annotate and read the agreement page, and only admins run the
pipeline, training, export and ingest. Existing accounts become annotators (the safe
default): promote the people who run the pipeline with
``curator annotator add NAME --role admin``.

Depends on nothing added after 0004 (only the annotators table).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('annotators', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('role', sa.String(length=16), server_default='annotator', nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_annotators_role'), "role IN ('admin', 'annotator')"
        )


def downgrade() -> None:
    with op.batch_alter_table('annotators', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_annotators_role'), type_='check')
        batch_op.drop_column('role')
