"""Upgrading a database made by release 0.1.0 (tests/fixtures/release-0.1.0.sql, a SQLite dump):
the Alembic migration converts its decisions, which then replay identically and read back
exactly as 0.1.0 decided them; the ledger keeps pointing at them and pays nothing twice.

On PostgreSQL the dump (SQLite SQL) cannot be loaded as is: the 0.1.0 schema is created by the
0.1.0 migration (revision 0001, which is what 0.1.0 ran on PostgreSQL) and the dump's rows are
copied into it, typed by the PostgreSQL columns, with the id sequences set as 0.1.0 left them.
"""
from __future__ import annotations

import re

import importlib.util
import json
import secrets
import sqlite3
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from alembic import command

from engine.profile import canonical_json
from engine.vocabulary import PROVISIONAL_VALUE
from store import audit, awards, decisions as D, profiles, replay, rulesets
from store.bulk import among
from store import windows as W
from store.db import Database, alembic_config
from store.errors import Conflict
from store.models import (Application, ApplicationEvent, Award, EventBatch, Evaluation,
                          ProfileSnapshot, Ruleset, digest)
from store_fixtures import (  # noqa: F401  (fixtures)
    PG_URL, assert_history_complete, db, evaluate, pg_schema_url, require_pg, store_url,
)

HERE = Path(__file__).resolve().parent
DUMP = HERE / "fixtures" / "release-0.1.0.sql"
MIGRATION = HERE.parent / "migrations" / "versions" / "0002_case_process.py"
# Tables of 0.1.0 in the order their foreign keys need.
TABLES = ["api_tokens", "audit_log", "enterprises", "windows", "evaluation_marks", "profile_snapshots",
          "applications", "decisions", "notices", "awards"]


def _legacy_codec():
    spec = importlib.util.spec_from_file_location("migration_0002", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dicts = mod._legacy_dicts()
    return lambda blob: mod._decode(blob, dicts)


def _load_dump(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript(DUMP.read_text(encoding="utf-8"))
    con.close()


def _old_decisions(path: Path) -> list[dict]:
    """Every decision as 0.1.0 stored it, with its decoded explanation."""
    decode = _legacy_codec()
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM decisions ORDER BY id")]
    con.close()
    for r in rows:
        r["trace"] = decode(r["trace"])
    return rows


def _copy_to_postgres(sqlite_path: Path, url: str) -> None:
    """The 0.1.0 database on PostgreSQL: revision 0001's schema, the dump's rows."""
    pg = Database(url)
    pg.upgrade("0001")
    meta = sa.MetaData()
    meta.reflect(pg.engine, only=TABLES)
    src = sqlite3.connect(sqlite_path)
    src.row_factory = sqlite3.Row

    def typed(col: sa.Column, v):
        if v is None:
            return None
        t = col.type
        if isinstance(t, sa.DateTime):
            return datetime.fromisoformat(v).replace(tzinfo=timezone.utc)
        if isinstance(t, sa.Date):
            return date.fromisoformat(v)
        if isinstance(t, sa.Boolean):
            return bool(v)
        if isinstance(t, sa.JSON):
            return json.loads(v)
        if isinstance(t, sa.Numeric) and not isinstance(t, (sa.Integer, sa.Float)):
            return Decimal(str(v))
        return v

    with pg.engine.begin() as c:
        for name in TABLES:
            table = meta.tables[name]
            rows = [{k: typed(table.c[k], r[k]) for k in r.keys()} for r in src.execute(f'SELECT * FROM "{name}"')]
            if rows:
                c.execute(table.insert(), rows)
            if "id" in table.c and isinstance(table.c.id.type, sa.Integer):
                c.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                  f"COALESCE((SELECT MAX(id) FROM \"{name}\"), 1))"))
    src.close()
    pg.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def legacy(request, tmp_path):
    """(the database as 0.1.0 left it, not upgraded, the 0.1.0 decisions)."""
    dump = tmp_path / "release-0.1.0.db"
    _load_dump(dump)
    old = _old_decisions(dump)
    if request.param == "sqlite":
        db = Database(f"sqlite:///{dump}")
        yield db, old
        db.dispose()
        return
    require_pg()
    schema = "yagu_m_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = pg_schema_url(schema)
        _copy_to_postgres(dump, url)
        db = Database(url)
        yield db, old
        db.dispose()
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def upgraded(legacy):
    """(the upgraded database, the 0.1.0 decisions)."""
    db, old = legacy
    db.upgrade()
    return db, old


