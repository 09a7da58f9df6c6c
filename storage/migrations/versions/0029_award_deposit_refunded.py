"""an award records the deposit its winner was already refunded as an unsuccessful supplier (G-04-loser)
before a re-evaluation or a passed-on award made it the winner

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 22:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('awards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deposit_refunded_fen', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('awards', schema=None) as batch_op:
        batch_op.drop_column('deposit_refunded_fen')
