"""re-evaluation and price ceilings: evaluation rounds of rooms and reports (重新评审), the outcome of a
challenge, and a lot's ceiling price (最高限价)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 19:10:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ceiling_price_fen', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_constraint('uq_reports_tender_id', type_='unique')
        batch_op.create_unique_constraint('uq_reports_tender_id_round', ['tender_id', 'round'])
    with op.batch_alter_table('evaluation_rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_constraint('uq_evaluation_rooms_draw_id', type_='unique')
        batch_op.create_unique_constraint('uq_evaluation_rooms_draw_id_round', ['draw_id', 'round'])


def downgrade() -> None:
    with op.batch_alter_table('evaluation_rooms', schema=None) as batch_op:
        batch_op.drop_constraint('uq_evaluation_rooms_draw_id_round', type_='unique')
        batch_op.create_unique_constraint('uq_evaluation_rooms_draw_id', ['draw_id'])
        batch_op.drop_column('round')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_constraint('uq_reports_tender_id_round', type_='unique')
        batch_op.create_unique_constraint('uq_reports_tender_id', ['tender_id'])
        batch_op.drop_column('round')
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.drop_column('outcome')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_column('ceiling_price_fen')
