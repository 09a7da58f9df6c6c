"""rehearsal clock: the pace a rehearsal deployment's time runs at, shared by every process

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 04:10:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rehearsal_clock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('real_anchor', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rehearsal_anchor', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('changed_by', sa.Uuid(), nullable=True),
    sa.CheckConstraint('rate >= 0', name=op.f('ck_rehearsal_clock_rate_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rehearsal_clock'))
    )


def downgrade() -> None:
    op.drop_table('rehearsal_clock')
