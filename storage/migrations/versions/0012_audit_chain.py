"""audit chain: the audit trail is numbered, hash-chained and signed; PostgreSQL refuses to edit it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 23:50:00.000000

Existing events are chained here, deterministically: in the order of their time and then their id, with
no roles (they were not recorded before), each linked to the one before exactly as accounts.auditchain
links new ones. On PostgreSQL, triggers then refuse UPDATE and DELETE on the events and the signed heads,
and let the chain row only move forward to a stored event.
"""

from alembic import op
import sqlalchemy as sa
import storage.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
BATCH = 5000

APPEND_ONLY = """
CREATE FUNCTION ggzy_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: % is append-only (E-04)', TG_OP, TG_TABLE_NAME, TG_TABLE_NAME;
END
$$
"""

CHAIN_FORWARD = """
CREATE FUNCTION ggzy_audit_chain_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.sequence <= OLD.sequence OR NOT EXISTS (
        SELECT 1 FROM audit_events WHERE sequence = NEW.sequence AND hash = NEW.hash
    ) THEN
        RAISE EXCEPTION '% on audit_chain refused: the chain row only moves forward to a stored event (E-04)',
            TG_OP;
    END IF;
    RETURN NEW;
END
$$
"""


def _chain_existing() -> tuple[int, str]:
    """Number and link the events already stored; the chain's last sequence and hash."""
    from accounts import auditchain

    events = sa.table(
        'audit_events',
        sa.column('id', sa.Uuid()),
        sa.column('at', storage.db.UTCDateTime(timezone=True)),
        sa.column('actor_user_id', sa.Uuid()),
        sa.column('actor_organisation_id', sa.Uuid()),
        sa.column('action', sa.String()),
        sa.column('object_type', sa.String()),
        sa.column('object_id', sa.String()),
        sa.column('outcome', sa.String()),
        sa.column('detail', JSON),
        sa.column('sequence', sa.BigInteger()),
        sa.column('previous_hash', sa.String()),
        sa.column('hash', sa.String()),
    )
    bind = op.get_bind()
    chained = (
        events.update()
        .where(events.c.id == sa.bindparam('event_id'))
        .values(sequence=sa.bindparam('s'), previous_hash=sa.bindparam('p'), hash=sa.bindparam('h'))
    )
    sequence, last = 0, auditchain.GENESIS
    after = None
    while True:
        query = sa.select(events).order_by(events.c.at, events.c.id).limit(BATCH)
        if after is not None:
            at, event_id = after
            query = query.where((events.c.at > at) | ((events.c.at == at) & (events.c.id > event_id)))
        rows = bind.execute(query).all()
        if not rows:
            return sequence, last
        updates = []
        for row in rows:
            sequence += 1
            try:
                digest = auditchain.detail_hash(row.detail)
            except TypeError as exc:
                raise RuntimeError(f"audit event {row.id} has details without a canonical form: {exc}") from exc
            link = auditchain.Event(
                sequence,
                last,
                str(row.id),
                row.at,
                None if row.actor_user_id is None else str(row.actor_user_id),
                None if row.actor_organisation_id is None else str(row.actor_organisation_id),
                (),
                row.action,
                row.object_type,
                row.object_id,
                row.outcome,
                digest,
            )
            updates.append({'event_id': row.id, 's': sequence, 'p': last, 'h': auditchain.link_hash(link)})
            last = updates[-1]['h']
        bind.execute(chained, updates)
        after = (rows[-1].at, rows[-1].id)


def upgrade() -> None:
    op.create_table('audit_chain',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_chain_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain'))
    )
    op.create_table('audit_heads',
    sa.Column('sequence', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('chain_hash', sa.String(length=64), nullable=False),
    sa.Column('signed_at', storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('sequence', name=op.f('pk_audit_heads')),
    sa.UniqueConstraint('events', name=op.f('uq_audit_heads_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sequence', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('actor_roles', JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('previous_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))

    sequence, last = _chain_existing()
    op.bulk_insert(
        sa.table('audit_chain', sa.column('id', sa.Integer()), sa.column('sequence', sa.BigInteger()),
                 sa.column('hash', sa.String())),
        [{'id': 1, 'sequence': sequence, 'hash': last}],
    )

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('sequence', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('previous_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('actor_roles', existing_type=JSON, server_default=None)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_sequence'), ['sequence'])

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY)
        op.execute(CHAIN_FORWARD)
        for table in ('audit_events', 'audit_heads'):
            op.execute(
                f'CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} '
                'FOR EACH ROW EXECUTE FUNCTION ggzy_audit_append_only()'
            )
        op.execute(
            'CREATE TRIGGER audit_chain_forward BEFORE UPDATE OR DELETE ON audit_chain '
            'FOR EACH ROW EXECUTE FUNCTION ggzy_audit_chain_forward()'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_chain_forward ON audit_chain')
        for table in ('audit_events', 'audit_heads'):
            op.execute(f'DROP TRIGGER IF EXISTS {table}_append_only ON {table}')
        op.execute('DROP FUNCTION IF EXISTS ggzy_audit_chain_forward()')
        op.execute('DROP FUNCTION IF EXISTS ggzy_audit_append_only()')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_sequence'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('previous_hash')
        batch_op.drop_column('actor_roles')
        batch_op.drop_column('sequence')
    op.drop_table('audit_heads')
    op.drop_table('audit_chain')
