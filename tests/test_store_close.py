"""公示 and close, on SQLite and PostgreSQL: the ledger pays a certificate once (across windows
and concurrent closes), only on decisions made under the rules in force; 不予支持 notices only
for grant subjects that failed or stayed unknown after 补正; tax preferences never in a park
decision (a property over generated windows); SIGKILL during close and during a 补正
re-judgement leaves the ledger and the history in agreement, nothing paid twice."""
from __future__ import annotations

import random
import threading
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from engine.profile import parse_profile
from notices.service import NoticeService
from store import applications as A
from store import awards, cases, rulesets
from store import windows as W
from store.db import Database
from store.errors import Conflict, ValidationFailed
from store.audit import history
from store.models import Application, AuditLog, Award, Evaluation, Material, Review
from store_fixtures import (  # noqa: F401  (fixtures)
    AFTER_H1, IN_H1, STORES, assert_history_complete, cert_no, db, evaluate, evaluator_of, events_of,
    grant_profile, ledger, make_profile, make_store_url, notices_of, open_h1, proofs, rules_copy, rules_in_force,
    sigkill, spawn, store_url, submit_all, wait_until,
)

CLOSE_DAY = date(2026, 4, 10)           # after H1's default 公示 period (published 1 April)
GRANT = "device-registration-grant"
ORIGIN = "device_registrations[0].origin"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_claims_naming_every_certificate_are_kept_as_all_of_them(db):
    """An application (web, API or import) that names every certificate of its profile keeps
    null (all of them) instead of the list; one that names some keeps them, and only those are
    decided for it."""
    from store_fixtures import profiles_csv, uscc_of

    open_h1(db)
    A.submit_application(db, "2026-H1", grant_profile(1, certs=2), [cert_no(1, 1), cert_no(1, 0)], today=IN_H1)
    A.submit_application(db, "2026-H1", grant_profile(2, certs=2), [cert_no(2, 0)], today=IN_H1)
    A.import_applications(db, "2026-H1", profiles_csv([grant_profile(3, certs=2)]), "a.csv", today=IN_H1)
    with db.read_session() as s:
        claims = dict(s.execute(select(Application.uscc, Application.claims)).all())
    assert claims == {uscc_of(1): None, uscc_of(2): [cert_no(2, 0)], uscc_of(3): None}
    evaluate(db, "2026-H1")
    with db.read_session() as s:
        decided = {(app, sub) for _, app, _, sub, _, _, _ in W.claimed_grants(s, "2026-H1")}
    assert {sub for _, sub in decided} == {cert_no(1, 0), cert_no(1, 1), cert_no(2, 0), cert_no(3, 0), cert_no(3, 1)}


def _grant_ids() -> set[str]:
    return {b.id for b in rulesets.current().book.benefits.values() if b.spec.kind == "grant"}


def _publish_and_close(db, window_id="2026-H1", **kw):
    awards.publish(db, window_id, today=AFTER_H1)
    return awards.close_window(db, window_id, today=CLOSE_DAY, actor="管理员", **kw)


def _ledger_agrees_with_history(db, window_id: str) -> None:
    """The ledger, the applications' history and the window's audit entry tell one story."""
    with db.read_session() as s:
        rows = s.execute(select(Award.application_id, Award.amount_cny).where(Award.window_id == window_id)).all()
        apps = s.scalars(select(Application.id).where(Application.window_id == window_id)).all()
        awards_in_history = [a for a in apps for e in history(s, a) if e.action == "award"]
        closes = list(s.execute(select(AuditLog).where(AuditLog.action == "window.close",
                                                       AuditLog.target == window_id)).scalars())
        keys = s.execute(select(Award.benefit_id, Award.subject_id)).all()
    assert len(keys) == len(set(keys))                                  # nothing paid twice
    assert {a for a, _ in rows} == set(awards_in_history)
    assert len(awards_in_history) == len(set(awards_in_history))       # one entry each
    assert len(closes) == 1 and closes[0].details["awards"] == len(rows)
    assert closes[0].details["amount_cny"] == pytest.approx(sum(float(x or 0) for _, x in rows))
    assert_history_complete(db, window_id)