def _json_profiles(db: Database) -> dict[str, dict]:
    """The snapshots of a database before revision 0006: JSON, as stored."""
    with db.engine.connect() as c:
        return {h: json.loads(p) for h, p in c.execute(sa.text(
            "SELECT hash, CAST(profile AS TEXT) FROM profile_snapshots"))}


def test_snapshots_are_packed_by_the_upgrade_and_unpacked_by_a_downgrade(legacy):
    db, _ = legacy
    db.upgrade("0005")
    before = _json_profiles(db)
    assert len(before) >= 5
    db.upgrade()
    with db.read_session() as s:
        packed = dict(s.execute(sa.select(ProfileSnapshot.hash, ProfileSnapshot.packed)).all())
        # keyed by the first 16 bytes of their digest from 0014 on
        assert {h: profiles.load(s, b) for h, b in packed.items()} == {h[:32]: p for h, p in before.items()}
    assert all(len(packed[h[:32]]) < len(json.dumps(p, ensure_ascii=False).encode()) / 2 for h, p in before.items())
    command.downgrade(alembic_config(db), "0005")
    assert _json_profiles(db) == before
    db.upgrade()                    # and up again: the same dictionary, the same packing
    with db.read_session() as s:
        assert dict(s.execute(sa.select(ProfileSnapshot.hash, ProfileSnapshot.packed)).all()) == packed


def _cn_dates(text: str) -> str:
    return re.sub(r"(\d{4})-(\d{2})-(\d{2})", lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)


def test_upgraded_decisions_replay_identically_and_read_back_as_decided(upgraded):
    db, old = upgraded
    by_window: dict[str, list[dict]] = {}
    for r in old:
        by_window.setdefault(r["window_id"], []).append(r)
    for window_id, rows in by_window.items():
        rep = replay.replay(db, window_id)
        assert rep.not_archived == 0 and rep.differences == []
        assert rep.decisions == rep.identical == len(rows)
        assert rep.evaluations == len({r["uscc"] for r in rows})
    # Each converted decision, rebuilt with the archived 0.1.0 rules, says what 0.1.0 said.
    with db.read_session() as s:
        evals = {(e.window_id, e.uscc): e for e in s.execute(sa.select(Evaluation)).scalars()}
        stored = {p.hash: profiles.load(s, p.packed) for p in s.execute(sa.select(ProfileSnapshot)).scalars()}
        windows = {w: W.get(s, w) for w in by_window}
    rebuilt = {}
    for (window_id, uscc), e in evals.items():
        ev = rulesets.evaluator_for(db, e.ruleset_version)
        w = windows[window_id]
        resp = D.explain(ev, stored[e.profile_hash], w.as_of, W.context(w), rulesets.decisions_of(db, e.ruleset_version, e.results))
        for r in resp.results:
            rebuilt[(window_id, uscc, r.benefit_id, r.subject.id if r.subject else "")] = r
    assert len(rebuilt) == len(old)
    for o in old:
        t = o["trace"]
        r = rebuilt[(o["window_id"], o["uscc"], o["benefit_id"], o["subject_id"] or "")]
        assert (r.status, r.amount_cny, r.amount_provisional) == (o["status"], t["amount_cny"], t["amount_provisional"])
        assert [(c.outcome, c.observed) for c in r.criteria] == [(c["outcome"], c["observed"]) for c in t["criteria"]]
        # Criteria of the rule files read as they did; "has no certificate at all" is worded
        # by the engine's code, not the rules, and reads as today's engine words it.
        ev = rulesets.evaluator_for(db, evals[(o["window_id"], o["uscc"])].ruleset_version)
        declared = {c.id for c in ev.book.benefits[r.benefit_id].criteria}
        # (dates in texts are now written in Chinese: 2025-10-01 → 2025年10月1日; a value the
        # archived rules mark provisional is now followed by （暂定值）: the engine's words)
        assert [(c.id, c.text.replace(PROVISIONAL_VALUE, "")) for c in r.criteria if c.id in declared] == \
               [(c["id"], _cn_dates(c["text"])) for c in t["criteria"] if c["id"] in declared]
        assert r.missing_facts == t["missing_facts"] and r.missing_materials == t["missing_materials"]


