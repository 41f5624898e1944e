"""smaller application, enterprise and snapshot rows

- An application's state and channel, and how an enterprise became known, are kept as one
  letter each (store.models.Coded; the code still reads and writes the words). An
  application's row is rewritten whole at each of its three window-wide state changes, on
  PostgreSQL in pages kept half empty for that, so each byte there counts twice.
- An evaluation's grant list names a benefit by its place among its ruleset's grant benefits,
  which the ruleset row now lists (`rulesets.grant_ids`, filled when a ruleset is next used to
  judge): 26 bytes less a decision. Lists written before keep the ids; a downgrade writes ids
  back into every list first.
- A profile snapshot's version number and its unique (enterprise, version) index go: nothing
  read them but the next number (45 bytes an application on PostgreSQL). An enterprise's
  snapshots are told apart by when they were stored; a downgrade numbers them in that order.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""
import orjson
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# as store.models.APPLICATION_STATES, CHANNEL_CODES and SOURCE_CODES, frozen here
CODES = {
    ("applications", "state"): {"received": "r", "judged": "j", "correction": "c", "corrected": "d",
                                "publicized": "p", "awarded": "a", "refused": "x", "failed": "f"},
    ("applications", "channel"): {"web": "w", "import": "i", "api": "a"},
    ("enterprises", "source"): {"registry": "r", "application": "a"},
}


def _recode(forward: bool) -> None:
    conn = op.get_bind()
    for (table, column), codes in CODES.items():
        t = sa.table(table, sa.column(column))
        pairs = codes.items() if forward else ((v, k) for k, v in codes.items())
        whens = [(t.c[column] == old, new) for old, new in pairs]
        # one statement a column: every row rewritten once, whatever the vocabulary's size
        conn.execute(t.update().values({column: sa.case(*whens, else_=t.c[column])}))


def upgrade() -> None:
    _recode(forward=True)
    with op.batch_alter_table("rulesets") as t:
        t.add_column(sa.Column("grant_ids", sa.JSON, nullable=True))
    with op.batch_alter_table("profile_snapshots") as t:
        t.drop_constraint("uq_snapshot_version", type_="unique")
        t.drop_column("version")


def downgrade() -> None:
    _recode(forward=False)
    conn = op.get_bind()
    rs = sa.table("rulesets", sa.column("seq"), sa.column("grant_ids", sa.JSON))
    ev = sa.table("evaluations", sa.column("id"), sa.column("ruleset_seq"), sa.column("grants", sa.LargeBinary))
    ids = {seq: g for seq, g in conn.execute(sa.select(rs.c.seq, rs.c.grant_ids)) if g}
    named = []
    for i, seq, packed in conn.execute(sa.select(ev.c.id, ev.c.ruleset_seq, ev.c.grants)
                                       .where(ev.c.grants.is_not(None), ev.c.ruleset_seq.in_(list(ids)))):
        rows = orjson.loads(packed)
        if any(not isinstance(r[0], str) for r in rows):
            named.append({"i": i, "g": orjson.dumps([[r[0] if isinstance(r[0], str) else ids[seq][r[0]], *r[1:]]
                                                     for r in rows])})
    for k in range(0, len(named), 2000):
        conn.execute(ev.update().where(ev.c.id == sa.bindparam("i")).values(grants=sa.bindparam("g")),
                     named[k:k + 2000])
    with op.batch_alter_table("rulesets") as t:
        t.drop_column("grant_ids")
    with op.batch_alter_table("profile_snapshots") as t:
        t.add_column(sa.Column("version", sa.Integer, nullable=True))
    snaps = sa.table("profile_snapshots", sa.column("hash"), sa.column("uscc"), sa.column("created_at"),
                     sa.column("version"))
    numbered = sa.select(snaps.c.hash, sa.func.row_number().over(
        partition_by=snaps.c.uscc, order_by=(snaps.c.created_at, snaps.c.hash)).label("n")).subquery()
    conn.execute(snaps.update().values(version=sa.select(numbered.c.n).where(numbered.c.hash == snaps.c.hash)
                                       .scalar_subquery()))
    with op.batch_alter_table("profile_snapshots") as t:
        t.alter_column("version", existing_type=sa.Integer, nullable=False)
        t.create_unique_constraint("uq_snapshot_version", ["uscc", "version"])
