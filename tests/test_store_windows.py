"""Windows end to end on SQLite and PostgreSQL: open, intake, evaluation, close, ledger."""
from __future__ import annotations

import io
import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from store.errors import Conflict, NotFound, ValidationFailed
from store.intake import ImportRejected, import_applications, import_registry, template_bytes
from store.models import Award, Decision, Enterprise, ProfileSnapshot
from store import windows as W
from store_fixtures import (  # noqa: F401  (fixtures)
    H1, H2, db, decision_snapshot, evaluator, make_profile, profiles_csv, store_url, uscc_of,
)

pytestmark = pytest.mark.timeout(300)


def _eligible_grant_profile(i: int, certs: int = 1) -> dict:
    p = make_profile(i, certs=certs)
    p.update(in_park=True, on_serious_dishonest_list=False, tax_credit_rating="A")
    for r in p["device_registrations"]:
        r["obtained_on"] = "2025-11-20"
    return p


def test_open_window_defaults_and_duplicate(db):
    w = W.open_window(db, "2026-H1")
    assert (w["opens_on"], w["closes_on"], w["as_of"]) == ("2026-03-01", "2026-03-31", "2026-03-31")
    assert w["coverage_from"] == "2025-10-01" and w["state"] == "open"
    with pytest.raises(Conflict, match="已存在"):
        W.open_window(db, "2026-H1")
    with pytest.raises(ValidationFailed) as e:
        W.open_window(db, "special", opens_on="2026-05-02", closes_on="2026-05-01", as_of="nope")
    paths = {p.path for p in e.value.problems}
    assert {"as_of", "closes_on", "coverage_from", "coverage_to"} <= paths
    assert [x["id"] for x in W.list_windows(db)] == ["2026-H1"]
    with pytest.raises(NotFound):
        W.get_window(db, "2030-H1")


def test_round_notice_amounts_replace_the_reference_amounts(db, evaluator):
    # The Plan gives no amounts: the rules ship provisional reference values, and a window
    # carries the amounts its round's notice sets. Those are paid, and not flagged 参考金额.
    table = {"false": {k: {"II": 100000, "III": 250000} for k in ("self_developed", "introduced")},
             "true": {k: {"II": 400000, "III": 800000} for k in ("self_developed", "introduced")}}
    with pytest.raises(ValidationFailed) as e:
        W.open_window(db, "2026-H1", amounts={"grant_amounts": 100000, "no_such_param": 1,
                                              "device-registration-grant.grant_amounts": {"false": {}}})
    paths = {p.path for p in e.value.problems}
    assert {"amounts.grant_amounts", "amounts.no_such_param"} <= paths
    assert any(p.startswith("amounts.device-registration-grant.grant_amounts.") for p in paths)
    W.open_window(db, "2026-H1", amounts={"grant_amounts": table})
    p = _eligible_grant_profile(7)
    p["device_registrations"][0].update(innovative=False)
    W.submit_application(db, "2026-H1", p, claims=None, channel="web")
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    (grant,) = [d for d in W.list_decisions(db, "2026-H1") if d["benefit_id"] == "device-registration-grant"]
    assert grant["status"] == "eligible"
    digit = p["device_registrations"][0]["certificate_no"][8]   # class digit of the number
    assert grant["amount_cny"] == (100000 if digit == "2" else 250000)
    assert grant["amount_provisional"] is False