# --- the ledger --------------------------------------------------------------------------------------
def test_a_certificate_is_paid_once_across_windows(db):
    p = grant_profile(1, certs=2)
    open_h1(db, "2026-H1")
    open_h1(db, "2026-HX")
    apps = {}
    for wid in ("2026-H1", "2026-HX"):
        (apps[wid],) = (x.application_id for x in submit_all(db, wid, [p]))
        evaluate(db, wid)
        awards.publish(db, wid, today=AFTER_H1)
    res = awards.close_window(db, "2026-H1", reason="先行兑现", today=AFTER_H1)
    assert len(res.awards) == 2
    # 2026-HX judged both certificates eligible before H1 paid them: its confirmation step says
    # they are paid already, and it closes only once judged again, when its refusal can say why.
    preview = awards.close_preview(db, "2026-HX")
    assert (preview["awards"], preview["already_awarded"], preview["non_support_notices"]) == (0, 2, 1)
    with pytest.raises(Conflict, match="2 项拟支持的注册证在本批次判定后已在其他批次兑现.*重新执行批量判定"):
        awards.close_window(db, "2026-HX", reason="先行兑现", today=AFTER_H1)
    evaluate(db, "2026-HX")
    hx = apps["2026-HX"]
    grants = cases.detail(db, hx).grants
    assert [g.final_status for g in grants] == ["ineligible"] * 2
    assert all(c.outcome == "fail" for g in grants for c in g.result.criteria if c.id == "not_awarded_before")
    res = awards.close_window(db, "2026-HX", reason="先行兑现", today=AFTER_H1)
    assert res.awards == [] and res.refused == [hx]
    assert len(ledger(db)) == 2 and {row[2] for row in ledger(db)} == {"2026-H1"}


def test_concurrent_closes_pay_a_certificate_once(store_url):
    setup = Database(store_url)
    p = grant_profile(3)
    for wid in ("2026-H1", "2026-HX"):
        open_h1(setup, wid)
        submit_all(setup, wid, [p])
        evaluate(setup, wid)
        awards.publish(setup, wid, today=AFTER_H1)
    results, errors = {}, []
    barrier = threading.Barrier(3)

    def close(wid):
        d = Database(store_url)
        try:
            barrier.wait()
            res = awards.close_window(d, wid, reason="同时关闭", today=AFTER_H1)
            results.setdefault(wid, []).append(res)
        except Conflict as e:
            errors.append(e)
        finally:
            d.dispose()

    ts = [threading.Thread(target=close, args=(w,)) for w in ("2026-H1", "2026-HX", "2026-HX")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    # Each window closes at most once; the certificate is paid once. The window that did not
    # pay it either found it paid as it wrote (the ledger's key decides) or, closing after the
    # other, was sent to judge it again.
    assert all(len(rs) == 1 for rs in results.values())
    paid = [a for rs in results.values() for r in rs for a in r.awards]
    already = [a for rs in results.values() for r in rs for a in r.already_awarded]
    rejudge = [e for e in errors if "重新执行批量判定" in e.message]
    assert all("已关闭" in e.message or e in rejudge for e in errors)
    assert len(paid) == 1 and len(already) + len(rejudge) >= 1
    assert len(ledger(setup)) == 1
    setup.dispose()


def test_close_refuses_until_judged_under_the_rules_in_force(db, tmp_path, rules_in_force):
    open_h1(db)
    submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2)])
    evaluate(db, "2026-H1")
    awards.publish(db, "2026-H1", today=AFTER_H1)
    amended = rules_copy(tmp_path, {"benefits/device-registration-grant.yaml": [
        ("self_developed: {II: 300000, III: 500000}", "self_developed: {II: 350000, III: 500000}")]})
    new = evaluator_of(amended)
    rules_in_force(new)
    with pytest.raises(Conflict) as e:
        awards.close_window(db, "2026-H1", today=CLOSE_DAY)
    assert "2 份申报未按现行规则" in e.value.message and new.ruleset_version[:16] in e.value.message
    assert ledger(db) == [] and W.get_window(db, "2026-H1").state == "publicity"
    assert W.get_window(db, "2026-H1").counts.stale == 2
    evaluate(db, "2026-H1")
    res = awards.close_window(db, "2026-H1", today=CLOSE_DAY)
    assert [a.amount_cny for a in res.awards] == [350000, 350000]
    assert {float(row[4]) for row in ledger(db)} == {350000.0}


