"""durable jobs: an outbox row records its job's outcome (pending, done, dead) and its run of failures

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:10:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('status', sa.String(length=10), server_default='pending', nullable=False))
        batch.add_column(sa.Column('failing_since', storage.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('completed_at', storage.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('dead_at', storage.db.UTCDateTime(timezone=True), nullable=True))
        batch.drop_index('ix_outbox_pending')
        batch.create_index('ix_outbox_due', ['status', 'available_at'], unique=False)
    # Rows handed to a queue before outcomes were recorded are taken as done: they ran, or the queue
    # dropped them, and nothing can tell which.
    op.execute(
        "UPDATE outbox SET status = 'done', completed_at = dispatched_at WHERE dispatched_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_due')
        batch.create_index('ix_outbox_pending', ['dispatched_at', 'available_at'], unique=False)
        batch.drop_column('dead_at')
        batch.drop_column('completed_at')
        batch.drop_column('failing_since')
        batch.drop_column('status')
