"""open framework agreements: the agreement's kind, allocation and published terms, suppliers joining and
leaving, their applications (G-01, 110号令)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 22:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy.dialects import postgresql

revision = '0030'
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('framework_agreements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='closed', nullable=False))
        batch_op.add_column(sa.Column('allocation', sa.String(length=20), server_default='choice', nullable=False))
        batch_op.add_column(sa.Column('terms', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    with op.batch_alter_table('framework_admissions', schema=None) as batch_op:
        batch_op.alter_column('bid_id', existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column('left_at', storage.db.UTCDateTime(timezone=True), nullable=True))
    op.create_table('framework_applications',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.Column('applied_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_framework_applications_lot_id_lots')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_framework_applications_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_framework_applications_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_framework_applications'))
    )
    with op.batch_alter_table('framework_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_framework_applications_tender_id'), ['tender_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('framework_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_framework_applications_tender_id'))
    op.drop_table('framework_applications')
    with op.batch_alter_table('framework_admissions', schema=None) as batch_op:
        batch_op.drop_column('left_at')
        batch_op.alter_column('bid_id', existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table('framework_agreements', schema=None) as batch_op:
        batch_op.drop_column('terms')
        batch_op.drop_column('allocation')
        batch_op.drop_column('kind')