# --- 不予支持 ------------------------------------------------------------------------------------------
def test_non_support_notices_only_for_grant_subjects_failed_or_unknown_after_correction(db):
    open_h1(db)
    profiles = {
        "A": grant_profile(1, certs=2),                       # both certificates eligible
        "B": grant_profile(2, origin=None),                   # origin unknown, supplied in 补正
        "C": grant_profile(3, origin=None),                   # origin unknown, deadline missed
        "D": grant_profile(4, in_park=False),                 # fails a criterion
        "E": grant_profile(5, tax_credit_rating="D", hnte_certificate=False, employees_avg=900,
                           tax_collection="deemed"),         # grant eligible, tax preferences not
        "F": grant_profile(6, certs=0),                       # applied with no certificate
        "G": grant_profile(7, certs=2),                       # claims one of two
    }
    profiles["G"]["device_registrations"][1]["obtained_on"] = "2024-01-01"    # outside coverage
    ids = {}
    for k, p in profiles.items():
        claims = [cert_no(7, 0)] if k == "G" else None
        ids[k] = A.submit_application(db, "2026-H1", p, claims, today=IN_H1).application_id
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    assert set(notices_of(db, "2026-H1", "one_time")) == {ids[k] for k in "BCDF"}
    cases.submit_correction(db, ids["B"], {ORIGIN: "self_developed"}, proofs(db, ids["B"]), actor="企业", today=AFTER_H1)
    with pytest.raises(Conflict, match="补正期限"):       # 公示 waits for every open 补正 period
        awards.publish(db, "2026-H1", today=AFTER_H1)
    awards.publish(db, "2026-H1", today=date(2026, 4, 17))
    res = awards.close_window(db, "2026-H1", today=date(2026, 4, 27), actor="管理员")
    assert set(res.refused) == {ids[k] for k in "CDF"} and res.non_support_notices == 3
    # Each is numbered when first issued (opened or bundled), once, and keeps its number.
    assert notices_of(db, "2026-H1", "non_support") == {}
    svc = NoticeService(db)
    for k in "CDF":
        assert "non_support" in svc.kinds_for(cases.detail(db, ids[k]))
        svc.render(ids[k], "non_support", "html")
    refused = notices_of(db, "2026-H1", "non_support")
    assert set(refused) == set(res.refused) and len(set(refused.values())) == 3
    svc.render(ids["C"], "non_support", "html")
    assert notices_of(db, "2026-H1", "non_support") == refused
    with pytest.raises(Conflict, match="不予支持告知书"):                 # paid in full: none due
        svc.render(ids["A"], "non_support", "html")
    assert sorted((a.application_id, a.subject_id) for a in res.awards) == sorted(
        [(ids["A"], cert_no(1, 0)), (ids["A"], cert_no(1, 1)), (ids["B"], cert_no(2, 0)),
         (ids["E"], cert_no(5, 0)), (ids["G"], cert_no(7, 0))])
    for k in "CDF":
        d = cases.detail(db, ids[k])
        assert d.state == "refused" and d.grants and all(g.final_status != "eligible" for g in d.grants)
        assert {g.result.kind for g in d.grants} == {"grant"}
    e = cases.detail(db, ids["E"])
    assert e.state == "awarded" and any(t.status == "ineligible" for t in e.tax)
    _ledger_agrees_with_history(db, "2026-H1")


# --- tax preferences are never a park decision (property) --------------------------------------------
@st.composite
def windows(draw):
    n = draw(st.integers(2, 7))
    seed = draw(st.integers(0, 10_000))
    return {"seed": seed, "n": n,
            "claims": draw(st.lists(st.sampled_from(["all", "first", "none"]), min_size=n, max_size=n)),
            "correct": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
            "registry": draw(st.integers(0, 3)),
            "review": draw(st.sampled_from([None, "eligible", "ineligible"]))}


