"""stage failures: a room or a draw whose due step in the chronograph raised, retried with backoff

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 10:15:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stage_failures',
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=False),
    sa.Column('first_failed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retry_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_stage_failures_tender_id_tenders')),
    sa.PrimaryKeyConstraint('stage', 'subject_id', name=op.f('pk_stage_failures'))
    )
    op.create_index(op.f('ix_stage_failures_tender_id'), 'stage_failures', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_stage_failures_tender_id'), table_name='stage_failures')
    op.drop_table('stage_failures')
