"""tokens expire

A token is made valid for a number of days (365 unless said otherwise) and stops opening the
API and the console when they have passed. Tokens made before keep working until revoked; the
token list says so.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a moment as every other since 0009: microseconds since 1970 UTC on SQLite, timestamptz elsewhere
    moment = sa.BigInteger() if op.get_bind().dialect.name == "sqlite" else sa.DateTime(timezone=True)
    with op.batch_alter_table("api_tokens") as t:
        t.add_column(sa.Column("expires_at", moment, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as t:
        t.drop_column("expires_at")
