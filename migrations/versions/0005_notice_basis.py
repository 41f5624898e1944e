"""one-time notices keep the evaluation they were issued on

A one-time notice re-rendered after the 补正 showed the application judged again under the
same number and date. The notice now keeps the evaluation it was issued on (its record, rules
version and profile) and always reads as issued. Notices issued before this revision have no
basis and are rendered from the current evaluation, as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("notices") as t:
        t.add_column(sa.Column("basis_evaluation_id", BigId, nullable=True))
        t.add_column(sa.Column("basis_ruleset_version", sa.String(128), nullable=True))
        t.add_column(sa.Column("basis_profile_hash", sa.String(64), nullable=True))
        t.add_column(sa.Column("basis_results", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as t:
        for c in ("basis_results", "basis_profile_hash", "basis_ruleset_version", "basis_evaluation_id"):
            t.drop_column(c)