def _tax_never_a_park_decision(db, case: dict, window_id: str, base: int) -> None:
    rng = random.Random(case["seed"])
    open_h1(db, window_id)
    grant_ids = _grant_ids()
    ids = []
    for k in range(case["n"]):
        i = base + k
        p = make_profile(i, case["seed"])
        p["tax_credit_rating"] = rng.choice("ABMCD")
        certs = [r["certificate_no"] for r in p["device_registrations"]]
        claims = {"all": None, "first": certs[:1], "none": None}[case["claims"][k]]
        ids.append(A.submit_application(db, window_id, p, claims, today=IN_H1).application_id)
    registry = rulesets.current().registry
    A.ingest(db, None, [A.Intake.of(parse_profile(make_profile(base + 50 + k, case["seed"]), registry))
                        for k in range(case["registry"])])
    evaluate(db, window_id)
    # the confirmation page's count (from the stored verdicts) is what issuing does (by judging)
    preview = cases.one_time_preview(db, window_id, today=AFTER_H1)
    assert cases.issue_one_time_notices(db, window_id, today=AFTER_H1) == preview["notices"]
    for k, app_id in enumerate(ids):
        d = cases.detail(db, app_id, today=AFTER_H1)
        if case["correct"][k] and d.correction and d.correction.open and d.correction.facts:
            facts = {f: _a_value(f) for f in d.correction.facts if _a_value(f) is not None}
            if facts:
                cases.submit_correction(db, app_id, facts, proofs(db, app_id), actor="企业", today=AFTER_H1)
        if case["review"] and d.grants and k % 2 == 0:
            g = d.grants[0]
            sid = g.result.subject.id if g.result.subject else ""
            # a grant made eligible without an amount from the rules gets the reviewer's amount
            amount = 500_000 if case["review"] == "eligible" and g.result.amount_cny is None else None
            cases.review(db, app_id, g.result.benefit_id, sid, "override", case["review"], "复核意见",
                         actor="经办人", amount=amount)
    details = {a: cases.detail(db, a) for a in ids}
    w = W.get_window(db, window_id)
    # The grant counts are the claimed grant decisions, nothing else.
    assert sum(w.counts.grant_decisions.values()) == sum(len(d.grants) for d in details.values())
    assert all(g.result.kind == "grant" for d in details.values() for g in d.grants)
    proposed = awards.list_awards(db, window_id)
    assert {a.benefit_id for a in proposed.awards} <= grant_ids
    assert all(b["benefit_id"] in grant_ids for e in awards.proactive(db, window_id) for b in e["benefits"])
    awards.publish(db, window_id, today=date(2026, 4, 17))
    res = awards.close_window(db, window_id, today=date(2026, 4, 27))
    assert {a.benefit_id for a in res.awards} <= grant_ids
    assert {(a.application_id, a.subject_id) for a in res.awards} == {
        (a.application_id, a.subject_id) for a in proposed.awards}
    assert all(a.amount_cny is not None for a in res.awards)       # nothing paid without an amount
    # 不予支持 exactly for applications with a claimed grant subject and nothing awarded;
    # whatever their tax self-assessment says.
    awarded_apps = {a.application_id for a in res.awards}
    with_grants = {a for a, d in details.items() if d.grants}
    assert set(res.refused) == with_grants - awarded_apps
    # ...and for those paid for one grant and refused another, a notice of the refused ones
    partly = {a for a in awarded_apps if any(g.final_status != "eligible" for g in details[a].grants)}
    assert set(res.partly_refused) == partly
    assert notices_of(db, window_id, "non_support") == {}         # numbered when first issued
    svc = NoticeService(db)
    for a in sorted(awarded_apps | set(res.refused)):                # …and offered to exactly these
        due = "non_support" in svc.kinds_for(cases.detail(db, a))
        assert due == (a in set(res.refused) | set(res.partly_refused)), a
    for a in res.refused:
        d = cases.detail(db, a)
        assert d.grants and all(g.result.kind == "grant" for g in d.grants)
        assert any(g.final_status != "eligible" for g in d.grants) or any(
            x["uscc"] == d.enterprise["uscc"] for x in res.already_awarded)
    assert {a.benefit_id for a in awards.list_awards(db, window_id).awards} <= grant_ids


def _a_value(path: str):
    leaf = path.rsplit(".", 1)[-1]
    return {"origin": "self_developed", "in_park": True, "on_serious_dishonest_list": False}.get(leaf)


@pytest.mark.parametrize("kind", STORES)
def test_tax_preferences_never_enter_a_park_decision(kind, tmp_path):
    url, cleanup = make_store_url(kind, tmp_path)
    db = Database(url)
    runs = iter(range(1000))

    @settings(max_examples=5 if kind == "sqlite" else 3, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=windows())
    def prop(case):
        n = next(runs)
        _tax_never_a_park_decision(db, case, f"P{n}", 1000 * (n + 1))

    try:
        prop()
    finally:
        db.dispose()
        cleanup()


