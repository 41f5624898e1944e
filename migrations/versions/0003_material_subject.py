"""materials and commitments belong to the certificate (subject) they were asked for

A file uploaded, or a material promised, for one certificate used to count for every
certificate of the application's benefit. Both now carry the subject. Existing rows get it
where the application had exactly one subject of that benefit (claimed, or all when it claimed
none); the others keep "" and still count for every subject, as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _backfill(table: str) -> None:
    bind = op.get_bind()
    rows = sa.table(table, sa.column("id"), sa.column("application_id"), sa.column("benefit_id"),
                    sa.column("subject_id"))
    apps = sa.table("applications", sa.column("id"), sa.column("claims", sa.JSON))
    decisions = sa.table("decisions", sa.column("application_id"), sa.column("benefit_id"), sa.column("subject_id"))
    todo = bind.execute(sa.select(rows.c.id, rows.c.application_id, rows.c.benefit_id)).all()
    if not todo:
        return
    ids = sorted({a for _, a, _ in todo})
    claims = dict(bind.execute(sa.select(apps.c.id, apps.c.claims).where(apps.c.id.in_(ids))).all())
    subjects: dict[tuple, set] = {}
    for app, benefit, sub in bind.execute(sa.select(decisions.c.application_id, decisions.c.benefit_id,
                                                    decisions.c.subject_id).where(decisions.c.application_id.in_(ids))):
        claimed = claims.get(app)
        if sub == "" or claimed is None or sub in claimed:
            subjects.setdefault((app, benefit), set()).add(sub)
    for pk, app, benefit in todo:
        only = subjects.get((app, benefit), set())
        if len(only) == 1:
            bind.execute(rows.update().where(rows.c.id == pk).values(subject_id=next(iter(only))))


def upgrade() -> None:
    with op.batch_alter_table("materials") as b:
        b.add_column(sa.Column("subject_id", sa.String(100), nullable=False, server_default=""))
    with op.batch_alter_table("commitments") as b:
        b.add_column(sa.Column("subject_id", sa.String(100), nullable=False, server_default=""))
    _backfill("materials")
    _backfill("commitments")
    with op.batch_alter_table("commitments") as b:
        b.drop_constraint("uq_commitment_material", type_="unique")
        b.create_unique_constraint("uq_commitment_material",
                                   ["application_id", "benefit_id", "subject_id", "material_id"])


def downgrade() -> None:
    # Fails (unique key) when one material was promised for two certificates: the old schema
    # cannot hold that.
    with op.batch_alter_table("commitments") as b:
        b.drop_constraint("uq_commitment_material", type_="unique")
        b.create_unique_constraint("uq_commitment_material", ["application_id", "benefit_id", "material_id"])
        b.drop_column("subject_id")
    with op.batch_alter_table("materials") as b:
        b.drop_column("subject_id")
