"""tender logs: each bidder's own log of a tender, closing trees, closing heads in the public log

Existing rows stay as they are: closings signed before this revision are version 1 (the platform-wide
log's head at the deadline), and the log leaves of bid events keep their bid; new leaves of the public log
(closing heads) have none.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tender_logs',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('closed_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_tender_logs_tender_id_tenders')),
    sa.PrimaryKeyConstraint('tender_id', name=op.f('pk_tender_logs'))
    )
    op.create_table('bidder_logs',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('log_id', sa.String(length=200), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_bidder_logs_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_bidder_logs_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bidder_logs')),
    sa.UniqueConstraint('log_id', name=op.f('uq_bidder_logs_log_id')),
    sa.UniqueConstraint('tender_id', 'organisation_id', name=op.f('uq_bidder_logs_tender_id_organisation_id'))
    )
    op.create_table('bid_events',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('bidder_log_id', sa.Uuid(), nullable=False),
    sa.Column('index', sa.BigInteger(), nullable=False),
    sa.Column('bid_id', sa.Uuid(), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('leaf', sa.Text(), nullable=False),
    sa.Column('leaf_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('head_root', sa.String(length=64), nullable=False),
    sa.Column('head_timestamp', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('head_signature', sa.String(length=100), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_bid_events_bid_id_bids')),
    sa.ForeignKeyConstraint(['bidder_log_id'], ['bidder_logs.id'], name=op.f('fk_bid_events_bidder_log_id_bidder_logs')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_bid_events_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bid_events')),
    sa.UniqueConstraint('bidder_log_id', 'index', name=op.f('uq_bid_events_bidder_log_id_index')),
    sa.UniqueConstraint('tender_id', 'seq', name=op.f('uq_bid_events_tender_id_seq'))
    )
    with op.batch_alter_table('bid_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bid_events_bid_id'), ['bid_id'], unique=False)

    with op.batch_alter_table('closings', schema=None) as batch_op:
        # Every closing signed before this revision is a version 1 closing.
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('log_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('leaves', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('log_entry', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True))

    with op.batch_alter_table('log_leaves', schema=None) as batch_op:
        batch_op.alter_column('bid_id', existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    # A closing head in the public log has no bid: a downgrade is possible only before the first one.
    with op.batch_alter_table('log_leaves', schema=None) as batch_op:
        batch_op.alter_column('bid_id', existing_type=sa.Uuid(), nullable=False)

    with op.batch_alter_table('closings', schema=None) as batch_op:
        batch_op.drop_column('log_entry')
        batch_op.drop_column('leaves')
        batch_op.drop_column('log_id')
        batch_op.drop_column('version')

    with op.batch_alter_table('bid_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bid_events_bid_id'))

    op.drop_table('bid_events')
    op.drop_table('bidder_logs')
    op.drop_table('tender_logs')