def test_upgraded_ledger_and_states_hold_and_nothing_is_paid_twice(upgraded):
    db, old = upgraded
    with db.read_session() as s:
        ledger = list(s.execute(sa.select(Award)).scalars())
        evals = {e.id: e for e in s.execute(sa.select(Evaluation)).scalars()}
        states = dict(s.execute(sa.select(Application.id, Application.state)).all())
    assert len(ledger) == 5
    grants = [g for e in evals.values() for g in D.unpack_grants(e.grants)]
    for a in ledger:            # still pointing at the evaluation whose decision it paid
        e = evals[a.evaluation_id]
        assert (e.window_id, e.uscc, e.application_id) == (a.window_id, a.uscc, a.application_id)
        assert [st for b, sub, st, *_ in D.unpack_grants(e.grants)
                if (b, sub) == (a.benefit_id, a.subject_id)] == ["eligible"]
        assert a.subject_id in {r["subject_id"] for r in old if r["uscc"] == a.uscc}
    assert {g[0] for g in grants} == {"device-registration-grant"}   # tax: not a park decision
    assert (W.get_window(db, "2026-H1").state, W.get_window(db, "2026-H2").state) == ("closed", "open")
    assert {states[a.application_id] for a in ledger} == {"awarded"}
    for window_id in ("2026-H1", "2026-H2"):
        assert_history_complete(db, window_id)
    # H2 was judged under 0.1.0's rules: it cannot close on them, only after judging again.
    with pytest.raises(Conflict, match="未按现行规则"):
        awards.publish(db, "2026-H2", today=date(2026, 10, 9))
    evaluate(db, "2026-H2")
    awards.publish(db, "2026-H2", today=date(2026, 10, 9))
    res = awards.close_window(db, "2026-H2", reason="升级后关闭", today=date(2026, 10, 9))
    paid = {(a.benefit_id, a.subject_id) for a in ledger}
    assert not paid & {(a.benefit_id, a.subject_id) for a in res.awards}
    with db.read_session() as s:
        keys = s.execute(sa.select(Award.benefit_id, Award.subject_id)).all()
    assert len(keys) == len(set(keys)) == 5 + len(res.awards)


