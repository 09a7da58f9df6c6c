"""deposit rejection (W-19): the bid validity period, a bid's platform-established rejection, and the
evidence of escrow's answer at the deadline

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bid_validity_days', sa.Integer(), server_default='90', nullable=False))
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejection_rule', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('rejected_at', storage.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rejection', JSON, nullable=True))
    with op.batch_alter_table('deposit_eligibility', schema=None) as batch_op:
        batch_op.add_column(sa.Column('as_of', storage.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cover_through', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('evidence', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deposit_eligibility', schema=None) as batch_op:
        batch_op.drop_column('evidence')
        batch_op.drop_column('cover_through')
        batch_op.drop_column('as_of')
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.drop_column('rejection')
        batch_op.drop_column('rejected_at')
        batch_op.drop_column('rejection_rule')
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_column('bid_validity_days')
