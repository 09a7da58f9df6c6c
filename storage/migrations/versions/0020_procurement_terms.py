"""procurement terms: the most lots one supplier may win when the documents set a limit (分包), and the
suppliers invited where only they may take part, and the consent to a change of method

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 16:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('tenders') as batch:
        batch.add_column(sa.Column('max_lots_per_supplier', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('invited_organisations', JSON, server_default='[]', nullable=False))
        batch.add_column(sa.Column('method_approval', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tenders') as batch:
        batch.drop_column('method_approval')
        batch.drop_column('invited_organisations')
        batch.drop_column('max_lots_per_supplier')
