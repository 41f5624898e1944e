"""profile snapshots are stored packed: deflate with a stored preset dictionary

A quarter of the database was the JSON text of profile snapshots, mostly the same field names
in every row. A snapshot is now `packed` (store.profiles): a marker byte, the 8-byte key of a
dictionary stored once in `profile_dictionaries`, and the raw deflate of the JSON text. The
existing snapshots are packed here with a dictionary made from the stored profiles themselves
(so this revision does not depend on the rule files or on today's code); snapshots stored
afterwards use one made from the field registry. The index on `uscc` goes: the unique
(uscc, version) index serves the same lookups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
import hashlib
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PACKED = b"\x01"
WBITS = -13
BATCH = 1000


def _pack(text: bytes, key: bytes, zdict: bytes) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, WBITS, 4, zlib.Z_DEFAULT_STRATEGY, zdict)
    return PACKED + key + co.compress(text) + co.flush()


def _unpack(blob: bytes, zdict: bytes) -> bytes:
    d = zlib.decompressobj(WBITS, zdict)
    return d.decompress(bytes(blob)[9:]) + d.flush()


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.create_table(
        "profile_dictionaries",
        sa.Column("key", sa.LargeBinary(8), primary_key=True),
        sa.Column("dictionary", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("profile_snapshots") as t:
        t.add_column(sa.Column("packed", sa.LargeBinary(), nullable=True))
    text = "CAST(profile AS TEXT)" if pg else "profile"
    sample = [r[0] for r in bind.execute(sa.text(f"SELECT {text} FROM profile_snapshots ORDER BY hash LIMIT 8"))]
    if sample:
        zdict = "".join(sample).encode()[-6000:]
        key = hashlib.sha256(zdict).digest()[:8]
        bind.execute(sa.text("INSERT INTO profile_dictionaries (key, dictionary, created_at) "
                             "VALUES (:k, :d, CURRENT_TIMESTAMP)"), {"k": key, "d": zdict})
        after = ""
        while True:
            rows = bind.execute(sa.text(f"SELECT hash, {text} FROM profile_snapshots WHERE hash > :a "
                                        "ORDER BY hash LIMIT :n"), {"a": after, "n": BATCH}).all()
            if not rows:
                break
            bind.execute(sa.text("UPDATE profile_snapshots SET packed = :p WHERE hash = :h"),
                         [{"h": h, "p": _pack(p.encode(), key, zdict)} for h, p in rows])
            after = rows[-1][0]
    with op.batch_alter_table("profile_snapshots") as t:
        t.drop_index("ix_profile_snapshots_uscc")
        t.drop_column("profile")
        t.alter_column("packed", existing_type=sa.LargeBinary(), nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    with op.batch_alter_table("profile_snapshots") as t:
        t.add_column(sa.Column("profile", sa.JSON(), nullable=True))
    dicts = {bytes(k): bytes(d) for k, d in bind.execute(sa.text("SELECT key, dictionary FROM profile_dictionaries"))}
    value = "CAST(:p AS JSON)" if pg else ":p"
    after = ""
    while True:
        rows = bind.execute(sa.text("SELECT hash, packed FROM profile_snapshots WHERE hash > :a "
                                    "ORDER BY hash LIMIT :n"), {"a": after, "n": BATCH}).all()
        if not rows:
            break
        bind.execute(sa.text(f"UPDATE profile_snapshots SET profile = {value} WHERE hash = :h"),
                     [{"h": h, "p": _unpack(b, dicts[bytes(b)[1:9]]).decode()} for h, b in rows])
        after = rows[-1][0]
    with op.batch_alter_table("profile_snapshots") as t:
        t.drop_column("packed")
        t.alter_column("profile", existing_type=sa.JSON(), nullable=False)
        t.create_index("ix_profile_snapshots_uscc", ["uscc"], unique=False)
    op.drop_table("profile_dictionaries")
