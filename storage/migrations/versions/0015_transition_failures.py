"""transition failures: the chronograph's tenders whose due transition raised, retried with backoff

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 04:20:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transition_failures',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=False),
    sa.Column('first_failed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retry_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_transition_failures_tender_id_tenders')),
    sa.PrimaryKeyConstraint('tender_id', name=op.f('pk_transition_failures'))
    )


def downgrade() -> None:
    op.drop_table('transition_failures')
