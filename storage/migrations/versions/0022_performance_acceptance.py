"""performance acceptance: the purchaser's acceptance of a contract's performance (履约验收)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 17:40:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acceptance_result', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('accepted_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('acceptance_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('acceptance_recorded_at', storage.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('acceptance_recorded_at')
        batch_op.drop_column('acceptance_text')
        batch_op.drop_column('accepted_on')
        batch_op.drop_column('acceptance_result')