def test_materials_of_a_02_database_get_their_certificate_where_it_is_unambiguous(db):
    """Revision 0003 gives each stored material and commitment the certificate it was asked
    for where the application had only one (of those it claimed); the others keep "" and still
    count for every certificate, as they did."""
    from alembic import command

    from store import cases
    from store.db import alembic_config
    from store.models import Commitment, Material
    from store_fixtures import AFTER_H1, cert_no, grant_profile, open_h1, submit_all

    grant, change = "device-registration-grant", "registrant_change_document"
    profiles = [grant_profile(1, origin=None), grant_profile(2, origin=None, certs=2),
                grant_profile(3, origin=None, certs=2)]
    for p in profiles:
        del p["on_serious_dishonest_list"]              # unknown: its credit report may be promised
    open_h1(db)
    x, y = (s.application_id for s in submit_all(db, "2026-H1", profiles[:2]))
    (z,) = (s.application_id for s in submit_all(db, "2026-H1", profiles[2:], claims=[cert_no(3, 0)]))
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    # promises as a 0002 database held them, without a certificate (the credit report is asked
    # once per enterprise since, so they are written here as they were then)
    with db.session() as s:
        for app, signer in ((x, "张三"), (y, "李四")):
            s.add(Commitment(application_id=app, benefit_id=grant, subject_id="", material_id="credit_report",
                             signer=signer, due_on=AFTER_H1 + timedelta(days=30)))
    for app, cert in ((x, cert_no(1, 0)), (y, cert_no(2, 1)), (z, cert_no(3, 0))):
        cases.submit_correction(db, app, {}, [(grant, cert, change, "变更文件.pdf", b"%PDF-1.4\n%%EOF\n")],
                                actor="企业", today=AFTER_H1)
    command.downgrade(alembic_config(db), "0002")
    command.upgrade(alembic_config(db), "head")
    with db.read_session() as s:
        mats = dict(s.execute(sa.select(Material.application_id, Material.subject_id)).all())
        promised = dict(s.execute(sa.select(Commitment.application_id, Commitment.subject_id)).all())
    assert mats == {x: cert_no(1, 0), y: "", z: cert_no(3, 0)}
    assert promised == {x: cert_no(1, 0), y: ""}
    grants = cases.detail(db, y, today=AFTER_H1).grants
    assert [len(g.materials) for g in grants] == [1, 1]        # unknown certificate: shown under each


def test_upgraded_applications_change_state_in_place(upgraded):
    """No index holds an application's state, and PostgreSQL leaves room in each page, so that
    the three state changes of a window are HOT updates (migration 0007)."""
    db, _ = upgraded
    insp = sa.inspect(db.engine)
    indexed = {c for ix in [*insp.get_indexes("applications"), *insp.get_unique_constraints("applications")]
               for c in ix["column_names"]}
    assert "state" not in indexed and "window_id" in indexed      # (window, enterprise) stays
    if db.is_postgres:
        with db.engine.connect() as c:
            assert c.scalar(sa.text("SELECT reloptions FROM pg_class WHERE oid = 'applications'::regclass")) \
                == ["fillfactor=50"]


def test_sqlite_moments_become_integers_that_read_back_the_same(tmp_path):
    dump = tmp_path / "release-0.1.0.db"
    _load_dump(dump)
    db = Database(f"sqlite:///{dump}")
    db.upgrade("0008")

    def moments(kind: str) -> dict:
        con = sqlite3.connect(dump)
        out = {(t, c, rowid): v for t, c in [("applications", "submitted_at"), ("applications", "updated_at"),
                                             ("application_events", "at"), ("audit_log", "at"), ("awards", "awarded_at")]
               for rowid, v in con.execute(f'SELECT rowid, "{c}" FROM "{t}" WHERE typeof("{c}") = ?', (kind,))}
        con.close()
        return out

    before = moments("text")
    assert len(before) > 20
    db.upgrade()
    assert moments("text") == {} and len(moments("integer")) == len(before)
    with db.read_session() as s:         # as the store reads them: the same moments, in UTC, with their zone
        apps = {a.id: (a.submitted_at, a.updated_at) for a in s.execute(sa.select(Application)).scalars()}
    con = sqlite3.connect(dump)
    ids = dict(con.execute("SELECT rowid, id FROM applications"))
    con.close()
    for (t, c, rowid), text in before.items():
        if t == "applications":
            assert apps[ids[rowid]][c == "updated_at"] == datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    command.downgrade(alembic_config(db), "0008")
    assert moments("text") == before
    db.dispose()


