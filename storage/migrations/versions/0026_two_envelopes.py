"""two envelopes: a tender's bids as a technical and a commercial envelope (双信封)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 19:10:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('envelopes', sa.Integer(), server_default='1', nullable=False))
    op.create_table('technical_envelopes',
    sa.Column('bid_id', sa.Uuid(), nullable=False),
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('object_key', sa.String(length=512), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('header', sa.Text(), nullable=False),
    sa.Column('header_size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('file_key', sa.String(length=32), nullable=True),
    sa.Column('opened_by', sa.String(length=20), nullable=True),
    sa.Column('result', sa.String(length=60), nullable=True),
    sa.Column('result_detail', sa.String(length=500), nullable=True),
    sa.Column('manifest', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('opened_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('judged_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_technical_envelopes_bid_id_bids')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_technical_envelopes_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_technical_envelopes')),
    sa.UniqueConstraint('bid_id', name=op.f('uq_technical_envelopes_bid_id'))
    )
    with op.batch_alter_table('technical_envelopes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_technical_envelopes_tender_id'), ['tender_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('technical_envelopes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_technical_envelopes_tender_id'))
    op.drop_table('technical_envelopes')
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_column('envelopes')
