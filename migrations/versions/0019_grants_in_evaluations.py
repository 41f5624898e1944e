"""an evaluation holds its grant decisions

A grant decision (status and amount per benefit and subject) had a row of its own in
`decisions`, with the window, enterprise and application repeated and an index of its own:
272 bytes an application on PostgreSQL. The evaluation it belongs to (one per window and
enterprise) now holds them in a column, `grants`: a JSON array of [benefit, subject, status
letter, amount, 1 if provisional] (store.decisions.pack_grants), about 40 bytes an
application. The award ledger names the evaluation whose decision it paid (`evaluation_id`)
instead of the decision row. Decisions are converted in the order they were written (the
engine's); a downgrade writes the rows again, with new ids, and points the ledger at them.
An evaluation's own `evaluated_at` is dropped (8 bytes; nothing read it: the application's
history and the window say when it was judged); a downgrade gives each its window's.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""
from decimal import Decimal

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# as store.decisions.GRANT_STATUS and pack_grants, frozen here
CODE = {"eligible": "e", "ineligible": "i", "needs_info": "n", "not_in_force": "o"}
STATUS = {v: k for k, v in CODE.items()}
CHUNK = 2000


def _plain(v):
    if v is None:
        return None
    f = float(v)
    return int(f) if f.is_integer() else f


def _big():
    return sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("evaluations") as t:
        t.add_column(sa.Column("grants", sa.LargeBinary, nullable=True))
        t.drop_column("evaluated_at")
    with op.batch_alter_table("awards") as t:
        t.add_column(sa.Column("evaluation_id", _big(), nullable=True))
    meta = sa.MetaData()
    ev = sa.Table("evaluations", meta, autoload_with=conn)
    dec = sa.Table("decisions", meta, autoload_with=conn)
    aw = sa.Table("awards", meta, autoload_with=conn)
    # every evaluation that decided holds its list, empty when it made no grant decision
    conn.execute(ev.update().where(ev.c.results.is_not(None)).values(grants=b"[]"))
    ids = {(w, u): i for i, w, u in conn.execute(sa.select(ev.c.id, ev.c.window_id, ev.c.uscc))}
    grants: dict[int, list] = {}
    for w, u, b, sub, st, amount, prov in conn.execute(
            sa.select(dec.c.window_id, dec.c.uscc, dec.c.benefit_id, dec.c.subject_id, dec.c.status,
                      dec.c.amount_cny, dec.c.amount_provisional).order_by(dec.c.id)):
        if (w, u) in ids:
            grants.setdefault(ids[(w, u)], []).append([b, sub or "", CODE[st], _plain(amount), 1 if prov else 0])
    todo = [{"i": i, "g": orjson.dumps(rows)} for i, rows in grants.items()]
    stmt = ev.update().where(ev.c.id == sa.bindparam("i")).values(grants=sa.bindparam("g"))
    for k in range(0, len(todo), CHUNK):
        conn.execute(stmt, todo[k:k + CHUNK])
    # the ledger: the evaluation of the same window and enterprise (one each) made the decision
    paid = [{"a": a, "e": ids[(w, u)]} for a, w, u in conn.execute(sa.select(aw.c.id, aw.c.window_id, aw.c.uscc))
            if (w, u) in ids]
    stmt = aw.update().where(aw.c.id == sa.bindparam("a")).values(evaluation_id=sa.bindparam("e"))
    for k in range(0, len(paid), CHUNK):
        conn.execute(stmt, paid[k:k + CHUNK])
    conn.execute(aw.update().where(aw.c.evaluation_id.is_(None)).values(evaluation_id=aw.c.decision_id))
    with op.batch_alter_table("awards") as t:
        t.alter_column("evaluation_id", existing_type=_big(), nullable=False)
        t.drop_column("decision_id")
    op.drop_index("ix_decisions_window_uscc_status", table_name="decisions")
    op.drop_table("decisions")


def downgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        "decisions",
        sa.Column("id", _big(), primary_key=True, autoincrement=True),
        sa.Column("window_id", sa.String(32), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("application_id", sa.String(32), nullable=True),
        sa.Column("benefit_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_cny", sa.Numeric(14, 2), nullable=True),
        sa.Column("amount_provisional", sa.Boolean, nullable=False),
    )
    op.create_index("ix_decisions_window_uscc_status", "decisions", ["window_id", "uscc", "status"])
    with op.batch_alter_table("awards") as t:
        t.add_column(sa.Column("decision_id", _big(), nullable=True))
    meta = sa.MetaData()
    ev = sa.Table("evaluations", meta, autoload_with=conn)
    dec = sa.Table("decisions", meta, autoload_with=conn)
    aw = sa.Table("awards", meta, autoload_with=conn)
    rows = []
    for w, u, a, packed in conn.execute(sa.select(ev.c.window_id, ev.c.uscc, ev.c.application_id, ev.c.grants)
                                        .where(ev.c.grants.is_not(None)).order_by(ev.c.id)):
        for b, sub, st, amount, prov in orjson.loads(packed):
            rows.append(dict(window_id=w, uscc=u, application_id=a, benefit_id=b, subject_id=sub, status=STATUS[st],
                             amount_cny=None if amount is None else Decimal(str(amount)),
                             amount_provisional=bool(prov)))
    for k in range(0, len(rows), CHUNK):
        conn.execute(dec.insert(), rows[k:k + CHUNK])
    ids = {(w, u, b, sub): i for i, w, u, b, sub in conn.execute(
        sa.select(dec.c.id, dec.c.window_id, dec.c.uscc, dec.c.benefit_id, dec.c.subject_id))}
    paid = []
    for a, w, u, b, sub, e in conn.execute(sa.select(aw.c.id, aw.c.window_id, aw.c.uscc, aw.c.benefit_id,
                                                     aw.c.subject_id, aw.c.evaluation_id)):
        # an enterprise-wide grant's ledger subject is the USCC; its decision's subject is ""
        d = ids.get((w, u, b, sub)) or ids.get((w, u, b, ""))
        paid.append({"a": a, "d": e if d is None else d})
    stmt = aw.update().where(aw.c.id == sa.bindparam("a")).values(decision_id=sa.bindparam("d"))
    for k in range(0, len(paid), CHUNK):
        conn.execute(stmt, paid[k:k + CHUNK])
    with op.batch_alter_table("awards") as t:
        t.alter_column("decision_id", existing_type=_big(), nullable=False)
        t.drop_column("evaluation_id")
    moment = sa.BigInteger() if conn.dialect.name == "sqlite" else sa.DateTime(timezone=True)
    with op.batch_alter_table("evaluations") as t:
        t.drop_column("grants")
        t.add_column(sa.Column("evaluated_at", moment, nullable=True))
    ev = sa.Table("evaluations", sa.MetaData(), autoload_with=conn)
    win = sa.Table("windows", sa.MetaData(), autoload_with=conn)
    of_window = sa.select(sa.func.coalesce(win.c.evaluated_at, win.c.created_at)).where(win.c.id == ev.c.window_id)
    conn.execute(ev.update().values(evaluated_at=of_window.scalar_subquery()))
    with op.batch_alter_table("evaluations") as t:
        t.alter_column("evaluated_at", existing_type=moment, nullable=False)