def test_digests_become_their_32_bytes_and_read_back_as_the_same_hex(legacy):
    """Migration 0010: every SHA-256 digest of an application is kept as 32 bytes; the store
    reads the same hex as before, finds snapshots by it, and a downgrade restores the text."""
    db, _ = legacy
    db.upgrade("0009")
    columns = [("profile_snapshots", "hash"), ("applications", "snapshot_hash"),
               ("applications", "access_code_hash"), ("enterprises", "latest_snapshot"),
               ("evaluations", "profile_hash"), ("evaluations", "input_key")]

    def stored() -> dict:
        with db.engine.connect() as c:
            return {(t, col, i): v for t, col in columns for i, v in enumerate(c.execute(sa.text(
                f'SELECT "{col}" FROM "{t}" WHERE "{col}" IS NOT NULL ORDER BY "{col}"')).scalars())}

    before = stored()
    assert len(before) > 30 and all(isinstance(v, str) and len(v) == 64 for v in before.values())
    db.upgrade("0013")         # 0014 cuts the content digests to 16 bytes (its own test)
    after = stored()
    assert after.keys() == before.keys()
    assert {k: bytes(v).hex() for k, v in after.items()} == before
    with db.read_session() as s:
        apps = s.execute(sa.select(Application.snapshot_hash, Application.uscc)).all()
        assert {h for h, _ in apps} <= {v for (t, _, _), v in before.items() if t == "profile_snapshots"}
        for h, uscc in apps:             # found by their hex, one by one and as a batch
            assert s.scalar(sa.select(ProfileSnapshot.uscc).where(ProfileSnapshot.hash == h)) == uscc
        batch = {h for h, _ in apps}
        found = s.scalars(sa.select(ProfileSnapshot.hash).where(among(s, ProfileSnapshot.hash, batch))).all()
        assert set(found) == batch
    command.downgrade(alembic_config(db), "0009")
    assert stored() == before


def test_shared_history_entries_become_batches_and_every_history_reads_the_same(legacy):
    """Migration 0011: the entries that many applications share (an import's submissions,
    judging the window) become one batch each; every application's history reads as before,
    entry for entry and in order, and a downgrade restores the entries."""
    db, _ = legacy
    db.upgrade("0010")
    cols = "at, actor, action, from_state, to_state, CAST(details AS TEXT)"

    def entries() -> dict[str, list[tuple]]:
        out: dict[str, list[tuple]] = {}
        with db.engine.connect() as c:
            for a, *e in c.execute(sa.text(f"SELECT application_id, {cols} FROM application_events ORDER BY id")):
                out.setdefault(a, []).append((*e[:5], json.loads(e[5]) if e[5] else None))
        return out

    # Entries as the code before 0011 wrote them: a window judged and publicized at once, a
    # review in between, each application's own.
    with db.engine.begin() as c:
        apps = c.execute(sa.select(Application.id).order_by(Application.id)).scalars().all()
        t = datetime.now(timezone.utc).replace(hour=9, minute=0) + timedelta(days=1)   # after 0002's entries
        rows = [dict(application_id=a, at=t, actor="cli:root", action="judge", from_state="received",
                     to_state="judged", details={"ruleset_version": "v1"}) for a in apps]
        rows += [dict(application_id=a, at=t.replace(minute=i + 1), actor="审核员", action="review.confirm",
                      from_state="judged", to_state="judged", details={"benefit": "g"}) for i, a in enumerate(apps[:3])]
        rows += [dict(application_id=a, at=t.replace(hour=10), actor="cli:root", action="publicize",
                      from_state="judged", to_state="publicized", details=None) for a in apps[::2]]
        c.execute(sa.insert(ApplicationEvent), rows)
    before = entries()
    assert len(before) > 10 and sum(map(len, before.values())) > 30
    db.upgrade("0011")
    with db.engine.connect() as c:
        count = lambda t: c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: E731
        batches, members, own = count("event_batches"), count("event_batch_members"), count("application_events")
    assert 0 < batches < members                        # shared entries are stored once
    assert members + own == sum(map(len, before.values()))
    db.upgrade()                                        # 0017: the batches list their members
    with db.read_session() as s:
        for a, history in before.items():
            read = [(e.at, e.actor, e.action, e.from_state, e.to_state, e.details) for e in audit.history(s, a)]
            assert [e[1:] for e in read] == [e[1:] for e in history], a
        window = dict(s.execute(sa.select(Application.id, Application.window_id)).all())
        split = s.execute(sa.select(EventBatch.window_id, EventBatch.members)).all()
    # 0011 made a batch of entries alike in several windows: 0017 splits it, one per window
    assert len({window[a] for a in apps}) > 1 and len(split) > batches
    assert all({window[i] for i in audit.members(packed)} == {w} for w, packed in split)
    assert sum(len(audit.members(packed)) for _, packed in split) == members
    command.downgrade(alembic_config(db), "0010")
    assert entries() == before


