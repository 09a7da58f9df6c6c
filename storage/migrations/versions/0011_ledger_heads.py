"""ledger heads: hash scheme 3 (the party inside the hashed entry), signed heads, bank line conflicts,
and append-only triggers on PostgreSQL

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00.000000

Existing journal entries are scheme 2 (no party); the column's server default fills them in and is then
dropped, so every new row names its scheme. On PostgreSQL the append-only money tables refuse UPDATE and
DELETE (a trigger raising "ggzy: <table> is append-only"); TRUNCATE, which only an owner may run, is left
to the owner (the test suite empties tables with it). SQLite has no triggers here: it is the embedded,
single-user default.
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

APPEND_ONLY = ("journal_entries", "postings", "ledger_signed_heads", "payee_changes", "interest_rates")

_FUNCTION = """
CREATE FUNCTION ggzy_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ggzy: % is append-only; % refused (correct by a new entry, never by an edit)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _json():
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheme', sa.SmallInteger(), nullable=False, server_default='2'))
        batch_op.add_column(sa.Column('party_role', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('party_account', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('party_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('party_bank', sa.String(length=200), nullable=True))
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.alter_column('scheme', server_default=None)

    with op.batch_alter_table('payee_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_sequence', sa.BigInteger(), nullable=True))

    op.create_table('ledger_signed_heads',
    sa.Column('sequence', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('entries', sa.BigInteger(), nullable=False),
    sa.Column('chain_hash', sa.String(length=64), nullable=False),
    sa.Column('signed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.String(length=88), nullable=False),
    sa.Column('cause', sa.String(length=30), nullable=False),
    sa.PrimaryKeyConstraint('sequence', name=op.f('pk_ledger_signed_heads'))
    )
    with op.batch_alter_table('ledger_signed_heads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_signed_heads_signed_at'), ['signed_at'], unique=False)

    op.create_table('bank_line_conflicts',
    sa.Column('line_id', sa.Uuid(), nullable=False),
    sa.Column('reference', sa.String(length=120), nullable=False),
    sa.Column('statement_id', sa.Uuid(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('known', _json(), nullable=False),
    sa.Column('incoming', _json(), nullable=False),
    sa.Column('differences', _json(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('detected_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=10), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolved_at', storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('entry_sequence', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['bank_lines.id'], name=op.f('fk_bank_line_conflicts_line_id_bank_lines')),
    sa.ForeignKeyConstraint(['statement_id'], ['bank_statements.id'], name=op.f('fk_bank_line_conflicts_statement_id_bank_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_line_conflicts')),
    sa.UniqueConstraint('line_id', 'digest', name=op.f('uq_bank_line_conflicts_line_id_digest')),
    )
    with op.batch_alter_table('bank_line_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_line_conflicts_line_id'), ['line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_line_conflicts_status'), ['status'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ggzy_append_only()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ggzy_append_only()")
    with op.batch_alter_table('bank_line_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_line_conflicts_status'))
        batch_op.drop_index(batch_op.f('ix_bank_line_conflicts_line_id'))
    op.drop_table('bank_line_conflicts')
    with op.batch_alter_table('ledger_signed_heads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_signed_heads_signed_at'))
    op.drop_table('ledger_signed_heads')
    with op.batch_alter_table('payee_changes', schema=None) as batch_op:
        batch_op.drop_column('entry_sequence')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_column('party_bank')
        batch_op.drop_column('party_name')
        batch_op.drop_column('party_account')
        batch_op.drop_column('party_role')
        batch_op.drop_column('scheme')