# --- SIGKILL during close and during a 补正 re-judgement ----------------------------------------------
CLOSE_KILLED = """
import os, time
from datetime import date
from store import audit, awards
from store.db import Database
real = audit.events
def events(s, window_id, rows):
    real(s, window_id, rows)
    if any(r[3] == "award" for r in rows):   # ledger rows and history written, not committed
        open(os.environ["MARK"], "w").close()
        time.sleep(600)
audit.events = events
awards.close_window(Database(), "2026-H1", actor="管理员", today=date(2026, 4, 10))
"""
CORRECTION_KILLED = """
import os, sys, time
from datetime import date
from store import cases
real = cases.judge_now
def judge(*a, **kw):
    out = real(*a, **kw)        # judged again inside the correction's transaction
    open(os.environ["MARK"], "w").close()
    time.sleep(600)
    return out
cases.judge_now = judge
from store.db import Database
cases.submit_correction(Database(), sys.argv[1], {"device_registrations[0].origin": "self_developed"},
                        [("device-registration-grant", "registration_certificate", "证书.pdf", %r)],
                        actor="企业", today=date(2026, 4, 1))
""" % PDF


def _killed_at_mark(url: str, code: str, tmp_path, *args) -> None:
    mark = tmp_path / f"mark-{random.randrange(10**9)}"
    proc = spawn(url, code.replace("sys.argv[1]", repr(args[0])) if args else code, env={"MARK": str(mark)})
    try:
        wait_until(mark.exists, 120, "the process to reach the point where it is killed", proc)
    finally:
        sigkill(proc)


@pytest.mark.parametrize("kind", STORES)
def test_sigkill_during_close_then_restart_pays_once(kind, tmp_path):
    url, cleanup = make_store_url(kind, tmp_path)
    db = Database(url)
    try:
        open_h1(db)
        subs = submit_all(db, "2026-H1", [grant_profile(1, certs=2), grant_profile(2), grant_profile(3, in_park=False)])
        evaluate(db, "2026-H1")
        awards.publish(db, "2026-H1", today=AFTER_H1)
        before = {s.application_id: len(events_of(db, s.application_id)) for s in subs}
        _killed_at_mark(url, CLOSE_KILLED, tmp_path)
        # Killed mid-transaction: nothing of the close happened.
        assert ledger(db) == [] and W.get_window(db, "2026-H1").state == "publicity"
        assert {s.application_id: len(events_of(db, s.application_id)) for s in subs} == before
        res = awards.close_window(db, "2026-H1", actor="管理员", today=CLOSE_DAY)
        assert len(res.awards) == 3 and res.refused == [subs[2].application_id]
        with pytest.raises(Conflict, match="已关闭"):
            awards.close_window(db, "2026-H1", actor="管理员", reason="重复", today=CLOSE_DAY)
        assert len(ledger(db)) == 3
        _ledger_agrees_with_history(db, "2026-H1")
    finally:
        db.dispose()
        cleanup()


@pytest.mark.parametrize("kind", STORES)
def test_sigkill_during_a_correction_rejudgement_then_restart(kind, tmp_path):
    url, cleanup = make_store_url(kind, tmp_path)
    db = Database(url)
    try:
        open_h1(db)
        a, b = (s.application_id for s in submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2, origin=None)]))
        evaluate(db, "2026-H1")
        cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)

        def state():
            app = cases.detail(db, b, today=AFTER_H1)
            with db.read_session() as s:
                ev = s.execute(select(Evaluation).where(Evaluation.application_id == b)).scalar_one()
                decs = ev.grants
                mats = s.scalar(select(func.count()).select_from(Material))
                snap = s.scalar(select(Application.snapshot_hash).where(Application.id == b))
            return (app.state, app.revision, len(app.events), snap, rulesets.decisions_of(db, ev.ruleset_version, ev.results), decs, mats)

        before = state()
        _killed_at_mark(url, CORRECTION_KILLED, tmp_path, b)
        assert state() == before                    # the previous state, not half the next
        d = cases.submit_correction(db, b, {ORIGIN: "self_developed"}, proofs(db, b, leave=("registrant_change_document",)),
                                    actor="企业", today=AFTER_H1)
        assert d.state == "corrected" and [g.final_status for g in d.grants] == ["eligible"]
        assert [e.action for e in d.events].count("correction") == 1 and len(d.grants[0].materials) == 2
        awards.publish(db, "2026-H1", today=date(2026, 4, 17))
        res = awards.close_window(db, "2026-H1", actor="管理员", today=date(2026, 4, 27))
        assert sorted(x.application_id for x in res.awards) == sorted([a, b])
        _ledger_agrees_with_history(db, "2026-H1")
    finally:
        db.dispose()
        cleanup()