def test_a_downgrade_gives_positional_records_their_keys_back(db):
    """Migration 0012: records written with their ruleset's key sets hold values without
    keys; a downgrade, which drops the key sets, first writes every such record back with
    its keys, so that the code before it reads the same decisions."""
    from store import decisions as D
    from store_fixtures import grant_profile, open_h1, submit_all

    open_h1(db)
    submit_all(db, "2026-H1", [grant_profile(i) for i in range(3)])
    evaluate(db, "2026-H1")
    with db.read_session() as s:
        stored = s.execute(sa.select(Evaluation.id, Evaluation.ruleset_version, Evaluation.results)).all()
    decided = {i: rulesets.decisions_of(db, v, blob) for i, v, blob in stored}
    assert len(decided) == 3 and all(bytes(blob)[:1] == D.POSITIONAL for _, _, blob in stored)
    zdict = rulesets.packing(db, stored[0][1]).zdict
    command.downgrade(alembic_config(db), "0011")
    with db.engine.connect() as c:
        assert "pack_keys" not in {col["name"] for col in sa.inspect(c).get_columns("rulesets")}
        after = dict(c.execute(sa.text("SELECT id, results FROM evaluations")).all())
    assert {i: bytes(b)[:1] for i, b in after.items()} == {i: D.WITH_DICTIONARY for i in decided}
    assert {i: D.unpack(b, D.Packing(zdict)) for i, b in after.items()} == decided


def test_evaluations_refer_to_their_ruleset_by_number_and_read_the_same_version(legacy):
    """Migration 0013: rulesets are numbered in the order archived and evaluations keep the
    number instead of the version text; every evaluation reads the same version as before,
    and a downgrade restores the text."""
    db, _ = legacy
    db.upgrade("0012")

    def versions() -> dict:
        with db.engine.connect() as c:
            return dict(c.execute(sa.text("SELECT id, ruleset_version FROM evaluations")).all())

    before = versions()
    assert len(before) > 10 and all(len(v) > 20 for v in before.values())
    db.upgrade()
    with db.read_session() as s:
        assert dict(s.execute(sa.select(Evaluation.id, Evaluation.ruleset_version)).all()) == before
        numbers = dict(s.execute(sa.select(Ruleset.version, Ruleset.seq).order_by(Ruleset.created_at)).all())
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    with db.engine.connect() as c:
        stored = dict(c.execute(sa.text("SELECT id, ruleset_seq FROM evaluations")).all())
    assert stored == {i: numbers[v] for i, v in before.items()}
    command.downgrade(alembic_config(db), "0012")
    assert versions() == before


