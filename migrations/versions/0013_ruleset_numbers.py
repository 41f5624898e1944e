"""evaluations refer to their ruleset by a number, not by its version text

The version (`269cf2a3dc38dbda-yagu0.1.0+c1+durable_rules2.0.28`) took 49 bytes in every
evaluation. Each ruleset gets a number (1, 2, … in the order archived, unique), and an
evaluation keeps that number; the code reads the version through it
(store.models.Evaluation.ruleset_version). A downgrade puts the versions back.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _number_rulesets() -> None:
    op.add_column("rulesets", sa.Column("seq", sa.Integer))
    op.execute("""
        UPDATE rulesets SET seq = (
            SELECT count(*) FROM rulesets r
            WHERE r.created_at < rulesets.created_at
               OR (r.created_at = rulesets.created_at AND r.version <= rulesets.version))""")
    op.create_index("uq_ruleset_seq", "rulesets", ["seq"], unique=True)


def upgrade() -> None:
    _number_rulesets()
    op.add_column("evaluations", sa.Column("ruleset_seq", sa.Integer))
    op.execute("UPDATE evaluations SET ruleset_seq = "
               "(SELECT seq FROM rulesets WHERE rulesets.version = evaluations.ruleset_version)")
    if op.get_bind().dialect.name == "sqlite":     # its foreign keys change by a copy of the table
        with op.batch_alter_table("evaluations", recreate="always") as b:
            b.drop_column("ruleset_version")
            b.create_foreign_key("fk_evaluations_ruleset_seq", "rulesets", ["ruleset_seq"], ["seq"])
    else:
        op.drop_column("evaluations", "ruleset_version")          # its foreign key goes with it
        op.create_foreign_key("fk_evaluations_ruleset_seq", "evaluations", "rulesets", ["ruleset_seq"], ["seq"])


def downgrade() -> None:
    op.add_column("evaluations", sa.Column("ruleset_version", sa.String(128)))
    op.execute("UPDATE evaluations SET ruleset_version = "
               "(SELECT version FROM rulesets WHERE rulesets.seq = evaluations.ruleset_seq)")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("evaluations", recreate="always") as b:
            b.drop_constraint("fk_evaluations_ruleset_seq", type_="foreignkey")
            b.drop_column("ruleset_seq")
            b.create_foreign_key("evaluations_ruleset_version_fkey", "rulesets", ["ruleset_version"], ["version"])
    else:
        op.drop_column("evaluations", "ruleset_seq")
        op.create_foreign_key("evaluations_ruleset_version_fkey", "evaluations", "rulesets", ["ruleset_version"],
                              ["version"])
    op.drop_index("uq_ruleset_seq", table_name="rulesets")
    op.drop_column("rulesets", "seq")
