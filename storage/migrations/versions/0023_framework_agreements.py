"""framework agreements: the agreement and its term, the admitted suppliers with their caps, the orders and the
mini-competitions' quotes (G-01, 110号令)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 19:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy.dialects import postgresql

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('framework_agreements',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('purchasers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('made_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_framework_agreements_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_framework_agreements')),
    sa.UniqueConstraint('tender_id', name=op.f('uq_framework_agreements_tender_id'))
    )
    op.create_table('framework_orders',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('purchaser_organisation_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=True),
    sa.Column('price_fen', sa.BigInteger(), nullable=True),
    sa.Column('created_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closes_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('placed_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_framework_orders_lot_id_lots')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_framework_orders_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['purchaser_organisation_id'], ['organisations.id'], name=op.f('fk_framework_orders_purchaser_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_framework_orders_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_framework_orders'))
    )
    with op.batch_alter_table('framework_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_framework_orders_tender_id'), ['tender_id'], unique=False)

    op.create_table('framework_admissions',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('bid_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('cap_fen', sa.BigInteger(), nullable=False),
    sa.Column('admitted_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_framework_admissions_bid_id_bids')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_framework_admissions_lot_id_lots')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_framework_admissions_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_framework_admissions_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_framework_admissions')),
    sa.UniqueConstraint('lot_id', 'organisation_id', name=op.f('uq_framework_admissions_lot_id'))
    )
    with op.batch_alter_table('framework_admissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_framework_admissions_tender_id'), ['tender_id'], unique=False)

    op.create_table('framework_quotes',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('price_fen', sa.BigInteger(), nullable=False),
    sa.Column('quoted_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['framework_orders.id'], name=op.f('fk_framework_quotes_order_id_framework_orders')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_framework_quotes_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_framework_quotes')),
    sa.UniqueConstraint('order_id', 'organisation_id', name=op.f('uq_framework_quotes_order_id'))
    )


def downgrade() -> None:
    op.drop_table('framework_quotes')
    with op.batch_alter_table('framework_admissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_framework_admissions_tender_id'))

    op.drop_table('framework_admissions')
    with op.batch_alter_table('framework_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_framework_orders_tender_id'))

    op.drop_table('framework_orders')
    op.drop_table('framework_agreements')