def test_content_digests_become_16_bytes_and_a_downgrade_recomputes_the_snapshot_keys(legacy):
    """Migration 0014: snapshot keys keep the first 16 bytes of their SHA-256 and input keys 8,
    which is what the store computes today for the same profile (so an unchanged profile is
    recognised); access codes' hashes keep 32; a downgrade gives the snapshot keys their full
    32 bytes back, recomputed from the stored profiles."""
    db, _ = legacy
    db.upgrade("0013")
    # each digest column by the key of its row; a snapshot's own key is its row key, so its
    # table is read as the set of keys
    columns = {("applications", "snapshot_hash"): "id", ("applications", "access_code_hash"): "id",
               ("enterprises", "latest_snapshot"): "uscc", ("evaluations", "profile_hash"): "id",
               ("evaluations", "input_key"): "id"}

    def stored() -> dict:
        with db.engine.connect() as c:
            out = {(t, col): {k: bytes(v).hex() for k, v in c.execute(sa.text(
                f'SELECT "{key}", "{col}" FROM "{t}" WHERE "{col}" IS NOT NULL'))} for (t, col), key in columns.items()}
            out["snapshots"] = {bytes(h).hex() for h in c.execute(sa.text("SELECT hash FROM profile_snapshots")).scalars()}
        return out

    def cut(values: dict, n: int) -> dict:
        return {k: v[:n] for k, v in values.items()}

    before = stored()
    assert all(len(v) == 64 for col in columns for v in before[col].values())
    assert sum(len(before[col]) for col in columns) > 50 and len(before["snapshots"]) >= 5
    db.upgrade()
    after = stored()
    for col in columns:
        n = {"input_key": 16, "access_code_hash": 64}.get(col[1], 32)
        assert after[col] == cut(before[col], n), col
    assert after["snapshots"] == {h[:32] for h in before["snapshots"]}
    with db.read_session() as s:
        snaps = s.execute(sa.select(ProfileSnapshot.hash, ProfileSnapshot.uscc)).all()
        for h, uscc in snaps:       # today's digest of the stored profile is its key
            assert digest(canonical_json(profiles.read(s, h)).encode()) == h
        for app_id, h, uscc in s.execute(sa.select(Application.id, Application.snapshot_hash, Application.uscc)):
            assert s.scalar(sa.select(ProfileSnapshot.uscc).where(ProfileSnapshot.hash == h)) == uscc
    if db.engine.dialect.name == "postgresql":
        assert any(fk["referred_table"] == "profile_snapshots"
                   for fk in sa.inspect(db.engine).get_foreign_keys("applications"))
    command.downgrade(alembic_config(db), "0013")
    back = stored()
    for col in columns:
        assert back[col] == (cut(before[col], 16) if col[1] == "input_key" else before[col]), col
    assert back["snapshots"] == before["snapshots"]


def test_grant_decisions_move_into_their_evaluations_and_a_downgrade_writes_the_rows_again(legacy):
    """Migration 0019: each evaluation holds its grant decisions, in the order they were
    written, with the same status, amount and provisional mark; the ledger names the evaluation
    whose decision it paid; a downgrade writes the decision rows again and points the ledger
    at them."""
    db, _ = legacy
    db.upgrade("0018")

    def rows() -> tuple[list, list]:
        with db.engine.connect() as c:
            decs = [(w, u, a, b, sub, st, None if amt is None else float(amt), bool(p)) for w, u, a, b, sub, st, amt, p
                    in c.execute(sa.text("SELECT window_id, uscc, application_id, benefit_id, subject_id, status, "
                                         "amount_cny, amount_provisional FROM decisions ORDER BY id"))]
            paid = sorted((a, w, u, b, sub) for a, w, u, b, sub in c.execute(sa.text(
                "SELECT a.id, d.window_id, d.uscc, d.benefit_id, d.subject_id FROM awards a "
                "JOIN decisions d ON d.id = a.decision_id")))
        return decs, paid

    before, paid_before = rows()
    assert len(before) >= 5 and len(paid_before) == 5
    db.upgrade()
    with db.read_session() as s:
        evals = list(s.execute(sa.select(Evaluation).order_by(Evaluation.id)).scalars())
        ledger = list(s.execute(sa.select(Award)).scalars())
    by_key = {(e.window_id, e.uscc): e for e in evals}
    after = [(e.window_id, e.uscc, e.application_id, b, sub, st, amt, p)
             for e in evals for b, sub, st, amt, p in D.unpack_grants(e.grants)]
    assert sorted(after, key=repr) == sorted(before, key=repr)
    for w, u, *_ in before:      # one evaluation's decisions keep the order they were written in
        assert [r for r in after if r[:2] == (w, u)] == [r for r in before if r[:2] == (w, u)]
    assert all(e.grants is not None for e in evals if e.results is not None)
    for a in ledger:
        assert a.evaluation_id == by_key[(a.window_id, a.uscc)].id
    assert not sa.inspect(db.engine).has_table("decisions")
    command.downgrade(alembic_config(db), "0018")
    back, paid_back = rows()
    assert sorted(back, key=repr) == sorted(before, key=repr)
    assert paid_back == paid_before


