"""history entries that many applications share are stored once, as a batch

A window moves all its applications at once three times (judged, then publicized or
refused, then awarded) and an import records one submission each: entries alike in all but
the application. Each becomes one event_batches row and a member row per application, which
holds only the two keys (store.models.EventBatch). Entries already stored are converted:
those that share their moment, actor, action, states and details with another become a
batch; the rest stay where they are. A downgrade puts every entry back in
application_events, in time order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The columns an entry shares with the others of its batch, compared with NULL equal to NULL
# (an expression equality, so that PostgreSQL can hash-join 100,000s of entries).
SHARED = ("at", "actor", "action", "from_state", "to_state", "details")


def _same(a: str, b: str) -> str:
    def v(t: str, c: str) -> str:
        if c == "details":
            return f"COALESCE(CAST({t}.details AS TEXT), '')"
        return f"COALESCE({t}.{c}, '')" if c in ("from_state", "to_state") else f"{t}.{c}"
    return " AND ".join(f"{v(a, c)} = {v(b, c)}" for c in SHARED)


def upgrade() -> None:
    big = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    moment = sa.BigInteger() if op.get_bind().dialect.name == "sqlite" else sa.DateTime(timezone=True)
    op.create_table(
        "event_batches",
        sa.Column("id", big, primary_key=True),
        sa.Column("at", moment, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16)),
        sa.Column("details", sa.JSON),
    )
    op.create_table(
        "event_batch_members",
        sa.Column("application_id", sa.String(32), primary_key=True),   # no foreign keys: see the model
        sa.Column("batch_id", big, primary_key=True),
        sqlite_with_rowid=False,
    )
    pg = op.get_bind().dialect.name == "postgresql"
    text = "CAST(details AS TEXT)"
    op.execute(f"""
        INSERT INTO event_batches (at, actor, action, from_state, to_state, details)
        SELECT at, actor, action, from_state, to_state, {"CAST(d AS JSON)" if pg else "d"}
        FROM (SELECT at, actor, action, from_state, to_state, {text} AS d, min(id) AS first
              FROM application_events
              GROUP BY at, actor, action, from_state, to_state, {text}
              HAVING count(*) > 1) AS shared
        ORDER BY first""")
    op.execute(f"""
        INSERT INTO event_batch_members (application_id, batch_id)
        SELECT DISTINCT e.application_id, b.id FROM application_events e
        JOIN event_batches b ON {_same("e", "b")}""")
    op.execute(f"""
        DELETE FROM application_events WHERE id IN (
            SELECT e.id FROM application_events e JOIN event_batches b ON {_same("e", "b")})""")


def downgrade() -> None:
    cols = "application_id, at, actor, action, from_state, to_state, details"
    op.execute(f"CREATE TEMPORARY TABLE own_events AS SELECT id, {cols} FROM application_events")
    op.execute("DELETE FROM application_events")
    op.execute(f"""
        INSERT INTO application_events ({cols})
        SELECT {cols} FROM (
            SELECT {cols}, 1 AS source, id AS seq FROM own_events
            UNION ALL
            SELECT m.application_id, b.at, b.actor, b.action, b.from_state, b.to_state, b.details, 0, b.id
            FROM event_batch_members m JOIN event_batches b ON b.id = m.batch_id) AS entries
        ORDER BY at, source, seq""")
    op.execute("DROP TABLE own_events")
    op.drop_table("event_batch_members")
    op.drop_table("event_batches")
