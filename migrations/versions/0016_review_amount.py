"""a review that makes a grant eligible can set its amount

复核 may make a grant eligible whose amount the rules could not compute (the decision was
不符合条件, or a fact the amount needs was missing). The reviewer then states the amount, and
the award list, the ledger and the 兑现通知书 use it. Existing reviews have none.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as t:
        t.add_column(sa.Column("amount_cny", sa.Numeric(14, 2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as t:
        t.drop_column("amount_cny")
