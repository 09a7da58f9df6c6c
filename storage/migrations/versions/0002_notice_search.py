"""trigram indexes for searching the notice board on PostgreSQL

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite scans; the indexes exist for PostgreSQL only (Index.ddl_if in trading.models)
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_notices_title_trgm ON notices USING gin (title gin_trgm_ops)")
    op.execute("CREATE INDEX ix_notices_tender_code_trgm ON notices USING gin (tender_code gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_notices_tender_code_trgm")
    op.execute("DROP INDEX IF EXISTS ix_notices_title_trgm")
