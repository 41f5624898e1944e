"""decisions and evaluations lose their index by application

Nothing looks an evaluation up by its application, and the staff list finds a page's grant
decisions by window and enterprise (an index decisions already have). Each index cost every
evaluation of a window an entry: 60 bytes an application on PostgreSQL, 34 on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_evaluations_application", table_name="evaluations")
    op.drop_index("ix_decisions_application", table_name="decisions")


def downgrade() -> None:
    op.create_index("ix_decisions_application", "decisions", ["application_id"])
    op.create_index("ix_evaluations_application", "evaluations", ["application_id"])
