"""object claims: every upload grant and finalize copy, for size quotas and the sweeper

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 04:20:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('object_claims',
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('upload_id', sa.String(length=1024), nullable=True),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('scope_id', sa.Uuid(), nullable=True),
    sa.Column('max_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_object_claims'))
    )
    op.create_index('ix_object_claims_owner_scope', 'object_claims', ['owner_id', 'scope_id'], unique=False)
    op.create_index('ix_object_claims_state_expires', 'object_claims', ['state', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_object_claims_state_expires', table_name='object_claims')
    op.drop_index('ix_object_claims_owner_scope', table_name='object_claims')
    op.drop_table('object_claims')
