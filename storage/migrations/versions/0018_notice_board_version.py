"""notice board version: a token that changes with every committed write to the notices

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 07:50:00.000000

The public board keeps its answers in each API process and serves one only while this token is what it
was when the answer was read (trading/board.py). The token is written by triggers, in the transaction that
writes the notice, so it changes exactly when the notice becomes visible: every writer is covered (the
services, the benchmark's bulk fill, a hand-written correction) and none can forget. On PostgreSQL the
trigger is deferred to the commit, so the row lock on the token is held only while committing and is
always the last lock a transaction takes; it fires in replica sessions too (logical replication applies
rows as one), and TRUNCATE changes it as well.
"""

from alembic import op
import sqlalchemy as sa

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

POSTGRESQL_TOKEN = "replace(gen_random_uuid()::text, '-', '')"
SQLITE_TOKEN = "lower(hex(randomblob(16)))"
POSTGRESQL = (
    f"""CREATE FUNCTION ggzy_notice_board_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notice_board_version (id, token) VALUES (1, {POSTGRESQL_TOKEN})
    ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
    RETURN NULL;
END
$$""",
    """CREATE CONSTRAINT TRIGGER notices_board_version AFTER INSERT OR UPDATE OR DELETE ON notices
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ggzy_notice_board_changed()""",
    """CREATE TRIGGER notices_board_version_truncate AFTER TRUNCATE ON notices
    FOR EACH STATEMENT EXECUTE FUNCTION ggzy_notice_board_changed()""",
    "ALTER TABLE notices ENABLE ALWAYS TRIGGER notices_board_version",
    "ALTER TABLE notices ENABLE ALWAYS TRIGGER notices_board_version_truncate",
)

SQLITE_TRIGGER = f"""
CREATE TRIGGER notices_board_version_{{event}} AFTER {{event}} ON notices BEGIN
    INSERT INTO notice_board_version (id, token) VALUES (1, {SQLITE_TOKEN})
    ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END
"""
EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "notice_board_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_board_version")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"INSERT INTO notice_board_version (id, token) VALUES (1, {POSTGRESQL_TOKEN})")
        for statement in POSTGRESQL:
            op.execute(statement)
    else:
        op.execute(f"INSERT INTO notice_board_version (id, token) VALUES (1, {SQLITE_TOKEN})")
        for event in EVENTS:
            op.execute(SQLITE_TRIGGER.format(event=event))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS notices_board_version_truncate ON notices")
        op.execute("DROP TRIGGER IF EXISTS notices_board_version ON notices")
        op.execute("DROP FUNCTION IF EXISTS ggzy_notice_board_changed()")
    else:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS notices_board_version_{event}")
    op.drop_table("notice_board_version")
