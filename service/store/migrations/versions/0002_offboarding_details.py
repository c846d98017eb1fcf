"""offboarding details: what the meeting agreed, draft metadata (slots, thread, pending)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('offboardings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreed', sa.Text(), nullable=True))
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meta', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_column('meta')
    with op.batch_alter_table('offboardings', schema=None) as batch_op:
        batch_op.drop_column('agreed')
