"""rulesets keep the key sets of what their criteria read

A decision record then holds each criterion's observed values without their keys
(store.decisions.Packing): about 100 bytes less an application. Rulesets archived before
have none and their records keep their keys; records already stored are not touched.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""
import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rulesets", sa.Column("pack_keys", sa.JSON))


def _keyed(blob: bytes, zdict: bytes, keys: list) -> bytes:
    """A positional record (0x02) written back with its keys (0x01), with the same dictionary."""
    d = zlib.decompressobj(zdict=zdict)
    rows = json.loads(d.decompress(blob[1:]) + d.flush())
    for row in rows:
        row[7] = [dict(zip(keys[e[0]], e[1:])) for e in row[7]]
    co = zlib.compressobj(6, zlib.DEFLATED, 15, zdict=zdict)
    return b"\x01" + co.compress(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()) + co.flush()


def downgrade() -> None:
    # Records written with key sets cannot be read without them: they get their keys back first.
    bind = op.get_bind()
    packings = {}
    for version, zdict, keys in bind.execute(sa.text(
            "SELECT version, pack_dictionary, pack_keys FROM rulesets WHERE pack_keys IS NOT NULL")):
        packings[version] = (bytes(zdict), json.loads(keys) if isinstance(keys, str) else keys)
    for table, version, column in (("evaluations", "ruleset_version", "results"),
                                   ("notices", "basis_ruleset_version", "basis_results")):
        for i, v, blob in bind.execute(sa.text(f"SELECT id, {version}, {column} FROM {table} "
                                               f"WHERE {column} IS NOT NULL")).all():
            if v in packings and bytes(blob)[:1] == b"\x02":
                bind.execute(sa.text(f"UPDATE {table} SET {column} = :b WHERE id = :i"),
                             {"b": _keyed(bytes(blob), *packings[v]), "i": i})
    op.drop_column("rulesets", "pack_keys")
