"""decisions keep one index: by window, enterprise and verdict

The index by window and verdict and the index by window and enterprise become one index by
window, enterprise and verdict. It finds an enterprise's decisions as before, and a window's
counts and filters by verdict read its entries without the table. 24 bytes less an
application on SQLite.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_window_uscc_status", "decisions", ["window_id", "uscc", "status"])
    op.drop_index("ix_decisions_window_uscc", table_name="decisions")
    op.drop_index("ix_decisions_window_status", table_name="decisions")


def downgrade() -> None:
    op.create_index("ix_decisions_window_status", "decisions", ["window_id", "status"])
    op.create_index("ix_decisions_window_uscc", "decisions", ["window_id", "uscc"])
    op.drop_index("ix_decisions_window_uscc_status", table_name="decisions")
