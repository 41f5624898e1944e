"""SHA-256 digests kept as their 32 bytes, not 64 hex characters

An application carries seven of them: its profile snapshot's key (in the row and in its
index), the snapshot it applied with, its access code's, its enterprise's newest snapshot and
its evaluation's profile and input key. As bytes they take half (store.models.Digest; the
code still reads and writes hex). PostgreSQL's columns become bytea; SQLite keeps the declared
type and stores the bytes (a TEXT column keeps a blob as it is), as 0009 did with moments.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DIGESTS = (("profile_snapshots", "hash"), ("applications", "snapshot_hash"),
           ("applications", "access_code_hash"), ("enterprises", "latest_snapshot"),
           ("evaluations", "profile_hash"), ("evaluations", "input_key"),
           ("notices", "basis_profile_hash"))


def _snapshot_key(bind) -> str:
    """The name PostgreSQL gave the applications' foreign key to their snapshot."""
    return next(fk["name"] for fk in sa.inspect(bind).get_foreign_keys("applications")
                if fk["constrained_columns"] == ["snapshot_hash"])


def _convert(to_bytes: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if to_bytes:    # SQLite has unhex() only from 3.41 on
            bind.connection.driver_connection.create_function(
                "yagu_unhex", 1, lambda v: bytes.fromhex(v), deterministic=True)
        for table, column in DIGESTS:
            c = f'"{column}"'
            value, stored_as = (f"yagu_unhex({c})", "text") if to_bytes else (f"lower(hex({c}))", "blob")
            op.execute(f'UPDATE "{table}" SET {c} = {value} WHERE typeof({c}) = \'{stored_as}\'')
        return
    key = _snapshot_key(bind)
    op.drop_constraint(key, "applications", type_="foreignkey")
    for table, column in DIGESTS:
        if to_bytes:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE bytea USING decode("{column}", \'hex\')')
        else:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE varchar(64) USING encode("{column}", \'hex\')')
    op.create_foreign_key(key, "applications", "profile_snapshots", ["snapshot_hash"], ["hash"])


def upgrade() -> None:
    _convert(to_bytes=True)


def downgrade() -> None:
    _convert(to_bytes=False)
