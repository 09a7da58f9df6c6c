"""trade archives: one row per signed archive bundle of an ended tender, kept in the object store (G-09)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 17:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trade_archives',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('object_key', sa.String(length=512), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_trade_archives_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trade_archives')),
    sa.UniqueConstraint('object_key', name=op.f('uq_trade_archives_object_key')),
    sa.UniqueConstraint('tender_id', 'number', name=op.f('uq_trade_archives_tender_id')),
    )
    op.create_index(op.f('ix_trade_archives_tender_id'), 'trade_archives', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_trade_archives_tender_id'), table_name='trade_archives')
    op.drop_table('trade_archives')
