"""custody attribution: the platform's flag on the roster, the Shamir threshold, releases with their
proofs, the custody statement of the closing head and each custody envelope's outcome

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('custodians', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform', sa.Boolean(), nullable=False, server_default=sa.false()))
    # The centre on a roster is the platform; tenders published before keep the threshold their envelopes
    # were sealed with (T = t), so they still open.
    op.execute(
        "UPDATE custodians SET platform = TRUE WHERE organisation_id IN "
        "(SELECT id FROM organisations WHERE kind = 'centre')"
    )

    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('custody_shamir_threshold', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE tenders SET custody_shamir_threshold = custody_threshold WHERE id IN "
        "(SELECT tender_id FROM custodians)"
    )

    with op.batch_alter_table('custody_shares', schema=None) as batch_op:
        batch_op.alter_column('share', existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(sa.Column('release', JSON, nullable=True))
        # a share released before proofs existed cannot be attributed: it is kept, marked unproven
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False, server_default='unproven'))
        batch_op.add_column(sa.Column('error', sa.String(length=60), nullable=True))

    with op.batch_alter_table('envelopes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('custody_outcome', JSON, nullable=True))

    with op.batch_alter_table('closings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('custody', JSON, nullable=True))
        batch_op.add_column(sa.Column('custody_signature', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('closings', schema=None) as batch_op:
        batch_op.drop_column('custody_signature')
        batch_op.drop_column('custody')

    with op.batch_alter_table('envelopes', schema=None) as batch_op:
        batch_op.drop_column('custody_outcome')

    op.execute("DELETE FROM custody_shares WHERE share IS NULL")
    with op.batch_alter_table('custody_shares', schema=None) as batch_op:
        batch_op.drop_column('error')
        batch_op.drop_column('status')
        batch_op.drop_column('release')
        batch_op.alter_column('share', existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_column('custody_shamir_threshold')

    with op.batch_alter_table('custodians', schema=None) as batch_op:
        batch_op.drop_column('platform')
