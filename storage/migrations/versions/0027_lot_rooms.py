"""one evaluation room per lot: the tender's evaluation rooms setting (分包评标) and a room's lot

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 21:50:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('evaluation_rooms', sa.String(length=10), server_default='single', nullable=False)
        )
    with op.batch_alter_table('evaluation_rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lot_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_evaluation_rooms_lot_id_lots'), 'lots', ['lot_id'], ['id']
        )
        batch_op.drop_constraint('uq_evaluation_rooms_draw_id_round', type_='unique')
        batch_op.create_unique_constraint(
            'uq_evaluation_rooms_draw_id_round_lot_id', ['draw_id', 'round', 'lot_id']
        )
        batch_op.create_index(
            'uq_evaluation_rooms_single_draw_id_round',
            ['draw_id', 'round'],
            unique=True,
            sqlite_where=sa.text('lot_id IS NULL'),
            postgresql_where=sa.text('lot_id IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('evaluation_rooms', schema=None) as batch_op:
        batch_op.drop_index('uq_evaluation_rooms_single_draw_id_round')
        batch_op.drop_constraint('uq_evaluation_rooms_draw_id_round_lot_id', type_='unique')
        batch_op.create_unique_constraint('uq_evaluation_rooms_draw_id_round', ['draw_id', 'round'])
        batch_op.drop_constraint(batch_op.f('fk_evaluation_rooms_lot_id_lots'), type_='foreignkey')
        batch_op.drop_column('lot_id')
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_column('evaluation_rooms')