def test_states_channels_and_sources_become_letters_and_snapshots_lose_their_unread_numbers(legacy):
    """Migration 0020: an application's state and channel and an enterprise's source are kept
    as one letter and read back as the same words; the snapshot numbers and their index go; a
    downgrade restores the words and numbers each enterprise's snapshots from 1 in the order
    they were stored."""
    db, _ = legacy
    db.upgrade("0019")

    def raw() -> dict:
        with db.engine.connect() as c:
            return {"apps": set(c.execute(sa.text("SELECT id, state, channel FROM applications")).all()),
                    "sources": set(c.execute(sa.text("SELECT uscc, source FROM enterprises")).all())}

    def versions() -> dict:
        with db.engine.connect() as c:
            out: dict = {}
            for uscc, v, at, h in c.execute(sa.text("SELECT uscc, version, created_at, hash FROM profile_snapshots")):
                out.setdefault(uscc, []).append((v, at, bytes(h)))
            return {u: sorted(rows) for u, rows in out.items()}

    before, numbered = raw(), versions()
    assert len({s for _, s, _ in before["apps"]}) >= 2 and len(before["sources"]) >= 5
    db.upgrade()
    after = raw()
    assert {s for _, s, _ in after["apps"]} <= set("rjcdpaxf") and {c for _, _, c in after["apps"]} <= set("wia")
    assert {s for _, s in after["sources"]} <= set("ra")
    with db.read_session() as s:        # the code reads the words
        assert set(s.execute(sa.select(Application.id, Application.state, Application.channel)).all()) == before["apps"]
    assert "version" not in {c["name"] for c in sa.inspect(db.engine).get_columns("profile_snapshots")}
    command.downgrade(alembic_config(db), "0019")
    assert raw() == before
    back = versions()
    assert back.keys() == numbered.keys()
    for uscc, rows in back.items():
        assert [v for v, _, _ in rows] == list(range(1, len(rows) + 1))
        # numbered in the order they were stored (ties: by key)
        assert [h for _, _, h in rows] == [h for _, _, h in sorted(numbered[uscc], key=lambda r: (r[1], r[2]))]


def test_grant_lists_numbering_their_benefits_get_the_ids_back_on_a_downgrade(legacy):
    """Since 0020 a grant list names its benefit by its place in its ruleset's list; a
    downgrade to 0019 writes the ids back, so that 0019's downgrade (and code of that time)
    reads every list."""
    from store_fixtures import grant_rows

    db, _ = legacy
    db.upgrade()
    evaluate(db, "2026-H2")
    decided = sorted(grant_rows(db, "2026-H2"), key=repr)
    with db.engine.connect() as c:
        lists = [orjson.loads(g) for g in c.execute(sa.text(
            "SELECT grants FROM evaluations WHERE window_id = '2026-H2' AND grants IS NOT NULL")).scalars()]
    assert decided and any(isinstance(r[0], int) for rows in lists for r in rows)
    command.downgrade(alembic_config(db), "0019")
    with db.engine.connect() as c:
        back = [(u, a, orjson.loads(g)) for u, a, g in c.execute(sa.text(
            "SELECT uscc, application_id, grants FROM evaluations WHERE window_id = '2026-H2' AND grants IS NOT NULL"))]
    word = {v: k for k, v in D.GRANT_STATUS.items()}
    assert sorted(((u, b, sub, word[st], amt, bool(p), a is not None) for u, a, rows in back for b, sub, st, amt, p in rows),
                  key=repr) == decided
    assert all(isinstance(r[0], str) for _, _, rows in back for r in rows)