def test_submit_evaluate_close_and_enterprise_view(db, evaluator):
    W.open_window(db, "2026-H1", **H1)
    p = _eligible_grant_profile(1)
    app_id, code = W.submit_application(db, "2026-H1", p, claims=None, channel="web")
    with pytest.raises(ValidationFailed) as e:
        W.submit_application(db, "2026-H1", {**p, "uscc": "91512000MA62XY001X"}, claims=["川械注准20990000000"])
    assert any(pr.path == "profile.uscc" for pr in e.value.problems)

    res = W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    from store.models import Window

    with db.read_session() as s:
        ctx = W.window_context(s.get(Window, "2026-H1"))
    direct = evaluator.evaluate(p, as_of=date(2026, 3, 31), window=ctx, awarded=set())
    by_key = {(r.benefit_id, r.subject.id if r.subject else ""): r.status for r in direct.results}
    decs = W.list_decisions(db, "2026-H1")
    assert {(d["benefit_id"], d["subject"]["id"] if d["subject"] else ""): d["status"] for d in decs} == by_key
    assert sum(res.counts.values()) == len(by_key)

    # The enterprise sees its own decisions with its code; a wrong code looks like no application.
    view = W.get_application(db, app_id, code)
    assert view["enterprise"]["uscc"] == p["uscc"] and len(view["decisions"]) == len(by_key)
    assert all("criteria" in d for d in view["decisions"])
    assert W.get_application(db, app_id, "WRONGCODE123") is None
    assert W.get_application(db, "ANOSUCHAPP", code) is None

    grant_eligible = by_key[("device-registration-grant", p["device_registrations"][0]["certificate_no"])]
    out = W.close_window(db, "2026-H1")
    assert len(out.awards) == (1 if grant_eligible == "eligible" else 0)
    with pytest.raises(Conflict, match="已关闭"):
        W.close_window(db, "2026-H1")
    with pytest.raises(Conflict, match="已关闭"):
        W.submit_application(db, "2026-H1", p)
    with pytest.raises(Conflict, match="已关闭"):
        W.evaluate_window(db, "2026-H1", evaluator=evaluator)


def test_certificate_awarded_once_across_windows(db, evaluator):
    """A certificate paid in H1 is passed to H2's evaluation as awarded and never paid again."""
    p = _eligible_grant_profile(2)
    cert = p["device_registrations"][0]["certificate_no"]
    W.open_window(db, "2026-H1", **H1)
    W.submit_application(db, "2026-H1", p)
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    first = W.close_window(db, "2026-H1")
    assert [a["subject_id"] for a in first.awards] == [cert]

    W.open_window(db, "2026-H2", **{**H2, "coverage_from": "2025-10-01"})
    W.submit_application(db, "2026-H2", p)
    W.evaluate_window(db, "2026-H2", evaluator=evaluator)
    d = [x for x in W.list_decisions(db, "2026-H2") if x["subject"] and x["subject"]["id"] == cert]
    assert d and d[0]["status"] != "eligible"
    second = W.close_window(db, "2026-H2")
    assert second.awards == []
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Award)) == 1


@pytest.mark.timeout(120)
def test_concurrent_closes_award_a_certificate_once(store_url, evaluator):
    """Two windows evaluated before either closes both find the certificate eligible; closing
    them at the same time on separate connections pays it exactly once."""
    from store.db import Database

    setup = Database(store_url)
    p = _eligible_grant_profile(3)
    W.open_window(setup, "2026-H1", **H1)
    W.open_window(setup, "2026-X", **{**H1, "opens_on": "2026-03-02"})
    for wid in ("2026-H1", "2026-X"):
        W.submit_application(setup, wid, p)
        W.evaluate_window(setup, wid, evaluator=evaluator)
    results, errors = {}, []
    barrier = threading.Barrier(2)

    def close(wid):
        dbx = Database(store_url)
        try:
            barrier.wait()
            results[wid] = W.close_window(dbx, wid)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            dbx.dispose()

    ts = [threading.Thread(target=close, args=(w,)) for w in ("2026-H1", "2026-X")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    awarded = [a for r in results.values() for a in r.awards]
    refused = [a for r in results.values() for a in r.already_awarded]
    assert len(awarded) == 1 and len(refused) == 1
    assert refused[0]["awarded_in_window"] in ("2026-H1", "2026-X")
    with setup.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Award)) == 1
    setup.dispose()


def test_second_evaluation_refused_while_one_runs(db, evaluator):
    W.open_window(db, "2026-H1", **H1)
    W.submit_application(db, "2026-H1", make_profile(5))
    started, release = threading.Event(), threading.Event()
    errors = []

    def slow_progress(done, total):
        if done:
            started.set()
            release.wait(30)

    def run():
        try:
            W.evaluate_window(db, "2026-H1", evaluator=evaluator, progress=slow_progress)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(30)
    with pytest.raises(Conflict, match="另一个评估进程"):
        W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    release.set()
    t.join()
    assert not errors
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)  # the lease was released


