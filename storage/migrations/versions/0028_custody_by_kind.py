"""custody by kind: a custodian's release names the envelope it opens (technical or commercial), and a
technical envelope keeps the outcome of its custody opening and the committee's reason for its verdict

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 22:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    # Every release made before was of a commercial envelope: custodians opened no other.
    with op.batch_alter_table("custody_shares", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=12), nullable=False, server_default="commercial")
        )
        batch_op.drop_constraint("uq_custody_shares_bid_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_custody_shares_bid_kind_position", ["bid_id", "kind", "position"]
        )
    with op.batch_alter_table("technical_envelopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("custody_outcome", JSON, nullable=True))
        batch_op.add_column(sa.Column("verdict_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("technical_envelopes", schema=None) as batch_op:
        batch_op.drop_column("verdict_reason")
        batch_op.drop_column("custody_outcome")
    op.execute("DELETE FROM custody_shares WHERE kind = 'technical'")
    with op.batch_alter_table("custody_shares", schema=None) as batch_op:
        batch_op.drop_constraint("uq_custody_shares_bid_kind_position", type_="unique")
        batch_op.create_unique_constraint("uq_custody_shares_bid_id", ["bid_id", "position"])
        batch_op.drop_column("kind")
