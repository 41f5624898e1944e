"""snapshot keys kept as 16 bytes and input keys as 8, not 32

A profile snapshot's key is the first 16 bytes of its SHA-256 (store.models.digest), an
evaluation's input key the first 8 (store.evaluation.input_key): 104 bytes less an
application. The stored ones are cut the same way, so that the store finds every snapshot by
the key it computes today. An access code's hash keeps its 32 bytes.

A downgrade gives the snapshot keys (and every column naming a snapshot) their full 32 bytes
back, recomputed from the stored profiles. Input keys cannot be recomputed here (they hash the
window and the awards of that moment); they stay short, which the previous release reads as a
changed input: its next evaluation of an open window decides once more, to the same result.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""
import hashlib
import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SNAPSHOT_KEYS = (("profile_snapshots", "hash"), ("applications", "snapshot_hash"),
                 ("enterprises", "latest_snapshot"), ("evaluations", "profile_hash"),
                 ("notices", "basis_profile_hash"))
BATCH = 1000


def _snapshot_key(bind) -> str:
    """The name PostgreSQL gave the applications' foreign key to their snapshot."""
    return next(fk["name"] for fk in sa.inspect(bind).get_foreign_keys("applications")
                if fk["constrained_columns"] == ["snapshot_hash"])


def _rekey(change) -> None:
    """Run `change` with the applications' foreign key to their snapshot lifted (SQLite
    migrations run with foreign keys off: store.db)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        change(bind)
        return
    key = _snapshot_key(bind)
    op.drop_constraint(key, "applications", type_="foreignkey")
    change(bind)
    op.create_foreign_key(key, "applications", "profile_snapshots", ["snapshot_hash"], ["hash"])


def upgrade() -> None:
    def cut(bind) -> None:
        first = "substr({c}, 1, {n})" if bind.dialect.name == "sqlite" else "substring({c} from 1 for {n})"
        for table, column, n in (*((t, c, 16) for t, c in SNAPSHOT_KEYS), ("evaluations", "input_key", 8)):
            c = f'"{column}"'
            op.execute(f'UPDATE "{table}" SET {c} = {first.format(c=c, n=n)} WHERE length({c}) > {n}')
    _rekey(cut)


def _full_digest(packed: bytes, dicts: dict) -> bytes:
    """SHA-256 of a stored profile's canonical JSON (engine.profile.canonical_json), from its
    packed form (store.profiles: 0x01, the dictionary's 8-byte key, raw deflate)."""
    packed = bytes(packed)
    d = zlib.decompressobj(-13, dicts[packed[1:9]])
    profile = json.loads(d.decompress(packed[9:]) + d.flush())
    text = json.dumps(profile, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).digest()


def downgrade() -> None:
    bind = op.get_bind()
    dicts = {bytes(k): bytes(v) for k, v in bind.execute(sa.text("SELECT key, dictionary FROM profile_dictionaries"))}
    op.create_table("yagu_full_digests", sa.Column("short_key", sa.LargeBinary, primary_key=True),
                    sa.Column("full_key", sa.LargeBinary, nullable=False))
    rows = bind.execute(sa.text("SELECT hash, packed, uscc, version FROM profile_snapshots "
                                "WHERE length(hash) = 16")).all()
    pairs = []
    for short, packed, uscc, version in rows:
        full = _full_digest(packed, dicts)
        if full[:16] != bytes(short):
            raise RuntimeError(f"企业 {uscc} 第 {version} 版画像的内容与其哈希不符，无法恢复完整哈希，未降级")
        pairs.append({"s": bytes(short), "f": full})
    for i in range(0, len(pairs), BATCH):
        bind.execute(sa.text("INSERT INTO yagu_full_digests (short_key, full_key) VALUES (:s, :f)"), pairs[i:i + BATCH])

    def restore(bind) -> None:
        for table, column in SNAPSHOT_KEYS:
            c = f'"{column}"'
            op.execute(f'UPDATE "{table}" SET {c} = (SELECT m.full_key FROM yagu_full_digests m WHERE m.short_key = {c}) '
                       f"WHERE {c} IN (SELECT short_key FROM yagu_full_digests)")
    _rekey(restore)
    op.drop_table("yagu_full_digests")
