"""decisions stored once (rulesets, compact evaluations), the case process (states, reviews,
materials, commitments, objections, history), web sessions, background jobs

Converts the decisions of 0.1.0 (one row per benefit result, with the full explanation as a
compressed trace) into one evaluation per enterprise and window (outcomes and observed values
only) plus one row per grant decision (same ids, so the award ledger keeps pointing at them).
The 0.1.0 rule files are archived under the version its decisions recorded, so those
decisions can be rebuilt and replayed; a version that is not the shipped 0.1.0 is recorded as
not archived.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
import hashlib
import json
import re
import zlib
from collections import defaultdict
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HERE = Path(__file__).resolve().parent.parent
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)
CODE = {"pass": "p", "fail": "f", "unknown": "u"}


def _legacy_dicts() -> dict[int, bytes]:
    d = (HERE / "legacy" / "trace-dict-v1.bin").read_bytes()
    return {zlib.adler32(d): d}


def _decode(blob: bytes, dicts: dict[int, bytes]) -> dict:
    data = bytes(blob)
    if len(data) >= 6 and data[1] & 0x20:                # a preset dictionary, named by Adler-32
        d = zlib.decompressobj(15, zdict=dicts[int.from_bytes(data[2:6], "big")])
        raw = d.decompress(data) + d.flush()
    else:
        raw = zlib.decompress(data)
    return json.loads(raw)


def _legacy_version(files: dict[str, str], engine_version: str) -> str:
    """The version 0.1.0 computed for its rule files (benefits, windows, common only)."""
    h = hashlib.sha256()
    for rel in sorted(r for r in files if r.startswith("benefits/") or r in ("windows.yaml", "common.yaml")):
        h.update(f"rules/{rel}".encode() + b"\0")
        h.update(files[rel].encode("utf-8") + b"\0")
    h.update(engine_version.encode())
    return h.hexdigest()[:16] + "-" + engine_version


def _as_decided(files: dict[str, str]) -> dict[str, str]:
    """The 0.1.0 files as the current engine must read them to decide as 0.1.0 did: 0.1.0
    judged every benefit on the window's date, while the engine now judges a tax preference
    for its tax year unless its `tax` block says `period: date` (which 0.1.0 did not know)."""
    out = dict(files)
    for rel, text in files.items():
        if rel.startswith("benefits/") and re.search(r"^kind: tax\s*$", text, re.M):
            out[rel], n = re.subn(r"^tax:[ \t]*\n", "tax:\n  period: date\n", text, count=1, flags=re.M)
            if n != 1:
                raise RuntimeError(f"0.1.0 rule file {rel} has no tax block")
    return out


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"

    op.create_table("rulesets",
                    sa.Column("version", sa.String(128), primary_key=True),
                    sa.Column("engine_version", sa.String(128), nullable=False),
                    sa.Column("files", sa.LargeBinary(), nullable=True),
                    sa.Column("note", sa.String(500), nullable=True),
                    sa.Column("created_at", TZ, nullable=False))
    op.create_table("evaluations",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("window_id", sa.String(32), sa.ForeignKey("windows.id"), nullable=False),
                    sa.Column("uscc", sa.String(18), sa.ForeignKey("enterprises.uscc"), nullable=False),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=True),
                    sa.Column("ruleset_version", sa.String(128), sa.ForeignKey("rulesets.version"), nullable=False),
                    sa.Column("profile_hash", sa.String(64), nullable=False),
                    sa.Column("input_key", sa.String(64), nullable=False),
                    sa.Column("results", sa.LargeBinary(), nullable=True),
                    sa.Column("error", sa.String(500), nullable=True),
                    sa.Column("evaluated_at", TZ, nullable=False),
                    sa.UniqueConstraint("window_id", "uscc", name="uq_evaluation_window_enterprise"))
    op.create_index("ix_evaluations_application", "evaluations", ["application_id"])

    # --- windows and applications ------------------------------------------------------------
    with op.batch_alter_table("windows") as b:
        b.add_column(sa.Column("correction_workdays", sa.Integer(), nullable=False, server_default="10"))
        b.add_column(sa.Column("publicity_workdays", sa.Integer(), nullable=False, server_default="5"))
        b.add_column(sa.Column("publicity_from", sa.Date(), nullable=True))
        b.add_column(sa.Column("publicity_until", sa.Date(), nullable=True))
        b.add_column(sa.Column("published_at", TZ, nullable=True))
        b.add_column(sa.Column("close_reason", sa.String(500), nullable=True))
        b.drop_column("lease_owner")
        b.drop_column("lease_until")
    op.execute("UPDATE windows SET state = 'open' WHERE state = 'evaluated'")
    with op.batch_alter_table("applications") as b:
        b.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="received"))
        b.add_column(sa.Column("correction_due", sa.Date(), nullable=True))
        b.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("updated_at", TZ, nullable=True))
    op.execute("UPDATE applications SET updated_at = submitted_at")
    op.create_index("ix_applications_window_state", "applications", ["window_id", "state"])

    # --- decisions: full traces → compact evaluations + grant decision rows ----------------------
    legacy = json.loads((HERE / "legacy" / "rules-0.1.0.json").read_text(encoding="utf-8"))
    dicts = _legacy_dicts()
    old = sa.table("decisions", sa.column("id"), sa.column("window_id"), sa.column("uscc"),
                   sa.column("application_id"), sa.column("benefit_id"), sa.column("benefit_kind"),
                   sa.column("subject_id"), sa.column("status"), sa.column("amount_cny"),
                   sa.column("amount_provisional"), sa.column("trace"), sa.column("ruleset_version"),
                   sa.column("profile_hash"), sa.column("evaluated_at"))
    marks = dict(((w, u), k) for w, u, k in bind.execute(sa.text(
        "SELECT window_id, uscc, input_key FROM evaluation_marks")))
    groups: dict[tuple, list] = defaultdict(list)
    for row in bind.execute(sa.select(old).order_by(old.c.id)):
        groups[(row.window_id, row.uscc)].append(row)
    versions = {r.ruleset_version for rows in groups.values() for r in rows}
    legacy_version = _legacy_version(legacy["files"], legacy["engine_version"])
    rulesets = sa.table("rulesets", sa.column("version"), sa.column("engine_version"), sa.column("files"),
                        sa.column("note"), sa.column("created_at"))
    for v in sorted(versions):
        archived = v == legacy_version
        bind.execute(sa.insert(rulesets).values(
            version=v, engine_version=v.split("-", 1)[-1],
            files=zlib.compress(json.dumps(_as_decided(legacy["files"]), ensure_ascii=False,
                                           sort_keys=True).encode(), 9) if archived else None,
            note=legacy["note"] if archived else "升级前的规则版本，规则文件未存档，无法重建或重放",
            created_at=sa.func.current_timestamp()))
    evaluations = sa.table("evaluations", sa.column("window_id"), sa.column("uscc"), sa.column("application_id"),
                           sa.column("ruleset_version"), sa.column("profile_hash"), sa.column("input_key"),
                           sa.column("results"), sa.column("error"), sa.column("evaluated_at"))
    grants = []
    for (window_id, uscc), rows in groups.items():
        packed = []
        for r in rows:
            t = _decode(r.trace, dicts)
            crit = t.get("criteria") or []
            packed.append([r.benefit_id, r.subject_id or "", r.benefit_kind, r.status, t.get("amount_cny"),
                           bool(r.amount_provisional), "".join(CODE[c["outcome"]] for c in crit),
                           [c.get("observed") or {} for c in crit], t.get("missing_facts") or []])
            if r.benefit_kind == "grant":
                grants.append({"id": r.id, "window_id": window_id, "uscc": uscc, "application_id": r.application_id,
                               "benefit_id": r.benefit_id, "subject_id": r.subject_id or "", "status": r.status,
                               "amount_cny": r.amount_cny, "amount_provisional": bool(r.amount_provisional)})
        first = rows[0]
        bind.execute(sa.insert(evaluations).values(
            window_id=window_id, uscc=uscc, application_id=first.application_id,
            ruleset_version=first.ruleset_version, profile_hash=first.profile_hash,
            input_key=marks.get((window_id, uscc), ""), results=zlib.compress(orjson.dumps(packed), 1),
            error=None, evaluated_at=max(r.evaluated_at for r in rows)))

    # The ledger keeps decision ids but no foreign key to them (decisions are replaced when an
    # application is judged again). Rebuilt first: renaming `decisions` would rewrite the key.
    op.create_table("awards_v2",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("benefit_id", sa.String(64), nullable=False),
                    sa.Column("subject_id", sa.String(100), nullable=False),
                    sa.Column("window_id", sa.String(32), sa.ForeignKey("windows.id"), nullable=False),
                    sa.Column("uscc", sa.String(18), sa.ForeignKey("enterprises.uscc"), nullable=False),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=False),
                    sa.Column("decision_id", BigId, nullable=False),
                    sa.Column("amount_cny", sa.Numeric(14, 2), nullable=True),
                    sa.Column("amount_provisional", sa.Boolean(), nullable=False),
                    sa.Column("device_class", sa.String(4), nullable=True),
                    sa.Column("origin", sa.String(16), nullable=True),
                    sa.Column("awarded_at", TZ, nullable=False))
    cols = ("id, benefit_id, subject_id, window_id, uscc, application_id, decision_id, amount_cny, "
            "amount_provisional, device_class, origin, awarded_at")
    op.execute(f"INSERT INTO awards_v2 ({cols}) SELECT {cols} FROM awards")
    op.drop_table("awards")
    op.rename_table("awards_v2", "awards")
    op.create_index("uq_award_benefit_subject", "awards", ["benefit_id", "subject_id"], unique=True)
    op.create_index("ix_awards_window", "awards", ["window_id"])
    if pg:
        op.execute("SELECT setval(pg_get_serial_sequence('awards', 'id'), COALESCE(MAX(id), 1)) FROM awards")

    op.drop_table("decisions")        # its rows are in `groups` (read above)
    op.create_table("decisions",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("window_id", sa.String(32), nullable=False),
                    sa.Column("uscc", sa.String(18), nullable=False),
                    sa.Column("application_id", sa.String(32), nullable=True),
                    sa.Column("benefit_id", sa.String(64), nullable=False),
                    sa.Column("subject_id", sa.String(100), nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("amount_cny", sa.Numeric(14, 2), nullable=True),
                    sa.Column("amount_provisional", sa.Boolean(), nullable=False))
    new = sa.table("decisions", sa.column("id"), sa.column("window_id"), sa.column("uscc"),
                   sa.column("application_id"), sa.column("benefit_id"), sa.column("subject_id"),
                   sa.column("status"), sa.column("amount_cny"), sa.column("amount_provisional"))
    if grants:
        bind.execute(sa.insert(new), grants)
    op.drop_table("evaluation_marks")
    if pg:
        op.execute("SELECT setval(pg_get_serial_sequence('decisions', 'id'), COALESCE(MAX(id), 1)) FROM decisions")
    op.create_index("ix_decisions_window_status", "decisions", ["window_id", "status"])
    op.create_index("ix_decisions_application", "decisions", ["application_id"])
    op.create_index("ix_decisions_window_uscc", "decisions", ["window_id", "uscc"])

    op.execute("UPDATE applications SET state = 'judged' WHERE id IN (SELECT application_id FROM evaluations "
               "WHERE application_id IS NOT NULL)")
    op.execute("UPDATE applications SET state = 'awarded' WHERE id IN (SELECT application_id FROM awards)")
    op.execute("UPDATE applications SET state = 'refused' WHERE state = 'judged' AND window_id IN "
               "(SELECT id FROM windows WHERE state = 'closed') AND id IN (SELECT application_id FROM decisions "
               "WHERE application_id IS NOT NULL)")

    # --- the case process ----------------------------------------------------------------------
    op.create_table("reviews",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=False),
                    sa.Column("benefit_id", sa.String(64), nullable=False),
                    sa.Column("subject_id", sa.String(100), nullable=False),
                    sa.Column("engine_status", sa.String(16), nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("reason", sa.String(2000), nullable=True),
                    sa.Column("actor", sa.String(200), nullable=False),
                    sa.Column("at", TZ, nullable=False),
                    sa.Column("evaluation_id", BigId, nullable=False))
    op.create_index("ix_reviews_application", "reviews", ["application_id"])
    op.create_table("materials",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=False),
                    sa.Column("material_id", sa.String(64), nullable=False),
                    sa.Column("benefit_id", sa.String(64), nullable=False),
                    sa.Column("filename", sa.String(200), nullable=False),
                    sa.Column("sha256", sa.String(64), nullable=False),
                    sa.Column("size", sa.Integer(), nullable=False),
                    sa.Column("content_type", sa.String(64), nullable=False),
                    sa.Column("uploaded_at", TZ, nullable=False),
                    sa.Column("uploaded_by", sa.String(200), nullable=False),
                    sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("reason", sa.String(1000), nullable=True),
                    sa.Column("reviewed_by", sa.String(200), nullable=True),
                    sa.Column("reviewed_at", TZ, nullable=True))
    op.create_index("ix_materials_application", "materials", ["application_id"])
    op.create_table("commitments",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=False),
                    sa.Column("material_id", sa.String(64), nullable=False),
                    sa.Column("benefit_id", sa.String(64), nullable=False),
                    sa.Column("signer", sa.String(100), nullable=False),
                    sa.Column("signed_at", TZ, nullable=False),
                    sa.Column("due_on", sa.Date(), nullable=False),
                    sa.UniqueConstraint("application_id", "benefit_id", "material_id", name="uq_commitment_material"))
    op.create_table("objections",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("window_id", sa.String(32), sa.ForeignKey("windows.id"), nullable=False),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=False),
                    sa.Column("text", sa.String(2000), nullable=False),
                    sa.Column("raised_by", sa.String(200), nullable=False),
                    sa.Column("raised_at", TZ, nullable=False),
                    sa.Column("resolution", sa.String(2000), nullable=True),
                    sa.Column("resolved_by", sa.String(200), nullable=True),
                    sa.Column("resolved_at", TZ, nullable=True))
    op.create_table("application_events",
                    sa.Column("id", BigId, primary_key=True),
                    sa.Column("application_id", sa.String(32), sa.ForeignKey("applications.id"), nullable=False),
                    sa.Column("at", TZ, nullable=False),
                    sa.Column("actor", sa.String(200), nullable=False),
                    sa.Column("action", sa.String(64), nullable=False),
                    sa.Column("from_state", sa.String(16), nullable=True),
                    sa.Column("to_state", sa.String(16), nullable=True),
                    sa.Column("details", sa.JSON(), nullable=True))
    op.create_index("ix_application_events_application_id", "application_events", ["application_id"])
    # 0.1.0 kept no history per application: each starts with one entry naming the state it
    # was upgraded in, so every later change continues an unbroken history.
    op.execute("INSERT INTO application_events (application_id, at, actor, action, from_state, to_state, details) "
               "SELECT id, submitted_at, '系统升级', 'migrate', NULL, state, NULL FROM applications")
    op.create_table("web_sessions",
                    sa.Column("id_hash", sa.String(64), primary_key=True),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("subject", sa.String(64), nullable=False),
                    sa.Column("role", sa.String(16), nullable=False),
                    sa.Column("created_at", TZ, nullable=False),
                    sa.Column("expires_at", TZ, nullable=False),
                    sa.Column("ended_at", TZ, nullable=True))

    # --- background jobs ------------------------------------------------------------------------
    op.create_table("jobs",
                    sa.Column("id", sa.String(32), primary_key=True),
                    sa.Column("kind", sa.String(32), nullable=False),
                    sa.Column("args", sa.JSON(), nullable=False),
                    sa.Column("lock_key", sa.String(100), nullable=True),
                    sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("done", sa.Integer(), nullable=False),
                    sa.Column("total", sa.Integer(), nullable=False),
                    sa.Column("message", sa.String(500), nullable=True),
                    sa.Column("result", sa.JSON(), nullable=True),
                    sa.Column("error", sa.Text(), nullable=True),
                    sa.Column("attempts", sa.Integer(), nullable=False),
                    sa.Column("run_token", sa.String(32), nullable=True),
                    sa.Column("worker", sa.String(200), nullable=True),
                    sa.Column("heartbeat_at", TZ, nullable=True),
                    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
                    sa.Column("actor", sa.String(200), nullable=False),
                    sa.Column("created_at", TZ, nullable=False),
                    sa.Column("started_at", TZ, nullable=True),
                    sa.Column("finished_at", TZ, nullable=True))
    op.create_index("ix_jobs_lock", "jobs", ["lock_key", "state"])
    op.create_table("job_files",
                    sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
                    sa.Column("name", sa.String(200), primary_key=True),
                    sa.Column("media_type", sa.String(100), nullable=False),
                    sa.Column("path", sa.String(500), nullable=False),
                    sa.Column("size", BigId, nullable=False))
    if pg:
        # procrastinate's schema (3.10.0), frozen here so a new and an upgraded database agree;
        # run on the driver connection: psycopg would read the % of its plpgsql as placeholders
        sql = (HERE / "sql" / "procrastinate-3.10.0.sql").read_text(encoding="utf-8")
        bind.connection.driver_connection.execute(sql)


def downgrade() -> None:
    raise NotImplementedError("0002 converts decisions into a new form; restore a backup to go back to 0001")
