"""procurement terms: the most lots one supplier may win (分包), the suppliers invited where only they may take
part, the consent to a change of method, negotiated procedures' records and sealed final quotes, and the
supervising authority's suspension of a trade and the outcome of a complaint

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 16:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import storage.db

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_lots_per_supplier', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('invited_organisations', JSON, server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('method_approval', JSON, nullable=True))
        batch_op.add_column(sa.Column('final_quote_deadline', storage.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspended_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('suspended_by_complaint_id', sa.Uuid(), nullable=True))
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_price_fen', sa.BigInteger(), nullable=True))
    op.create_table('negotiation_notes',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=True),
    sa.Column('round', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('recorded_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_negotiation_notes_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_negotiation_notes_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_negotiation_notes'))
    )
    op.create_index(op.f('ix_negotiation_notes_tender_id'), 'negotiation_notes', ['tender_id'], unique=False)
    op.create_table('final_quotes',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.Column('committed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('price_fen', sa.BigInteger(), nullable=True),
    sa.Column('nonce', sa.String(length=64), nullable=True),
    sa.Column('revealed_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_final_quotes_lot_id_lots')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_final_quotes_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_final_quotes_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_final_quotes')),
    sa.UniqueConstraint('lot_id', 'organisation_id', name=op.f('uq_final_quotes_lot_id')),
    )
    op.create_index(op.f('ix_final_quotes_tender_id'), 'final_quotes', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_final_quotes_tender_id'), table_name='final_quotes')
    op.drop_table('final_quotes')
    op.drop_index(op.f('ix_negotiation_notes_tender_id'), table_name='negotiation_notes')
    op.drop_table('negotiation_notes')
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.drop_column('first_price_fen')
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_column('outcome')
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_column('suspended_by_complaint_id')
        batch_op.drop_column('suspended_reason')
        batch_op.drop_column('final_quote_deadline')
        batch_op.drop_column('method_approval')
        batch_op.drop_column('invited_organisations')
        batch_op.drop_column('max_lots_per_supplier')
