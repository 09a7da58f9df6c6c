"""centre steps: project acceptance (项目受理), notice review (公告审核) and venue booking (场地预约)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 19:15:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import storage.db

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('projects',
    sa.Column('agency_organisation_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('sector', sa.String(length=20), nullable=False),
    sa.Column('budget_fen', sa.BigInteger(), nullable=True),
    sa.Column('funding_source', sa.String(length=300), nullable=False),
    sa.Column('approval_number', sa.String(length=100), nullable=False),
    sa.Column('procurement_plan_number', sa.String(length=100), nullable=True),
    sa.Column('documents', JSON, nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.Column('created_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['agency_organisation_id'], ['organisations.id'], name=op.f('fk_projects_agency_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects'))
    )
    op.create_index(op.f('ix_projects_agency_organisation_id'), 'projects', ['agency_organisation_id'], unique=False)
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tenders_project_id'), ['project_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tenders_project_id_projects'), 'projects', ['project_id'], ['id'])
    op.create_table('notice_reviews',
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('submitted_by', sa.Uuid(), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.Column('decided_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_notice_reviews_tender_id_tenders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_reviews')),
    sa.UniqueConstraint('tender_id', 'number', name=op.f('uq_notice_reviews_tender_id'))
    )
    op.create_index(op.f('ix_notice_reviews_tender_id'), 'notice_reviews', ['tender_id'], unique=False)
    op.create_index(op.f('ix_notice_reviews_status'), 'notice_reviews', ['status'], unique=False)
    op.create_table('venues',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_venues')),
    sa.UniqueConstraint('name', name=op.f('uq_venues_name'))
    )
    op.create_table('venue_bookings',
    sa.Column('venue_id', sa.Uuid(), nullable=False),
    sa.Column('tender_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('starts_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('booked_by', sa.Uuid(), nullable=True),
    sa.Column('booked_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_venue_bookings_tender_id_tenders')),
    sa.ForeignKeyConstraint(['venue_id'], ['venues.id'], name=op.f('fk_venue_bookings_venue_id_venues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_venue_bookings'))
    )
    op.create_index('ix_venue_bookings_venue_start', 'venue_bookings', ['venue_id', 'starts_at'], unique=False)
    op.create_index(op.f('ix_venue_bookings_tender_id'), 'venue_bookings', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_venue_bookings_tender_id'), table_name='venue_bookings')
    op.drop_index('ix_venue_bookings_venue_start', table_name='venue_bookings')
    op.drop_table('venue_bookings')
    op.drop_table('venues')
    op.drop_index(op.f('ix_notice_reviews_status'), table_name='notice_reviews')
    op.drop_index(op.f('ix_notice_reviews_tender_id'), table_name='notice_reviews')
    op.drop_table('notice_reviews')
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tenders_project_id_projects'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tenders_project_id'))
        batch_op.drop_column('project_id')
    op.drop_index(op.f('ix_projects_agency_organisation_id'), table_name='projects')
    op.drop_table('projects')
