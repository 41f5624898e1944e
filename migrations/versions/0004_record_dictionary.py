"""rulesets keep the zlib dictionary of their decision records

Decision records packed with a dictionary made from their ruleset (what a record of each
benefit looks like) take about a tenth of the space. The dictionary is stored with the
ruleset, so records decode the same however the code that makes dictionaries changes.
Existing records stay plain (they carry no dictionary marker) and read as before; a ruleset
gets its dictionary the next time it decides something.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rulesets") as t:
        t.add_column(sa.Column("pack_dictionary", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # Records packed with a dictionary cannot be read without it: they are written back plain
    # first (0012's downgrade has given positional records their keys back).
    bind = op.get_bind()
    zdicts = {v: bytes(z) for v, z in bind.execute(sa.text(
        "SELECT version, pack_dictionary FROM rulesets WHERE pack_dictionary IS NOT NULL"))}
    for i, v, blob in bind.execute(sa.text(
            "SELECT id, ruleset_version, results FROM evaluations WHERE results IS NOT NULL")).all():
        blob = bytes(blob)
        if v in zdicts and blob[:1] == b"\x01":
            d = zlib.decompressobj(zdict=zdicts[v])
            plain = zlib.compress(d.decompress(blob[1:]) + d.flush())
            bind.execute(sa.text("UPDATE evaluations SET results = :b WHERE id = :i"), {"b": plain, "i": i})
    with op.batch_alter_table("rulesets") as t:
        t.drop_column("pack_dictionary")
