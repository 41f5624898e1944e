"""applications change state in place: no index on state, half of each page free on PostgreSQL

An application changes state three times in a window. With `state` in an index, PostgreSQL
wrote every change as a new row version with new index entries; a 100,000-application window
ended with its applications table and indexes at three times their size. Without the index,
and with a fill factor of 50 (room in each page for the next version), the change is a HOT
update: same page, no index entries. The staff list filters a window's applications by state
without the index (tens of milliseconds for 100,000). The fill factor applies to pages written
from now on; SQLite updates rows in place and only loses the index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_applications_window_state", table_name="applications")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE applications SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE applications RESET (fillfactor)")
    op.create_index("ix_applications_window_state", "applications", ["window_id", "state"])