def test_a_review_that_makes_a_grant_eligible_states_the_amount_the_rules_could_not(db):
    """复核 to 符合条件 of a grant the rules gave no amount: the reviewer must state one, and the
    award list, the ledger and the 兑现通知书 pay exactly that; an amount the rules computed
    cannot be changed by a review."""
    from notices.service import NoticeService
    from notices.settings import load_settings
    from leaks import pdf_text

    open_h1(db)
    a = A.submit_application(db, "2026-H1", grant_profile(1, in_park=False), None, today=IN_H1).application_id
    b = A.submit_application(db, "2026-H1", grant_profile(2), None, today=IN_H1).application_id
    evaluate(db, "2026-H1")
    cert_a, cert_b = cert_no(1, 0), cert_no(2, 0)
    (g,) = cases.detail(db, a).grants
    assert g.result.status == "ineligible" and g.result.amount_cny is None
    with pytest.raises(ValidationFailed) as e:      # no reason and no amount: both said at once
        cases.review(db, a, GRANT, cert_a, "override", "eligible", "", actor="经办人")
    assert {p.path for p in e.value.problems} == {"reason", "amount_cny"}
    assert "支持金额" in " ".join(p.message for p in e.value.problems)
    with pytest.raises(ValidationFailed, match="最多保留两位小数"):
        cases.review(db, a, GRANT, cert_a, "override", "eligible", "入园协议已签", actor="经办人", amount=0.001)
    with pytest.raises(ValidationFailed, match="已由规则计算"):
        cases.review(db, b, GRANT, cert_b, "confirm", None, None, actor="经办人", amount=1)
    with pytest.raises(ValidationFailed, match="不是符合条件"):
        cases.review(db, a, GRANT, cert_a, "confirm", None, None, actor="经办人", amount=1)
    # a review an earlier release recorded, without an amount: nothing is published unpriced
    with db.session() as s:
        ev_id = s.scalar(select(Evaluation.id).where(Evaluation.window_id == "2026-H1", Evaluation.application_id == a))
        s.add(Review(application_id=a, benefit_id=GRANT, subject_id=cert_a, engine_status="ineligible",
                     status="eligible", reason="旧版本的复核", actor="经办人", evaluation_id=ev_id))
    with pytest.raises(Conflict, match=f"有 1 项拟支持事项没有金额.*{a}.*请在复核中确定支持金额"):
        awards.publish(db, "2026-H1", today=AFTER_H1)
    cases.review(db, a, GRANT, cert_a, "override", "eligible", "入园协议已签", actor="经办人", amount=1_234_567.5)
    (g,) = cases.detail(db, a).grants
    assert g.final_status == "eligible" and g.review.amount_cny == 1_234_567.5
    listed = {x.application_id: x for x in awards.list_awards(db, "2026-H1").awards}
    assert listed[a].amount_cny == 1_234_567.5 and not listed[a].amount_provisional
    assert listed[b].amount_cny is not None
    res = _publish_and_close(db)
    paid = {x.application_id: x.amount_cny for x in res.awards}
    assert paid[a] == 1_234_567.5 and None not in paid.values()
    assert res.totals.amount_cny == pytest.approx(sum(paid.values()))
    with db.read_session() as s:
        assert float(s.scalar(select(Award.amount_cny).where(Award.application_id == a))) == 1_234_567.5
    text = pdf_text(NoticeService(db, settings=load_settings()).render(a, "award", "pdf").data)
    assert "1,234,567.50元" in text and "金额经复核确定" in text and "金额待定" not in text
    _ledger_agrees_with_history(db, "2026-H1")