def test_import_reports_every_bad_cell_and_imports_nothing(db):
    W.open_window(db, "2026-H1", **H1)
    good = profiles_csv([make_profile(10, certs=1), make_profile(11, certs=1)]).decode("utf-8-sig")
    lines = good.splitlines()
    header = lines[0].split(",")
    col = {h: i for i, h in enumerate(header)}
    bad_uscc = lines[1].split(",")
    bad_uscc[col["统一社会信用代码"]] = "91512000MA0000010X"
    bad_date = lines[2].split(",")
    bad_date[col["成立日期"]] = "2019-13-45"
    bad_date[col["全年季度平均从业人数"]] = "八十"
    dup = list(bad_date)
    dup[col["成立日期"]] = "2019-01-01"
    dup[col["全年季度平均从业人数"]] = "80"
    dup[col["注册证编号"]] = lines[1].split(",")[col["注册证编号"]]  # same certificate as row 2
    text = "\n".join([lines[0], ",".join(bad_uscc), ",".join(bad_date), ",".join(dup)]) + "\n"
    with pytest.raises(ImportRejected) as e:
        import_applications(db, "2026-H1", text.encode("utf-8-sig"), "apps.csv")
    where = {(p.row, p.column) for p in e.value.problems}
    assert (2, "统一社会信用代码") in where
    assert (3, "成立日期") in where and (3, "全年季度平均从业人数") in where
    assert (4, "注册证编号") in where
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Enterprise)) == 0

    # --skip-invalid: nothing of the bad enterprises, and the report still names the rows
    ok = profiles_csv([make_profile(12, certs=0)]).decode("utf-8-sig").splitlines()[1]
    rep = import_applications(db, "2026-H1", (text + ok + "\n").encode("utf-8-sig"), "apps.csv",
                              skip_invalid=True)
    assert rep.created == 1 and len(rep.access_codes) == 1
    assert {p.row for p in rep.problems} >= {2, 3, 4}


def test_import_wrong_headers_and_xlsx_template(db):
    W.open_window(db, "2026-H1", **H1)
    with pytest.raises(ImportRejected) as e:
        import_applications(db, "2026-H1", "企业名,统一社会信用代码\nx,y\n".encode(), "a.csv")
    msgs = {(p.column, p.message) for p in e.value.problems}
    assert ("企业名", "无法识别的列名（请使用导入模板中的列名）") in msgs
    assert any(c == "企业名称" and "缺少" in m for c, m in msgs)

    rep = import_applications(db, "2026-H1", template_bytes("xlsx"), "template.xlsx")
    assert rep.created == 1
    again = import_applications(db, "2026-H1", template_bytes("xlsx"), "template.xlsx")
    assert again.created == 0 and again.unchanged == 1 and again.access_codes == []


def test_reimport_is_idempotent_and_registry_is_proactive(db, evaluator):
    W.open_window(db, "2026-H1", **H1)
    apps = [make_profile(i) for i in range(20, 30)]
    data = profiles_csv(apps)
    r1 = import_applications(db, "2026-H1", data, "a.csv")
    r2 = import_applications(db, "2026-H1", data, "a.csv")
    assert (r1.created, r2.created, r2.unchanged) == (10, 0, 10)
    registry = [_eligible_grant_profile(i) for i in range(40, 43)]
    import_registry(db, profiles_csv(registry), "registry.csv")
    import_registry(db, profiles_csv(registry), "registry.csv")
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Enterprise)) == 13
        assert s.scalar(select(func.count()).select_from(ProfileSnapshot)) == 13
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    pro = W.proactive(db, "2026-H1")
    pro_usccs = {e["uscc"] for e in pro}
    assert pro_usccs <= {p["uscc"] for p in registry} and pro_usccs
    # A registry enterprise that applies leaves the proactive list.
    one = registry[0]
    W.submit_application(db, "2026-H1", one)
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    assert one["uscc"] not in {e["uscc"] for e in W.proactive(db, "2026-H1")}


def test_changed_profile_makes_new_snapshot_and_stale_window(db, evaluator):
    W.open_window(db, "2026-H1", **H1)
    p = make_profile(50)
    W.submit_application(db, "2026-H1", p)
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    assert W.get_window(db, "2026-H1")["state"] == "evaluated"
    W.submit_application(db, "2026-H1", {**p, "employees_avg": 7})
    assert W.get_window(db, "2026-H1")["state"] == "open"
    with pytest.raises(Conflict, match="请先执行评估"):
        W.close_window(db, "2026-H1")
    with db.read_session() as s:
        versions = s.scalars(select(ProfileSnapshot.version).where(ProfileSnapshot.uscc == p["uscc"])).all()
    assert sorted(versions) == [1, 2]
    res = W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    assert res.evaluated == 1
