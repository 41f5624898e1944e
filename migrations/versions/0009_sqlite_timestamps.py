"""SQLite keeps moments as integers: microseconds since 1970

SQLAlchemy wrote every moment on SQLite as 26 characters of text ("2026-11-30 05:09:35.802063");
an application has about ten of them (its own, its enterprise's, its profile's, its
evaluation's, its history's). As an integer a moment takes 8 bytes and reads back the same
(store.models.Timestamp). Every DATETIME column is converted; PostgreSQL's timestamptz is
already 8 bytes and is not touched.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TO_INTEGER = ("CAST(strftime('%s', substr({c}, 1, 19)) AS INTEGER) * 1000000"
              " + CAST(substr(substr({c}, 21) || '000000', 1, 6) AS INTEGER)")
TO_TEXT = ("strftime('%Y-%m-%d %H:%M:%S', {c} / 1000000, 'unixepoch') || '.' || printf('%06d', {c} % 1000000)")


def _moments(bind) -> list[tuple[str, str]]:
    insp = sa.inspect(bind)
    return [(t, c["name"]) for t in insp.get_table_names() if t != "alembic_version"
            for c in insp.get_columns(t) if isinstance(c["type"], sa.DateTime)]


def _convert(expression: str, stored_as: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table, column in _moments(bind):
        c = f'"{column}"'
        op.execute(f'UPDATE "{table}" SET {c} = {expression.format(c=c)} WHERE typeof({c}) = \'{stored_as}\'')


def upgrade() -> None:
    _convert(TO_INTEGER, "text")


def downgrade() -> None:
    _convert(TO_TEXT, "integer")
