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
    with op.batch_alter_table("rulesets") as t:
        t.drop_column("pack_dictionary")