def test_a_correction_after_the_rules_changed_is_judged_under_the_new_rules(db, tmp_path, rules_in_force):
    """The rules in force changed (a new release) after the window was judged: the first 补正
    judged under them archives their version in its own transaction and reads its records back
    there. It was refused with 该判定记录需要其规则版本存档的压缩字典 (HTTP 500 on the page), every
    time, and the enterprise's answers were lost."""
    open_h1(db)
    app_id = A.submit_application(db, "2026-H1", grant_profile(2, origin=None), None, today=IN_H1).application_id
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    before = cases.detail(db, app_id).ruleset_version
    edited = rules_copy(tmp_path, {"common.yaml": [("# 共用的税收参数", "# 共用的税收参数（新版本）")]})
    rules_in_force(evaluator_of(edited))
    assert rulesets.current().ruleset_version != before
    d = cases.submit_correction(db, app_id, {ORIGIN: "self_developed"}, proofs(db, app_id), actor="企业", today=AFTER_H1)
    assert d.state == "corrected" and d.ruleset_version == rulesets.current().ruleset_version
    (grant,) = d.grants
    assert grant.result.status == "eligible" and grant.result.amount_cny == 300_000
    # and the notice issued before is still read under the rules it was issued on
    assert cases.detail(db, app_id).notices[0].kind == "one_time"


def test_the_close_says_which_amounts_are_only_reference_amounts(db):
    """Amounts no official text sets are 参考金额: the close's confirmation says how many and how
    much before they are paid; a window opened with the round's notice amounts has none."""
    notice = {"false": {"self_developed": {"II": 100000, "III": 200000}, "introduced": {"II": 50000, "III": 100000}},
              "true": {"self_developed": {"II": 400000, "III": 800000}, "introduced": {"II": 200000, "III": 400000}}}
    for wid, amounts in (("2026-H1", None), ("2026-HX", {"grant_amounts": notice})):
        open_h1(db, wid, **({"amounts": amounts} if amounts else {}))
        submit_all(db, wid, [grant_profile(1, certs=2)])
        evaluate(db, wid)
    reference = awards.close_preview(db, "2026-H1")
    assert reference["awards"] == 2 and reference["provisional_awards"] == 2
    # the 暂定 conditions a refusal could rest on are named, with where they come from
    assert any("36个月" in c and "桐市监〔2025〕16号" in c for c in reference["provisional_criteria"])
    # 国发〔2016〕33号 三（十）, its paragraph not verified: provisional until it is
    assert any("严重失信" in c and "尚未核实" in c for c in reference["provisional_criteria"])
    assert reference["provisional_amount_cny"] == reference["amount_cny"] > 0
    set_by_notice = awards.close_preview(db, "2026-HX")
    assert set_by_notice["awards"] == 2 and set_by_notice["provisional_awards"] == 0
    assert set_by_notice["provisional_amount_cny"] == 0 and set_by_notice["amount_cny"] == 200_000


def test_the_round_notice_amounts_are_set_before_the_publicity_and_price_every_decision(db):
    """参考金额 are replaced by the round's notice amounts, set on the window before its 公示:
    the window must be judged again before it is publicized, and then pays the notice's amounts;
    after the 公示 they cannot change."""
    notice = {"false": {"self_developed": {"II": 100000, "III": 200000}, "introduced": {"II": 50000, "III": 100000}},
              "true": {"self_developed": {"II": 400000, "III": 800000}, "introduced": {"II": 200000, "III": 400000}}}
    open_h1(db)
    submit_all(db, "2026-H1", [grant_profile(1, certs=2)])
    evaluate(db, "2026-H1")
    assert awards.publish_preview(db, "2026-H1", today=AFTER_H1)["provisional_awards"] == 2
    with pytest.raises(ValidationFailed):
        W.set_amounts(db, "2026-H1", {"grant_amounts": {"false": "30万"}})
    w = W.set_amounts(db, "2026-H1", {"grant_amounts": notice}, actor="管理员")
    assert w.amounts == {"grant_amounts": notice} and w.evaluated_at is None
    with pytest.raises(Conflict, match="尚未判定"):
        awards.publish(db, "2026-H1", today=AFTER_H1)
    evaluate(db, "2026-H1")
    preview = awards.publish_preview(db, "2026-H1", today=AFTER_H1)
    assert (preview["provisional_awards"], preview["amount_cny"]) == (0, 200_000)
    awards.publish(db, "2026-H1", today=AFTER_H1)
    with pytest.raises(Conflict, match="公示前"):
        W.set_amounts(db, "2026-H1", {"grant_amounts": notice})
