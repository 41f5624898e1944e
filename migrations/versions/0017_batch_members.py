"""a batch of history entries lists its applications itself

Each event batch (a step many applications of a window took at once: an import, judging,
公示, the close) had a row per application in event_batch_members: 3.3 rows an application,
430 bytes an application on PostgreSQL with its key index. A batch now holds its window and
the list of its applications (their ids, sorted, a line each, zlib-compressed: about 9 bytes
a member), and an application's history reads the batches of its window
(store.audit.history). Batches are converted; a batch whose members are in several windows
(none are written so) is split, one batch per window. A downgrade restores the member rows.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ENTRY = ("at", "actor", "action", "from_state", "to_state", "details")


def _pack(ids) -> bytes:                     # as store.audit.pack_members, frozen here
    return zlib.compress("\n".join(sorted(ids)).encode(), 9)


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("event_batches") as t:
        t.add_column(sa.Column("window_id", sa.String(32), nullable=True))
        t.add_column(sa.Column("members", sa.LargeBinary, nullable=True))
    meta = sa.MetaData()
    b = sa.Table("event_batches", meta, autoload_with=conn)
    m = sa.Table("event_batch_members", meta, autoload_with=conn)
    a = sa.Table("applications", meta, autoload_with=conn)
    by_batch: dict[int, dict] = {}
    for batch, app, window in conn.execute(
            sa.select(m.c.batch_id, m.c.application_id, a.c.window_id)
            .select_from(m.outerjoin(a, a.c.id == m.c.application_id))):
        by_batch.setdefault(batch, {}).setdefault(window, []).append(app)
    entries = {r.id: r._mapping for r in conn.execute(sa.select(b.c.id, *(b.c[c] for c in ENTRY)))}
    for batch, windows in by_batch.items():
        (window, ids), *others = sorted(windows.items(), key=lambda w: (w[0] is None, w[0] or ""))
        conn.execute(b.update().where(b.c.id == batch).values(window_id=window, members=_pack(ids)))
        for window, ids in others:
            conn.execute(b.insert().values(**{c: entries[batch][c] for c in ENTRY},
                                           window_id=window, members=_pack(ids)))
    conn.execute(b.delete().where(b.c.members.is_(None)))      # a batch without members lists no one
    op.drop_table("event_batch_members")
    with op.batch_alter_table("event_batches") as t:
        t.alter_column("members", existing_type=sa.LargeBinary, nullable=False)
        t.create_index("ix_event_batches_window_id", ["window_id"])


def downgrade() -> None:
    conn = op.get_bind()
    big = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "event_batch_members",
        sa.Column("application_id", sa.String(32), primary_key=True),
        sa.Column("batch_id", big, primary_key=True),
        sqlite_with_rowid=False,
    )
    meta = sa.MetaData()
    b = sa.Table("event_batches", meta, autoload_with=conn)
    m = sa.Table("event_batch_members", meta, autoload_with=conn)
    for batch, packed in conn.execute(sa.select(b.c.id, b.c.members)).all():
        conn.execute(m.insert(), [dict(application_id=i, batch_id=batch)
                                  for i in zlib.decompress(packed).decode().split("\n")])
    with op.batch_alter_table("event_batches") as t:
        t.drop_index("ix_event_batches_window_id")
        t.drop_column("members")
        t.drop_column("window_id")
