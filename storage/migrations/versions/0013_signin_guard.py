"""sign-in guard: registration collisions for the centre, the instant a user's password last changed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 23:50:00.000000
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registration_collisions',
    sa.Column('submitted_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('contact_email', sa.String(length=200), nullable=False),
    sa.Column('collides_on', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('closed_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Uuid(), nullable=True),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['closed_by'], ['users.id'], name=op.f('fk_registration_collisions_closed_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_collisions'))
    )
    op.create_index(op.f('ix_registration_collisions_submitted_at'), 'registration_collisions', ['submitted_at'], unique=False)
    op.create_index(op.f('ix_registration_collisions_username'), 'registration_collisions', ['username'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('password_changed_at', storage.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('password_changed_at')
    op.drop_index(op.f('ix_registration_collisions_username'), table_name='registration_collisions')
    op.drop_index(op.f('ix_registration_collisions_submitted_at'), table_name='registration_collisions')
    op.drop_table('registration_collisions')
