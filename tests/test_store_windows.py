"""The window as a case process, at store level, on SQLite and PostgreSQL: acceptance period,
一次告知 and 补正 with their deadline, 公示 and close, refused transitions, concurrent staff
actions, and the history entry of every state change."""
from __future__ import annotations

import io
import threading
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from engine.workdays import UnknownYearError, default_calendar, service_limits
from store import applications as A
from store import audit, awards, cases, rulesets
from store import windows as W
from store.db import Database
from store.errors import Conflict, NotFound, ValidationFailed
from store.applications import ImportRejected
from store.intake import template_bytes
from store.models import Application, ApplicationEvent, AuditLog, Award, Enterprise, Notice, Window
from store.workdays import horizon_warning
from store_fixtures import (  # noqa: F401  (fixtures)
    AFTER_H1, IN_H1, app_of, assert_history_complete, db, evaluate, events_of, filled_template,
    grant_profile, grant_rows, make_profile, make_store_url, notices_of, open_h1, profiles_csv, proofs, sigkill, store_url,
    submit_all, uscc_of,
)

ORIGIN = "device_registrations[0].origin"


def test_open_window_defaults_problems_and_duplicate(db):
    w = W.open_window(db, "2026-H1")
    assert (w.opens_on, w.closes_on, w.as_of) == (date(2026, 3, 1), date(2026, 3, 31), date(2026, 3, 31))
    assert (w.coverage_from, w.state, w.state_text) == (date(2025, 10, 1), "open", "受理中")
    limits = service_limits()
    assert (w.correction_workdays, w.publicity_workdays) == (limits["correction"].workdays,
                                                             limits["publicity"].workdays)
    with pytest.raises(Conflict, match="2026-H1 已存在"):
        W.open_window(db, "2026-H1")
    with pytest.raises(ValidationFailed) as e:   # every problem at once, each naming its field
        W.open_window(db, "special", opens_on="2026-05-02", closes_on="2026-05-01", as_of="nope",
                      correction_workdays=0)
    paths = {p.path for p in e.value.problems}
    assert {"as_of", "closes_on", "coverage_from", "coverage_to", "correction_workdays"} <= paths
    assert all("\u4e00" <= p.message[0] <= "\u9fff" for p in e.value.problems)
    assert [x.id for x in W.list_windows(db)] == ["2026-H1"]
    with pytest.raises(NotFound, match="2030-H1"):
        W.get_window(db, "2030-H1")


def test_applications_only_within_the_acceptance_period(db):
    open_h1(db)
    p = grant_profile(1)
    for day, when in ((date(2026, 2, 28), "尚未开始"), (date(2026, 4, 1), "已结束")):
        with pytest.raises(Conflict) as e:
            A.submit_application(db, "2026-H1", p, today=day)
        assert "2026年3月1日至2026年3月31日" in e.value.message and when in e.value.message
        with pytest.raises(Conflict, match="2026年3月1日至2026年3月31日"):
            A.import_applications(db, "2026-H1", profiles_csv([p]), "apps.csv", today=day)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Enterprise)) == 0
    for day in (date(2026, 3, 1), date(2026, 3, 31)):       # both ends are inside
        A.submit_application(db, "2026-H1", p, today=day)


def test_an_import_report_lists_every_problem_at_once(db, registry):
    """A row whose certificate has an unreadable cell is still checked as a profile: the one
    report names the out-of-range headcount on the enterprise's row as well as the bad cell
    (the headcount once surfaced only after the cell was fixed and the file imported again)."""
    open_h1(db)
    wb = load_workbook(io.BytesIO(filled_template(registry)))

    def put(sheet: str, header: str, value) -> None:
        ws = wb[sheet]
        col = next(c.column for c in ws[1] if c.value == header)
        ws.cell(row=2, column=col, value=value)

    put("企业信息", registry.fields["employees_avg"].column, -5)
    put("注册证", "管理类别（第一类/第二类/第三类）", "2类")
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(ImportRejected) as e:
        A.import_applications(db, "2026-H1", buf.getvalue(), "申报.xlsx", today=IN_H1)
    text = [str(p) for p in e.value.problems]
    assert any("第2行" in t and "从业人数" in t and "不能小于 0" in t for t in text), text
    assert any("管理类别" in t and "2类" in t for t in text), text
    assert len(text) == len(set(text)) == 2, text                  # each once, nothing else


def test_the_import_templates_example_row_is_never_an_applicant(db, registry):
    open_h1(db)
    with pytest.raises(ImportRejected) as e:            # the untouched template imports nothing
        A.import_applications(db, "2026-H1", template_bytes(registry), "模板.xlsx", today=IN_H1)
    assert "没有可导入的数据" in e.value.problems[0].message
    # The template as a user fills it: one real enterprise in 企业信息 and its certificate;
    # the example sheet stays in the file.
    wb = load_workbook(io.BytesIO(filled_template(registry)))
    example = registry.fields["uscc"].example
    assert "填写示例" in wb.sheetnames
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value == example:
                    cell.value = uscc_of(7)
    buf = io.BytesIO()
    wb.save(buf)
    rep = A.import_applications(db, "2026-H1", buf.getvalue(), "申报.xlsx", today=IN_H1)
    assert (rep.created, rep.enterprises) == (1, 1)
    with db.read_session() as s:
        assert set(s.scalars(select(Enterprise.uscc))) == {uscc_of(7)}
        assert set(s.scalars(select(Application.uscc))) == {uscc_of(7)}


def _three(db, **window):
    """A eligible, B with its certificate's origin unknown, C outside the park; judged."""
    open_h1(db, **window)
    subs = submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2, origin=None), grant_profile(3, in_park=False)])
    evaluate(db, "2026-H1")
    return [s.application_id for s in subs]


def test_correction_only_after_a_one_time_notice_and_before_its_deadline(db):
    a, b, c = _three(db)
    with pytest.raises(Conflict, match="已判定"):        # judged, but no one-time notice yet
        cases.submit_correction(db, b, {ORIGIN: "self_developed"}, [], actor="企业", today=AFTER_H1)
    assert cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1) == 2
    # 10 working days (rules/workdays/service-limits.yaml) after Wednesday 1 April 2026, the
    # 清明 holiday (4–6 April) not counted.
    assert service_limits()["correction"].workdays == 10
    for x in (b, c):
        assert app_of(db, x).state == "correction" and app_of(db, x).correction_due == date(2026, 4, 16)
    assert app_of(db, a).state == "judged"
    assert set(notices_of(db, "2026-H1", "one_time")) == {b, c}
    ask = cases.detail(db, b, today=AFTER_H1).correction
    assert ask.open and ask.due == date(2026, 4, 16) and ORIGIN in ask.facts
    with pytest.raises(ValidationFailed) as e:           # only what the notice asked for
        cases.submit_correction(db, b, {"in_park": True}, [], actor="企业", today=AFTER_H1)
    assert [p.path for p in e.value.problems] == ["in_park"]
    with pytest.raises(Conflict, match="没有待补正"):
        cases.submit_correction(db, a, {ORIGIN: "self_developed"}, [], actor="企业", today=AFTER_H1)
    # A fact stated needs the proof the notice asked for with it: all of it is named at once, and
    # nothing is stored. The 注册变更文件 asked while the origin was unknown is moot for a
    # self-developed product.
    with pytest.raises(ValidationFailed) as e:
        cases.submit_correction(db, b, {ORIGIN: "self_developed"}, [], actor="企业", today=date(2026, 4, 16))
    cert = cases.detail(db, b).grants[0].result.subject.id
    assert sorted(p.path for p in e.value.problems) == [
        f"files.{GRANT}|{cert}|commitment_letter", f"files.{GRANT}|{cert}|registration_certificate"]
    assert all("证明材料" in p.message for p in e.value.problems) and app_of(db, b).state == "correction"
    given = proofs(db, b, leave=("registrant_change_document",))
    d = cases.submit_correction(db, b, {ORIGIN: "self_developed"}, given, actor="企业", today=date(2026, 4, 16))
    assert d.state == "corrected" and [g.final_status for g in d.grants] == ["eligible"]
    (said,) = [e for e in d.events if e.action == "correction"]
    assert "医疗器械注册变更文件" in str(said.details) and "注册证及其附件" not in str(said.details), said
    # The same 补正 sent again (a retry after a timeout) gets the application as it left it, and
    # is not recorded twice.
    again = cases.submit_correction(db, b, {ORIGIN: "self_developed"}, given, actor="企业", today=date(2026, 4, 16))
    assert again.state == "corrected" and [e.action for e in again.events] == [e.action for e in d.events]
    with pytest.raises(Conflict, match="补正已于"):       # the same facts with another file: not a retry
        cases.submit_correction(db, b, {ORIGIN: "self_developed"}, [(*given[0][:-1], given[0][-1] + b"x")],
                                actor="企业", today=date(2026, 4, 16))
    with pytest.raises(Conflict, match="补正已于 .* 提交，一次性告知的补正只能提交一次"):         # once
        cases.submit_correction(db, b, {ORIGIN: "introduced"}, [], actor="企业", today=date(2026, 4, 16))
    with pytest.raises(Conflict, match="2026年4月16日"):  # after the deadline
        cases.submit_correction(db, c, {}, [], actor="企业", today=date(2026, 4, 17))
    assert app_of(db, c).state == "correction"
    # The page stops offering 补正 once the deadline has passed, and says so.
    before, after = cases.detail(db, c, today=date(2026, 4, 16)), cases.detail(db, c, today=date(2026, 4, 17))
    assert (before.state_text, before.correction_open, before.correction_expired) == ("待补正", True, False)
    assert (after.state_text, after.correction_open, after.correction_expired) == ("补正期限已过", False, True)
    assert after.correction_deadline == date(2026, 4, 16)


def test_the_windows_correction_period_replaces_the_default(db):
    _, b, _ = _three(db, correction_workdays=3)
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    assert app_of(db, b).correction_due == date(2026, 4, 7)      # 2, 3 and 7 April


def _first_year_without_a_schedule() -> int:
    year = 2026
    while True:
        try:
            default_calendar().schedule(year)
        except UnknownYearError:
            return year
        year += 1


def test_a_year_without_a_holiday_schedule_refuses_the_step_and_names_the_file(db, monkeypatch):
    import engine.workdays

    # the shipped schedules, without the stand-in years the tests otherwise run with (conftest)
    monkeypatch.setattr(engine.workdays, "_default", engine.workdays.WorkdayCalendar(engine.workdays.DEFAULT_SCHEDULE_DIR))
    y = _first_year_without_a_schedule()
    W.open_window(db, "Q4", opens_on=f"{y - 1}-12-01", closes_on=f"{y - 1}-12-20",
                  coverage_from=f"{y - 1}-04-01", coverage_to=f"{y - 1}-12-20")
    (sub,) = submit_all(db, "Q4", [grant_profile(1, in_park=False, obtained_on=f"{y - 1}-06-01")],
                        today=date(y - 1, 12, 10))
    evaluate(db, "Q4")
    late = date(y - 1, 12, 28)          # 补正 and 公示 periods counted from here end in year y
    for step in (lambda: cases.issue_one_time_notices(db, "Q4", today=late),
                 lambda: awards.publish(db, "Q4", today=late)):
        with pytest.raises(Conflict) as e:             # 409 in the API and the console
            step()
        assert f"rules/workdays/{y}.yaml" in e.value.message and "\n" not in e.value.message
    assert app_of(db, sub.application_id).state == "judged" and notices_of(db, "Q4", "one_time") == {}
    assert W.get_window(db, "Q4").state == "open"
    # The start-up check warns while the missing year is within about six months.
    assert horizon_warning(date(y - 1, 3, 1)) is None
    warning = horizon_warning(date(y - 1, 11, 30))
    assert f"rules/workdays/{y}.yaml" in warning and "\n" not in warning


def test_publish_and_close_only_in_order(db):
    a, b, c = _three(db)
    with pytest.raises(Conflict, match="2026年3月31日"):
        awards.publish(db, "2026-H1", today=IN_H1)
    for reason in (None, "提前关闭"):       # never paid before its list was publicized, with a reason or not
        with pytest.raises(Conflict, match="尚未公示：拟支持名单须先公示"):
            awards.close_window(db, "2026-H1", today=AFTER_H1, reason=reason)
        assert awards.close_preview(db, "2026-H1", today=AFTER_H1)["blocked"]
    w = awards.publish(db, "2026-H1", today=AFTER_H1)
    # 5 working days, the day of publishing not counted (出具当日不计入): 2, 3, 7, 8 and 9 April
    assert w.state == "publicity" and (w.publicity_from, w.publicity_until) == (date(2026, 4, 2), date(2026, 4, 9))
    assert app_of(db, a).state == "publicized"
    with pytest.raises(Conflict, match="公示中"):
        awards.publish(db, "2026-H1", today=AFTER_H1)
    with pytest.raises(ValidationFailed, match="2026年4月9日"):
        awards.close_window(db, "2026-H1", today=date(2026, 4, 9))
    res = awards.close_window(db, "2026-H1", today=date(2026, 4, 10), actor="管理员")
    assert [x.application_id for x in res.awards] == [a] and res.refused == sorted([b, c])
    assert W.get_window(db, "2026-H1").state == "closed"
    # Everything after closing is refused with the store's typed errors, in Chinese.
    refused = [
        (Conflict, lambda: A.submit_application(db, "2026-H1", grant_profile(9), today=IN_H1)),
        (Conflict, lambda: evaluate(db, "2026-H1")),
        (Conflict, lambda: cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)),
        (Conflict, lambda: cases.review(db, a, "device-registration-grant", grant_profile(1)["device_registrations"][0]
                                        ["certificate_no"], "confirm", None, None, actor="经办人")),
        (Conflict, lambda: cases.raise_objection(db, a, "有异议", actor="公众")),
        (Conflict, lambda: awards.publish(db, "2026-H1", today=AFTER_H1)),
        (Conflict, lambda: awards.close_window(db, "2026-H1", reason="再次关闭", today=date(2026, 5, 1))),
        (Conflict, lambda: cases.submit_correction(db, c, {}, [], actor="企业", today=AFTER_H1)),
        (NotFound, lambda: cases.detail(db, "A0000000000000000")),
    ]
    for kind, call in refused:
        with pytest.raises(kind) as e:
            call()
        assert any("\u4e00" <= ch <= "\u9fff" for ch in e.value.message)
    assert len(res.awards) == len({(x.benefit_id, x.subject_id) for x in res.awards})


def test_an_admin_may_close_early_only_with_a_written_reason(db):
    """During the 公示 period, before it ends (after it, no reason is asked)."""
    a, _, _ = _three(db)
    awards.publish(db, "2026-H1", today=AFTER_H1)
    with pytest.raises(ValidationFailed, match="公示期至"):
        awards.close_window(db, "2026-H1", reason="   ", today=AFTER_H1)
    res = awards.close_window(db, "2026-H1", reason="管委会通知提前兑现", actor="管理员", today=AFTER_H1)
    assert [x.application_id for x in res.awards] == [a]
    w = W.get_window(db, "2026-H1")
    assert w.state == "closed" and w.close_reason == "管委会通知提前兑现"
    with db.read_session() as s:
        row = s.execute(select(AuditLog).where(AuditLog.action == "window.close")).scalar_one()
    assert row.actor == "管理员" and row.details["early_reason"] == "管委会通知提前兑现"


def _race(fns) -> tuple[list, list]:
    """Run the callables at the same moment in threads; (results, errors)."""
    barrier = threading.Barrier(len(fns))
    results, errors = [], []

    def go(fn):
        try:
            barrier.wait()
            results.append(fn())
        except Exception as e:  # noqa: BLE001 — collected for the assertions
            errors.append(e)

    ts = [threading.Thread(target=go, args=(fn,)) for fn in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return results, errors


def test_concurrent_reviews_of_one_application_one_wins(store_url):
    db = Database(store_url)
    try:
        a, _, _ = _three(db)
        cert = grant_profile(1)["device_registrations"][0]["certificate_no"]
        rev = app_of(db, a).revision
        dbs = [Database(store_url) for _ in range(2)]
        results, errors = _race([
            lambda: cases.review(dbs[0], a, "device-registration-grant", cert, "confirm", None, None,
                                 actor="经办人甲", revision=rev),
            lambda: cases.review(dbs[1], a, "device-registration-grant", cert, "override", "ineligible",
                                 "注册证复印件与原件不符", actor="经办人乙", revision=rev)])
        for d in dbs:
            d.dispose()
        assert len(results) == 1 and len(errors) == 1
        assert isinstance(errors[0], Conflict)
        assert "已被他人更新" in errors[0].message and "当前状态：已判定" in errors[0].message
        reviews = [e for e in events_of(db, a) if e.action.startswith("review.")]
        assert len(reviews) == 1
    finally:
        db.dispose()


def test_concurrent_corrections_one_wins(store_url):
    db = Database(store_url)
    try:
        open_h1(db)          # two applications whose certificate's origin the 补正 is asked for
        b, c = (x.application_id for x in submit_all(db, "2026-H1", [grant_profile(2, origin=None),
                                                                    grant_profile(5, origin=None)]))
        evaluate(db, "2026-H1")
        cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
        dbs = [Database(store_url) for _ in range(2)]
        files_ = proofs(db, b)
        results, errors = _race([
            lambda d=d: cases.submit_correction(d, b, {ORIGIN: "self_developed"}, files_, actor="企业", today=AFTER_H1)
            for d in dbs])
        # the same 补正 twice at once (a double tap): both get the one result, stored once
        assert len(results) == 2 and not errors and {r.state for r in results} == {"corrected"}
        assert [e.action for e in events_of(db, b)].count("correction") == 1
        files_ = proofs(db, c)
        results, errors = _race([     # two different ones: the second is refused
            lambda d=d, o=o: cases.submit_correction(d, c, {ORIGIN: o}, files_, actor="企业", today=AFTER_H1)
            for d, o in zip(dbs, ("self_developed", "introduced"))])
        assert len(results) == 1 and len(errors) == 1
        assert isinstance(errors[0], Conflict) and "只能提交一次" in errors[0].message
        assert [e.action for e in events_of(db, c)].count("correction") == 1
        for d in dbs:
            d.dispose()
    finally:
        db.dispose()


def test_every_state_change_has_its_history_entry(db):
    """Submitted, imported, resubmitted, judged, notified, corrected, reviewed, published,
    awarded and refused: each application's history accounts for every state it passed."""
    open_h1(db)
    subs = submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2, origin=None)])
    A.import_applications(db, "2026-H1", profiles_csv([grant_profile(3, in_park=False), grant_profile(4)]),
                          "apps.csv", today=IN_H1)
    evaluate(db, "2026-H1")
    assert_history_complete(db, "2026-H1")
    A.submit_application(db, "2026-H1", grant_profile(1, employees_avg=50), today=IN_H1)   # judged → received
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    cases.submit_correction(db, subs[1].application_id, {ORIGIN: "introduced"}, proofs(db, subs[1].application_id),
                            actor="企业", today=AFTER_H1)
    assert_history_complete(db, "2026-H1")
    with pytest.raises(Conflict, match="2026年4月16日"):     # 补正 still open for the third
        awards.publish(db, "2026-H1", today=AFTER_H1)
    awards.publish(db, "2026-H1", today=date(2026, 4, 17))
    awards.close_window(db, "2026-H1", today=date(2026, 4, 27))
    assert_history_complete(db, "2026-H1")
    assert all(e.action_text != e.action for e in cases.detail(db, subs[1].application_id).events)
    with db.read_session() as s:
        states = dict(s.execute(select(Application.uscc, Application.state)).all())
    assert states == {uscc_of(1): "awarded", uscc_of(2): "awarded", uscc_of(3): "refused", uscc_of(4): "awarded"}


def test_a_confirmation_after_a_changed_verdict_is_told_as_taking_it_back(db):
    """复核 changed a verdict, then a second 复核 kept the rules' verdict: the history says the
    change was taken back (it said 维持判定, as if nothing had been changed)."""
    open_h1(db)
    (sub,) = submit_all(db, "2026-H1", [grant_profile(1)])
    evaluate(db, "2026-H1")
    a, cert = sub.application_id, grant_profile(1)["device_registrations"][0]["certificate_no"]
    cases.review(db, a, "device-registration-grant", cert, "confirm", None, None, actor="经办人")
    cases.review(db, a, "device-registration-grant", cert, "override", "ineligible", "现场核查未入园", actor="经办人")
    cases.review(db, a, "device-registration-grant", cert, "confirm", None, "复查已入园", actor="科长")
    texts = [e.action_text for e in cases.detail(db, a).events if e.action.startswith("review.")]
    assert texts[0].startswith("复核：维持判定") and texts[1].startswith("复核：改变判定"), texts
    assert texts[2].startswith("复核：撤销此前的改判，恢复规则判定（"), texts
    assert cases.detail(db, a).grants[0].final_status == "eligible"


def test_a_state_change_and_its_history_entry_are_one_transaction(db, monkeypatch):
    _, b, c = _three(db)
    calls = []
    real = audit.event

    def fail_on_second(s, application_id, *args, **kw):
        calls.append(application_id)
        if len(calls) == 2:
            raise RuntimeError("crash between two applications")
        return real(s, application_id, *args, **kw)

    monkeypatch.setattr(audit, "event", fail_on_second)
    with pytest.raises(RuntimeError):
        cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    monkeypatch.setattr(audit, "event", real)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 0
        assert set(s.scalars(select(Application.state))) == {"judged"}
        assert s.scalar(select(func.count()).where(ApplicationEvent.action == "notice.one_time")) == 0
    assert cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1) == 2
    awards.publish(db, "2026-H1", today=date(2026, 4, 17))         # after the 补正 deadline
    real_many = audit.events

    def crash_after_history(s, window_id, rows):     # the ledger and the history written, not committed
        real_many(s, window_id, rows)
        raise RuntimeError("crash inside close")

    monkeypatch.setattr(audit, "events", crash_after_history)
    with pytest.raises(RuntimeError):
        awards.close_window(db, "2026-H1", reason="测试", today=date(2026, 4, 17))
    monkeypatch.setattr(audit, "events", real_many)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Award)) == 0
    assert W.get_window(db, "2026-H1").state == "publicity"
    assert_history_complete(db, "2026-H1")


def test_the_application_list_searches_and_filters_on_what_was_applied_for(db):
    two = grant_profile(5, certs=2)
    two["device_registrations"][1]["obtained_on"] = "2024-01-01"         # outside coverage: ineligible
    a, b, c = _three(db)
    d = A.submit_application(db, "2026-H1", two, [two["device_registrations"][0]["certificate_no"]],
                             today=IN_H1).application_id
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)

    def ids(**kw):
        total, rows = A.list_applications(db, "2026-H1", **kw)
        assert total == len(rows)
        return {r.application_id for r in rows}

    assert ids() == {a, b, c, d}
    rows = {r.application_id: r for r in A.list_applications(db, "2026-H1", today=AFTER_H1)[1]}
    assert rows[d].grant_statuses == {"eligible": 1}          # its unclaimed certificate is not counted
    assert (rows[c].state_text, rows[c].grant_statuses) == ("待补正", {"ineligible": 1})
    late = {r.application_id: r for r in A.list_applications(db, "2026-H1", today=date(2026, 4, 17))[1]}
    assert late[c].state_text == "补正期限已过"
    assert ids(status="ineligible") == {c} and ids(status="eligible") == {a, d}
    assert ids(correction_pending=True) == {b, c} and ids(state="judged") == {a, d}
    assert ids(q="测试企业5") == {d} and ids(q=uscc_of(1)[-6:]) == {a}
    assert ids(q="%") == ids(q="_") == ids(q="测试企业%") == set()        # typed characters, not wildcards
    assert W.get_window(db, "2026-H1").counts.grant_decisions == {"eligible": 2, "needs_info": 1, "ineligible": 1}
    # both 补正 deadlines (16 April 2026) are past by now: counted apart from the open ones
    counts = W.get_window(db, "2026-H1").counts
    assert counts.by_state["correction"] == 2 and counts.correction_overdue == 2
    cases.review(db, a, "device-registration-grant", grant_profile(1)["device_registrations"][0]["certificate_no"],
                 "confirm", None, None, actor="经办人")
    assert ids(reviewed=True) == {a} and ids(reviewed=False) == {b, c, d}


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
GRANT = "device-registration-grant"
CHANGE_DOC = "registrant_change_document"


def test_a_material_whose_condition_the_facts_contradict_cannot_be_promised(db):
    """容缺 defers a missing proof: the credit report of an enterprise whose profile says it is
    on the serious-dishonesty list is still asked for (to prove otherwise), but not offered for a
    commitment, which could not change the verdict; the same report with the fact unknown is."""
    open_h1(db)
    listed, unknown = grant_profile(11, on_serious_dishonest_list=True), grant_profile(12)
    del unknown["on_serious_dishonest_list"]
    (a, b) = (x.application_id for x in submit_all(db, "2026-H1", [listed, unknown]))
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)

    def credit_report(app):
        [m] = [m for m in cases.detail(db, app, today=AFTER_H1).correction.materials if m["material_id"] == "credit_report"]
        return m["deferrable"]

    assert credit_report(a) is False and credit_report(b) is True
    with pytest.raises(Conflict, match="已判定为不满足"):
        cases.commit_material(db, a, GRANT, "credit_report", "王五", actor="企业", today=AFTER_H1)
    cases.commit_material(db, b, GRANT, "credit_report", "王五", actor="企业", today=AFTER_H1)
    (open_one,) = awards.close_preview(db, "2026-H1", today=AFTER_H1)["unsupplied_commitments"]
    assert (open_one["application_id"], open_one["material"]) == (b, "企业信用报告（无违法违规记录版）")
    # the promised file: until the deadline only, once, and a rejected one may be replaced
    (c,) = [c for g in cases.detail(db, b).grants for c in g.promised]
    cert = c.subject_id
    assert cert == ""                   # a report about the enterprise: promised for all its certificates
    late = c.due_on + timedelta(days=1)
    with pytest.raises(Conflict, match="承诺期限已于"):
        cases.supply_promised(db, b, GRANT, cert, "credit_report", "报告.pdf", PDF, actor="企业", today=late)
    with pytest.raises(NotFound):
        cases.supply_promised(db, a, GRANT, cert, "credit_report", "报告.pdf", PDF, actor="企业", today=AFTER_H1)
    cases.supply_promised(db, b, GRANT, cert, "credit_report", "报告.pdf", PDF, actor="企业", today=AFTER_H1)
    with pytest.raises(Conflict, match="已补交"):
        cases.supply_promised(db, b, GRANT, cert, "credit_report", "又一份.pdf", PDF, actor="企业", today=AFTER_H1)
    (g,) = cases.detail(db, b).grants
    assert g.promised[0].supplied and [m.filename for m in g.materials] == ["报告.pdf"]
    cases.review_material(db, b, g.materials[0].id, False, "报告已过期", actor="经办人", today=AFTER_H1)
    assert not cases.detail(db, b).grants[0].promised[0].supplied
    cases.supply_promised(db, b, GRANT, cert, "credit_report", "新报告.pdf", PDF, actor="企业", today=AFTER_H1)
    assert cases.detail(db, b).grants[0].promised[0].supplied
    assert awards.close_preview(db, "2026-H1", today=AFTER_H1)["unsupplied_commitments"] == []


def test_a_file_counts_only_for_the_certificate_it_was_uploaded_for(db):
    open_h1(db)
    p = grant_profile(8, origin=None, certs=2)
    del p["on_serious_dishonest_list"]                  # unknown: its credit report may be promised
    (sub,) = submit_all(db, "2026-H1", [p])
    app = sub.application_id
    c0, c1 = (r["certificate_no"] for r in p["device_registrations"])
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)

    def asked():
        return {(m["subject_id"], m["material_id"]) for m in cases.detail(db, app, today=AFTER_H1).correction.materials}

    # the change document per certificate; the credit report, about the enterprise, once
    assert {(c0, CHANGE_DOC), (c1, CHANGE_DOC), ("", "credit_report")} <= asked()
    assert not {(c0, "credit_report"), (c1, "credit_report")} & asked()
    cases.commit_material(db, app, GRANT, "credit_report", "王五", actor="企业", subject_id="", today=AFTER_H1)
    assert ("", "credit_report") not in asked()
    promised = {g.result.subject.id: g.promised for g in cases.detail(db, app, today=AFTER_H1).grants}
    assert [(x.signer, x.name) for x in promised[c0]] == [("王五", "企业信用报告（无违法违规记录版）")] == \
        [(x.signer, x.name) for x in promised[c1]]          # one promise, for both certificates
    with pytest.raises(ValidationFailed) as e:       # without its certificate the file is ambiguous here
        cases.submit_correction(db, app, {}, [(GRANT, CHANGE_DOC, "变更文件.pdf", PDF)], actor="企业", today=AFTER_H1)
    assert "多个注册证" in e.value.problems[0].message
    with pytest.raises(ValidationFailed) as e:
        cases.upload_material(db, app, GRANT, CHANGE_DOC, "扫描件.pdf", PDF, actor="经办人")
    assert e.value.problems[0].path == "subject_id"
    # the first certificate is stated to be introduced, with its proof; the second stays unknown
    d = cases.submit_correction(db, app, {"device_registrations[0].origin": "introduced"},
                                [(GRANT, c0, CHANGE_DOC, "变更文件.pdf", PDF)]
                                + [p for p in proofs(db, app, leave=(CHANGE_DOC,)) if p[1] == c0],
                                actor="企业", today=AFTER_H1)
    by_cert = {g.result.subject.id: g for g in d.grants}
    assert [(m.subject_id, m.filename) for m in by_cert[c0].materials if m.material_id == CHANGE_DOC] \
        == [(c0, "变更文件.pdf")]
    assert by_cert[c1].materials == []
    cases.upload_material(db, app, GRANT, CHANGE_DOC, "扫描件.pdf", PDF, actor="经办人", subject_id=c1)
    by_cert = {g.result.subject.id: g for g in cases.detail(db, app, today=AFTER_H1).grants}
    assert [m.filename for m in by_cert[c1].materials] == ["扫描件.pdf"]
    # Rejecting one certificate's file leaves the other's as it was.
    (doc,) = [m for m in by_cert[c0].materials if m.material_id == CHANGE_DOC]
    cases.review_material(db, app, doc.id, False, "未盖章", actor="经办人", today=AFTER_H1)
    by_cert = {g.result.subject.id: g for g in cases.detail(db, app, today=AFTER_H1).grants}
    assert [m.state for m in by_cert[c0].materials if m.material_id == CHANGE_DOC] == ["rejected"]
    assert [m.state for m in by_cert[c1].materials] == ["pending"]
    # staff scanning a report about the enterprise need not choose a certificate: it counts for both
    cases.upload_material(db, app, GRANT, "credit_report", "信用报告.pdf", PDF, actor="经办人")
    assert all("信用报告.pdf" in [m.filename for m in g.materials] for g in cases.detail(db, app, today=AFTER_H1).grants)


def test_a_rejected_file_reopens_the_correction_and_holds_its_award(db):
    a, b, c = _three(db)
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    cert = grant_profile(2)["device_registrations"][0]["certificate_no"]
    d = cases.submit_correction(db, b, {ORIGIN: "introduced"}, [(GRANT, cert, CHANGE_DOC, "变更文件.pdf", PDF)]
                                + proofs(db, b, leave=(CHANGE_DOC,)), actor="企业", today=AFTER_H1)
    (m,) = [x for x in d.grants[0].materials if x.material_id == CHANGE_DOC]
    assert (m.state_text, m.content_type, d.grants[0].final_status) == ("待审核", "application/pdf", "eligible")
    with pytest.raises(ValidationFailed) as e:
        cases.review_material(db, b, m.id, False, " ", actor="经办人", today=AFTER_H1)
    assert e.value.problems[0].path == "reason"
    cases.review_material(db, b, m.id, False, "变更文件未盖章", actor="经办人", today=AFTER_H1)
    # Reopened while the deadline allows, asking for the rejected file although the verdict
    # is eligible; the enterprise uploads a replacement.
    d = cases.detail(db, b, today=AFTER_H1)
    assert d.state == "correction" and d.correction_open and d.grants[0].materials[0].reason == "变更文件未盖章"
    assert [(x["subject_id"], x["material_id"], x["rejected"], x["reason"]) for x in d.correction.materials] == [
        (cert, CHANGE_DOC, True, "变更文件未盖章")]
    with pytest.raises(Conflict, match="已审核"):
        cases.review_material(db, b, m.id, True, None, actor="经办人", today=AFTER_H1)
    d = cases.submit_correction(db, b, {}, [(GRANT, cert, CHANGE_DOC, "盖章后.pdf", PDF)], actor="企业",
                                today=AFTER_H1)
    assert d.state == "corrected" and d.correction.materials == []
    # The close preview says which 补正 deadlines still run (C has not answered), and which
    # uploaded files nobody has reviewed yet.
    preview = awards.close_preview(db, "2026-H1", today=AFTER_H1)
    assert (preview["corrections_running"], preview["corrections_until"]) == (1, date(2026, 4, 16))
    assert preview["pending_materials"] == 3        # the replacement, and the other two proofs
    assert [(x["application_id"], sorted(x["materials"])) for x in preview["pending_material_applications"]] == [
        (b, ["医疗器械注册变更文件（注册人变更至本企业）", "医疗器械注册证及其附件复印件", "申报承诺书"])]
    # The replacement of a refused file holds the award until reviewed (the other two files,
    # never refused, are only listed as not reviewed).
    assert [(x["application_id"], x["materials"]) for x in preview["rejected_materials"]] == [
        (b, ["医疗器械注册变更文件（注册人变更至本企业）（补交的文件尚未审核）"])]
    # The replacement is rejected after the deadline: nothing reopens, and the award is held —
    # neither published nor paid — until staff decide.
    late = date(2026, 4, 17)
    replacement = cases.detail(db, b, today=late).grants[0].materials[-1]
    cases.review_material(db, b, replacement.id, False, "仍未盖章", actor="经办人", today=late)
    d = cases.detail(db, b, today=late)
    assert d.state == "corrected" and not d.correction_open
    with pytest.raises(Conflict) as e:             # (nor closed: a close needs its 公示 first)
        awards.publish(db, "2026-H1", today=late)
    assert b in e.value.message and "医疗器械注册变更文件" in e.value.message and a not in e.value.message
    assert [x["application_id"] for x in awards.close_preview(db, "2026-H1", today=late)["rejected_materials"]] == [b]
    cases.review(db, b, GRANT, cert, "override", "ineligible", "注册人变更文件未按要求补正", actor="经办人")
    with pytest.raises(Conflict, match="公示期"):
        cases.raise_objection(db, a, "该企业不在园区", actor="公众")
    w = awards.publish(db, "2026-H1", today=late)       # Friday: 公示 runs from Monday, five working days
    assert cases.detail(db, b, today=late).correction_deadline is None     # 补正 is over once publicized
    assert (w.publicity_from, w.publicity_until) == (date(2026, 4, 20), date(2026, 4, 24))
    with pytest.raises(Conflict, match="公示期（2026年4月20日至2026年4月24日）已经结束"):
        cases.raise_objection(db, a, "该企业不在园区", actor="公众", today=date(2026, 4, 27))
    cases.raise_objection(db, a, "该企业不在园区", actor="公众", today=date(2026, 4, 24))    # its last day
    (o,) = cases.detail(db, a).objections
    cases.resolve_objection(db, o["id"], "经核实，企业注册地在园区", actor="经办人")
    with pytest.raises(Conflict, match="已处理"):
        cases.resolve_objection(db, o["id"], "再次处理", actor="经办人")
    assert [e.action for e in cases.detail(db, a).events][-2:] == ["objection", "objection.resolve"]
    cert_a = grant_profile(1)["device_registrations"][0]["certificate_no"]
    cases.upload_material(db, a, GRANT, CHANGE_DOC, "扫描件.pdf", PDF, actor="经办人", subject_id=cert_a)
    assert {x["application_id"] for x in awards.close_preview(db, "2026-H1", today=date(2026, 4, 27))[
        "pending_material_applications"]} == {a, b}     # a's scan; b's two other proofs, never reviewed
    res = awards.close_window(db, "2026-H1", today=date(2026, 4, 27))
    assert [x.application_id for x in res.awards] == [a] and res.refused == sorted([b, c])
    # a closed case's files are no longer reviewed
    (pending,) = [m for g in cases.detail(db, a).grants for m in g.materials if m.state == "pending"]
    assert pending.state_text == "未审核（已办结）"          # no longer said to be awaiting review
    with pytest.raises(Conflict, match="已办结，不能再审核材料"):
        cases.review_material(db, a, pending.id, False, "扫描件不清晰", actor="经办人")
    # Once refused (or paid) the 补正 deadline is history: the page no longer shows it.
    d = cases.detail(db, b)
    assert d.correction_due == date(2026, 4, 16) and d.correction_deadline is None and not d.correction_open
    assert_history_complete(db, "2026-H1")


def test_a_long_key_list_selects_exactly_its_keys_on_both_stores(db):
    """store.bulk.among (IN on SQLite, one array parameter on PostgreSQL), which a window's
    batches and its close use for every chunk of keys; and insert_rows skipping taken keys."""
    from store.bulk import among, insert_rows
    from store.models import utcnow

    now = utcnow()
    keys = [f"91512000MA{i:08d}" for i in range(2500)]
    with db.session() as s:
        sent = insert_rows(s.connection(), Enterprise.__table__,
                           ("uscc", "name", "latest_snapshot", "source", "created_at", "updated_at"),
                           ((k, f"企业{k[-4:]}", None, "registry", now, now) for k in keys))
        assert sent == 2500
    wanted = keys[::3] + ["91512000MA99999999"]          # every third, and one that is not stored
    with db.read_session() as s:
        got = set(s.scalars(select(Enterprise.uscc).where(among(s, Enterprise.uscc, wanted))))
        assert got == set(keys[::3])
        assert s.scalar(select(func.count()).select_from(Enterprise).where(among(s, Enterprise.uscc, []))) == 0
    odd = ['a"b', "c\\d", "e,f", "{g}", "h i", "NULL"]     # keys an array literal must quote
    with db.session() as s:
        insert_rows(s.connection(), Enterprise.__table__, ("uscc", "name", "source", "created_at", "updated_at"),
                    [(k, "企业", "registry", now, now) for k in odd])
    with db.read_session() as s:
        assert set(s.scalars(select(Enterprise.uscc).where(among(s, Enterprise.uscc, odd)))) == set(odd)
        assert set(s.scalars(select(Enterprise.uscc).where(among(s, Enterprise.uscc, ["a", "e", "g"])))) == set()
    with db.session() as s:      # a row whose key is taken is left out, the rest go in
        insert_rows(s.connection(), Enterprise.__table__, ("uscc", "name", "source", "created_at", "updated_at"),
                    [(keys[0], "另一个名字", "registry", now, now), ("91512000MA99999999", "新企业", "registry", now, now)],
                    skip_conflicts_on=("uscc",))
    with db.read_session() as s:
        assert s.get(Enterprise, keys[0]).name == f"企业{keys[0][-4:]}"
        assert s.get(Enterprise, "91512000MA99999999").name == "新企业"


def test_an_application_judged_while_its_window_is_evaluated_keeps_one_decision(db, monkeypatch):
    """A first run inserts without deleting (nothing to delete); an enterprise judged after the
    run began (a 补正 judged meanwhile) gets its evaluation replaced, never a second one."""
    import store.evaluation as E
    from store.models import Evaluation, Window

    open_h1(db)
    subs = submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2), grant_profile(3)])
    real = E.make_runner

    def judged_meanwhile(*args, **kw):
        with db.session() as s:
            E.judge_now(s, s.get(Application, subs[1].application_id), s.get(Window, "2026-H1"))
        return real(*args, **kw)

    monkeypatch.setattr(E, "make_runner", judged_meanwhile)
    res = evaluate(db, "2026-H1", workers=1)
    assert res.evaluated == 3 and res.failed == 0
    with db.read_session() as s:
        per_enterprise = s.execute(select(Evaluation.uscc, func.count()).group_by(Evaluation.uscc)).all()
        assert sorted(per_enterprise) == sorted((uscc_of(i), 1) for i in (1, 2, 3))
    rows = [r[:3] for r in grant_rows(db)]
    assert len(rows) == len(set(rows)) and {u for u, _, _ in rows} == {uscc_of(i) for i in (1, 2, 3)}
    monkeypatch.setattr(E, "make_runner", real)
    assert evaluate(db, "2026-H1").evaluated == 0          # what the run wrote is current


@pytest.mark.postgres
def test_bulk_jobs_leave_the_planner_statistics_current_on_postgresql(tmp_path, monkeypatch):
    """Until autovacuum comes round, a freshly filled table looks empty to PostgreSQL's planner
    (公示 then joined 120,000 decisions by index lookups and sorted them on disk). SQLite plans
    by its indexes alone."""
    from store import bulk

    url, cleanup = make_store_url("postgres", tmp_path)
    pg = Database(url)
    monkeypatch.setattr(bulk, "ANALYZE_AFTER", 3)

    def rows_known(table: str) -> float:
        with pg.read_session() as s:
            return s.execute(select(func.max(text("reltuples"))).select_from(text("pg_class"))
                             .where(text("relname = :t AND relnamespace = current_schema()::regnamespace"))
                             .params(t=table)).scalar()

    try:
        open_h1(pg)
        assert rows_known("applications") < 0 and rows_known("evaluations") < 0       # never analysed
        A.import_applications(pg, "2026-H1", profiles_csv([grant_profile(i) for i in range(1, 5)]), "a.csv",
                              today=IN_H1)
        assert rows_known("applications") == 4 and rows_known("evaluations") < 0
        evaluate(pg, "2026-H1")
        assert rows_known("evaluations") == 4
    finally:
        pg.dispose()
        cleanup()


def _with_mistakes(n: int) -> bytes:
    """A CSV of n applications where every seventh has a bound broken, an unknown value or a
    date in the future, in several places of the file."""
    profiles = [make_profile(i) for i in range(n)]
    for i in range(0, n, 7):
        p = profiles[i]
        if i % 3 == 0:
            p["employees_avg"] = -5
        elif i % 3 == 1:
            p["established_on"] = "2999-01-01"
        else:
            p["tax_collection"] = "不存在的方式"
    return profiles_csv(profiles)


def test_an_import_checked_in_two_processes_reports_and_stores_exactly_as_in_one(db, monkeypatch):
    """A large import checks every other part of its file in a worker process; its report
    (every problem, in file order, and the enterprises skipped) and what it stores are those of
    the same import checked here alone."""
    open_h1(db, "H-one")
    open_h1(db, "H-two")
    data = _with_mistakes(80)
    monkeypatch.setenv("YAGU_EVAL_WORKERS", "2")
    monkeypatch.setattr(A, "CHECK_PART", 6)         # many parts, alternating

    def run(window_id: str, parallel: bool, **kw):
        monkeypatch.setattr(A, "PARALLEL_CHECK_BYTES", 0 if parallel else 10**12)
        spawned = []
        real = A.CheckWorker
        monkeypatch.setattr(A, "CheckWorker", lambda book: spawned.append(1) or real(book))
        try:
            return A.import_applications(db, window_id, data, "申报.csv", today=IN_H1, **kw), spawned
        finally:
            monkeypatch.setattr(A, "CheckWorker", real)

    with pytest.raises(ImportRejected) as one:
        run("H-one", False)
    with pytest.raises(ImportRejected) as two:
        run("H-one", True)
    assert [str(p) for p in two.value.problems] == [str(p) for p in one.value.problems]
    assert len(one.value.problems) >= 10
    assert two.value.report.skipped == one.value.report.skipped and len(one.value.report.skipped) == 12
    (rep_one, none), (rep_two, spawned) = run("H-one", False, skip_invalid=True), run("H-two", True, skip_invalid=True)
    assert not none and spawned                     # the second really used a worker
    assert rep_two.created == rep_one.created == 80 - 12
    with db.read_session() as s:
        stored = {w: set(s.execute(select(Application.uscc, Application.snapshot_hash)
                                   .where(Application.window_id == w)).all()) for w in ("H-one", "H-two")}
    assert stored["H-one"] == stored["H-two"] and len(stored["H-one"]) == 68


def test_an_import_stores_as_it_checks_and_a_late_problem_or_refusal_leaves_nothing(db, monkeypatch):
    """What is checked is stored while the rest of the file is checked (in parts of FLUSH, one
    transaction); a problem or a refused application found afterwards leaves nothing of the
    file, and a problem is reported before a refusal."""
    from store.models import ProfileSnapshot

    open_h1(db)
    monkeypatch.setattr(A.Ingest, "FLUSH", 5)
    flushed: list[int] = []
    real = A.Ingest.flush

    def spy(self):
        flushed.append(len(self.pending))
        real(self)
    monkeypatch.setattr(A.Ingest, "flush", spy)

    def stored() -> tuple:
        with db.read_session() as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Application, Enterprise, ProfileSnapshot))

    profiles = [make_profile(i) for i in range(40)]
    bad = [dict(p) for p in profiles]
    bad[-1] = {**bad[-1], "employees_avg": -5}
    with pytest.raises(ImportRejected) as e:
        A.import_applications(db, "2026-H1", profiles_csv(bad), "a.csv", today=IN_H1)
    assert sum(flushed) >= 35                   # stored before the last row was checked
    [problem] = e.value.problems
    assert "不能小于 0" in str(problem) and problem.row > 40 and stored() == (0, 0, 0)
    # an application of the file already past judging cannot be submitted again
    A.import_applications(db, "2026-H1", profiles_csv(profiles[:1]), "one.csv", today=IN_H1)
    with db.session() as s:
        s.execute(Application.__table__.update().values(state="publicized"))
    changed = [{**profiles[0], "employees_avg": profiles[0]["employees_avg"] + 1}, *bad[1:]]
    with pytest.raises(ImportRejected):         # the file's problem first
        A.import_applications(db, "2026-H1", profiles_csv(changed), "b.csv", today=IN_H1)
    with pytest.raises(Conflict, match="不能再重新提交"):
        A.import_applications(db, "2026-H1", profiles_csv([*changed[:-1], profiles[-1]]), "c.csv", today=IN_H1)
    assert stored() == (1, 1, 1)
    rep = A.import_applications(db, "2026-H1", profiles_csv(profiles), "d.csv", today=IN_H1)
    assert (rep.created, rep.unchanged) == (39, 1) and stored() == (40, 40, 40)


def test_an_import_whose_check_worker_dies_is_checked_here_and_reports_the_same(db, monkeypatch, caplog):
    """The worker process dies (killed, out of memory) after its first part: the import checks
    its parts here and reports and stores exactly what one process would have."""
    open_h1(db, "H-one")
    open_h1(db, "H-two")
    data = _with_mistakes(80)
    monkeypatch.setenv("YAGU_EVAL_WORKERS", "2")
    monkeypatch.setattr(A, "CHECK_PART", 6)
    monkeypatch.setattr(A, "PARALLEL_CHECK_BYTES", 10**12)
    alone = A.import_applications(db, "H-one", data, "申报.csv", today=IN_H1, skip_invalid=True)
    real = A.CheckWorker

    class Dying(real):
        answered = 0

        def result(self):
            if Dying.answered == 1:
                sigkill(self._w.proc)
            Dying.answered += 1
            return super().result()

    monkeypatch.setattr(A, "CheckWorker", Dying)
    monkeypatch.setattr(A, "PARALLEL_CHECK_BYTES", 0)
    with caplog.at_level("WARNING", logger="yagu.import"):
        helped = A.import_applications(db, "H-two", data, "申报.csv", today=IN_H1, skip_invalid=True)
    assert "import check worker failed" in caplog.text          # it did die mid-import
    assert [str(p) for p in helped.problems] == [str(p) for p in alone.problems] and len(alone.problems) >= 10
    assert helped.skipped == alone.skipped and helped.created == alone.created == 68
    with db.read_session() as s:
        stored = {w: set(s.execute(select(Application.uscc, Application.snapshot_hash)
                                   .where(Application.window_id == w)).all()) for w in ("H-one", "H-two")}
    assert stored["H-one"] == stored["H-two"]


def test_a_step_many_applications_take_is_one_entry_in_each_history(db):
    """A step taken by many applications at once (judging the window) is stored once, listing
    them, and each of them lists it once in its history, even when the step names an
    application twice; an application of another window, or not listed, does not."""
    from store.models import EventBatch, utcnow

    open_h1(db)
    subs = submit_all(db, "2026-H1", [make_profile(i) for i in range(4)])
    ids = [x.application_id for x in subs]
    listed, left_out = ids[:3], ids[3]
    now = utcnow()
    with db.session() as s:
        audit.events(s, "2026-H1", [(i, now, "管理员", "remark", "received", "received", {"note": "批量"})
                                    for i in listed + listed[:1]])
        audit.events(s, "2026-H2", [(left_out, now, "管理员", "remark", "received", "received", {"note": "别的批次"})])
    for i in listed:
        remarks = [e for e in events_of(db, i) if e.action == "remark"]
        assert [(e.actor, e.details) for e in remarks] == [("管理员", {"note": "批量"})]
    assert [e for e in events_of(db, left_out) if e.action == "remark"] == []
    with db.read_session() as s:
        remark = s.scalars(select(EventBatch).where(EventBatch.action == "remark",
                                                    EventBatch.window_id == "2026-H1")).one()
        assert audit.members(remark.members) == sorted(listed)


def test_the_self_checks_calendar_is_the_windows_staff_opened_then_the_default(db):
    """StoreCalendar: an opened window covers its own dates (replacing the default window of its
    id, whatever dates that had); the default calendar covers the rest; the next window to
    judge in is the open one that closes first."""
    book = rulesets.current().book
    W.open_window(db, "2027-H1", opens_on="2026-11-16", closes_on="2026-12-18", coverage_from="2026-10-01",
                  coverage_to="2026-11-30", label="2027年上半年集中申报（提前受理）")
    cal = W.StoreCalendar.of(db, book.calendar)
    assert cal.covering(date(2026, 10, 15)).closes_on == date(2026, 12, 18)
    default_2027 = book.calendar.by_id("2027-H1")
    later = default_2027.coverage_to
    assert book.calendar.covering(later).id == "2027-H1" and cal.covering(later) is None   # replaced
    assert cal.by_id("2027-H1").opens_on == date(2026, 11, 16)
    assert cal.by_id("2027-H2") == book.calendar.by_id("2027-H2")
    assert cal.next_window(date(2026, 11, 20)).id == "2027-H1"
    assert cal.next_window(date(2026, 12, 20)) == book.calendar.by_id("2027-H2")      # past it: the default's
    assert cal.covering(date(2025, 5, 1)) == book.calendar.covering(date(2025, 5, 1))  # untouched elsewhere
    ev = rulesets.current()
    p = grant_profile(1)
    p["device_registrations"][0]["obtained_on"] = "2026-10-15"
    resp = ev.self_check(p, date(2026, 11, 20), awarded=set(), calendar=cal)
    (g,) = [r for r in resp.results if r.benefit_id == GRANT]
    assert g.window.id == "2027-H1" and g.window.closes_on == date(2026, 12, 18)


def test_on_the_web_only_the_holder_of_the_code_replaces_an_application(db):
    """The public form takes any credit code: a second web submission for the same enterprise
    replaces its application only with the current access code, else it is refused and the
    enterprise's code keeps working. Staff (API, import) replace as before."""
    open_h1(db)
    first = A.submit_application(db, "2026-H1", grant_profile(1), None, "web", today=IN_H1)
    changed = grant_profile(1, in_park=False)
    for code, words in ((None, "请填写上次取得的查询码"), ("WRONGCODE123", "查询码不符")):
        with pytest.raises(ValidationFailed, match=words) as e:
            A.submit_application(db, "2026-H1", changed, None, "web", today=IN_H1, prior_code=code)
        assert e.value.problems[0].path == "prior_code"
    assert A.check_access_code(db, first.application_id, first.access_code)
    again = A.submit_application(db, "2026-H1", changed, None, "web", today=IN_H1,
                                 prior_code=first.access_code.lower())
    assert again.application_id == first.application_id and again.replaced
    assert not A.check_access_code(db, first.application_id, first.access_code)
    staff = A.submit_application(db, "2026-H1", grant_profile(1), None, "api", today=IN_H1)
    assert staff.replaced and A.check_access_code(db, first.application_id, staff.access_code)


def test_a_complete_correction_lists_what_it_leaves_out_and_signs_its_promises_with_it(db):
    """`complete`: a 补正 that leaves an asked fact or material out (neither given nor promised)
    is refused, each left-out item named, nothing stored; promises signed with the 补正 are
    stored with it, and a promise of a file also uploaded, or of a material that cannot be
    deferred, is a problem of the same report."""
    open_h1(db)
    p = grant_profile(9, origin=None, certs=1)
    del p["on_serious_dishonest_list"]
    (sub,) = submit_all(db, "2026-H1", [p])
    app, cert = sub.application_id, p["device_registrations"][0]["certificate_no"]
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    ask = cases.detail(db, app, today=AFTER_H1).correction
    with pytest.raises(ValidationFailed) as e:
        cases.submit_correction(db, app, {}, [], actor="企业", today=AFTER_H1, complete=True)
    left = {(x.path, x.message) for x in e.value.problems}
    assert left == {(f, cases.LEFT_OUT_FACT) for f in ask.facts} | {
        (cases.upload_path(m["benefit_id"], m["subject_id"], m["material_id"]), cases.LEFT_OUT_FILE)
        for m in ask.materials}
    credit = (GRANT, "", "credit_report")            # about the enterprise: asked once, no certificate
    change = (GRANT, cert, CHANGE_DOC)
    with pytest.raises(ValidationFailed) as e:
        cases.submit_correction(db, app, {}, [(*credit, "报告.pdf", PDF)], actor="企业", today=AFTER_H1,
                                promises={credit: "王五", change: "王五"})
    said = {x.path: x.message for x in e.value.problems}
    assert "二者选一" in said["signer:" + cases.upload_path(*credit)]
    assert "不能容缺" in said["signer:" + cases.upload_path(*change)]
    assert cases.detail(db, app, today=AFTER_H1).state == "correction"             # nothing stored
    assert cases.detail(db, app, today=AFTER_H1).grants[0].promised == []
    # A file that is not a PDF or image and what the 补正 leaves out: one answer, not two rounds
    # (the left-out fact was once said only after the file had been fixed)
    with pytest.raises(ValidationFailed) as e:
        cases.submit_correction(db, app, {}, [(*change, "变更文件.pdf", b"just text")], actor="企业",
                                today=AFTER_H1, complete=True)
    said = {x.path: x.message for x in e.value.problems}
    assert "PDF" in said[cases.upload_path(*change)]
    assert {f for f in ask.facts} <= set(said) and all(said[f] == cases.LEFT_OUT_FACT for f in ask.facts), said
    assert said[cases.upload_path(*credit)] == cases.LEFT_OUT_FILE
    assert cases.detail(db, app, today=AFTER_H1).state == "correction"
    facts = {f: v for f, v in (("device_registrations[0].origin", "introduced"),
                               ("on_serious_dishonest_list", False)) if f in ask.facts}
    files_ = [(m["benefit_id"], m["subject_id"], m["material_id"], f"{m['material_id']}.pdf", PDF)
              for m in ask.materials if m["material_id"] != "credit_report"]
    d = cases.submit_correction(db, app, facts, files_, actor="企业", today=AFTER_H1,
                                promises={credit: "王五"}, complete=True)
    assert [(x.signer, x.material_id) for x in d.grants[0].promised] == [("王五", "credit_report")]
    assert d.state in ("corrected", "failed") and len(d.grants[0].materials) == len(files_) >= 1


def test_a_review_to_ineligible_is_told_in_the_one_time_notice(db):
    """复核 that turns an eligible certificate to 不符合条件 before the notices go out: the
    enterprise is told, like any other refusal, and may answer it in its 补正 — it was skipped
    (the notice looked at the rules' verdict only) and went straight to 不予支持 at the close."""
    open_h1(db)
    (ok, other) = submit_all(db, "2026-H1", [grant_profile(11), grant_profile(12)])
    evaluate(db, "2026-H1")
    cert = grant_profile(11)["device_registrations"][0]["certificate_no"]
    assert cases.one_time_preview(db, "2026-H1", today=AFTER_H1)["notices"] == 0
    cases.review(db, ok.application_id, GRANT, cert, "override", "ineligible", "现场核查：产品未在园区生产",
                 actor="经办人")
    preview = cases.one_time_preview(db, "2026-H1", today=AFTER_H1)
    assert preview["notices"] == 1 and preview["applications"][0]["application_id"] == ok.application_id
    assert preview["due"] > AFTER_H1 and preview["blocked"] == []
    assert cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1) == 1
    d = cases.detail(db, ok.application_id, today=AFTER_H1)
    assert d.state == "correction" and cases.detail(db, other.application_id).state == "judged"
    assert cases.one_time_preview(db, "2026-H1", today=AFTER_H1)["notices"] == 0     # told once


def test_a_window_opened_by_mistake_can_be_deleted_until_something_happens_in_it(db):
    from store.models import AuditLog

    open_h1(db, "2026-XX")
    W.delete_window(db, "2026-XX", actor="经办人")
    with pytest.raises(NotFound):
        W.get_window(db, "2026-XX")
    with db.read_session() as s:            # the log keeps that it existed
        assert s.execute(select(AuditLog).where(AuditLog.action == "window.delete",
                                                AuditLog.target == "2026-XX")).scalar_one().actor == "经办人"
    open_h1(db)
    submit_all(db, "2026-H1", [grant_profile(21)])
    with pytest.raises(Conflict, match="已有申报，不能删除"):
        W.delete_window(db, "2026-H1")
    assert W.get_window(db, "2026-H1").counts.applications == 1


def test_a_window_whose_coverage_overlaps_another_says_so(db):
    """Each certificate should belong to one window: a window opened over another's coverage
    is named on both (its certificates would be judged and publicized in both)."""
    open_h1(db)
    assert W.get_window(db, "2026-H1").overlaps == []
    W.open_window(db, "2026-Q", opens_on=date(2026, 4, 1), closes_on=date(2026, 4, 30), as_of=date(2026, 4, 30),
                  coverage_from=date(2026, 3, 1), coverage_to=date(2026, 4, 30), label="补充批次")
    (said,) = W.get_window(db, "2026-H1").overlaps
    assert said == "“补充批次”（支持 2026年3月1日至2026年4月30日 取得的注册证）"
    assert len(W.get_window(db, "2026-Q").overlaps) == 1
    W.open_window(db, "2026-R", opens_on=date(2026, 5, 1), closes_on=date(2026, 5, 30), as_of=date(2026, 5, 30),
                  coverage_from=date(2026, 5, 1), coverage_to=date(2026, 5, 30), label="后续批次")
    assert W.get_window(db, "2026-R").overlaps == []          # the day after ends is not an overlap


def test_an_imported_window_lists_its_applications_by_enterprise_name(db):
    """Applications imported together share their moment of submission: they are listed by the
    enterprise's name, not by their random application numbers."""
    open_h1(db)
    names = ["资阳丙齿科", "资阳甲齿科", "资阳乙齿科", "资阳丁齿科"]
    A.import_applications(db, "2026-H1", profiles_csv([grant_profile(40 + i, name=n) for i, n in enumerate(names)]),
                          "apps.csv", today=IN_H1)
    _, rows = A.list_applications(db, "2026-H1")
    assert [r.enterprise_name for r in rows] == sorted(names)


def test_a_correction_that_makes_a_condition_fail_is_not_asked_for_its_proof(db):
    """Stating a record that fails the 36-month condition makes its proof (无欠税…证明) moot: the
    complete 补正 is taken, not refused with 尚未上传 for a document that could not help."""
    open_h1(db)
    p = grant_profile(60)
    del p["violations"]
    (sub,) = submit_all(db, "2026-H1", [p])
    evaluate(db, "2026-H1")
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    ask = cases.detail(db, sub.application_id, today=AFTER_H1).correction
    assert ask.facts == ["violations"] and "tax_compliance_certificate" in {m["material_id"] for m in ask.materials}
    record = {"kind": "refund_fraud", "decided_on": "2025-06-01", "authority": "tax", "description": "骗取留抵退税"}
    d = cases.submit_correction(db, sub.application_id, {"violations": [record]}, [], actor="企业", today=AFTER_H1,
                                complete=True)
    assert d.state == "corrected" and [g.final_status for g in d.grants] == ["ineligible"]


def test_a_correction_may_explain_a_condition_found_not_met(db):
    """The one-time notice invites a 说明 with the 补正 for a condition found not met: it is kept
    with the 补正's history entry for staff; too long a one is refused with the rest."""
    a, b, c = _three(db)                       # C is outside the park: a condition not met
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    with pytest.raises(ValidationFailed) as e:
        cases.submit_correction(db, c, {}, [], actor="企业", today=AFTER_H1, statement="长" * 2001)
    assert [p.path for p in e.value.problems] == ["statement"]
    said = "本企业已于2026年3月迁入园区，营业执照变更在办理中"
    d = cases.submit_correction(db, c, {}, [], actor="企业", today=AFTER_H1, statement=f"  {said} ")
    (entry,) = [e for e in d.events if e.action == "correction"]
    assert entry.details["statement"] == said
    assert cases.detail(db, c).for_enterprise().events[-1].details is None     # staff's, not the page's


def test_a_window_whose_deadlines_reach_a_year_without_holidays_says_so(db):
    """Its 补正 and 公示 deadlines would be refused until the year's holiday schedule is filled:
    the window says so from the day it is opened, in staff's words (who enters it, not the file),
    and stops saying so once publicized (no step left needs the calendar)."""
    open_h1(db)
    assert W.get_window(db, "2026-H1").calendar_gap is None
    W.open_window(db, "2031-H1", opens_on=date(2031, 3, 1), closes_on=date(2031, 3, 31), as_of=date(2031, 3, 31),
                  coverage_from=date(2030, 10, 1), coverage_to=date(2031, 3, 31), label="2031年上半年集中申报")
    gap = W.get_window(db, "2031-H1").calendar_gap
    assert gap and "2031 年的法定节假日安排尚未录入" in gap and "系统管理员" in gap, gap
    assert "rules/" not in gap and ".yaml" not in gap, gap
    # A window judged long ago with its steps still ahead: the warning counts from today
    y = _first_year_without_a_schedule()
    with db.session() as s:
        w = s.get(Window, "2026-H1")
        w.opens_on, w.closes_on, w.as_of = date(y - 1, 3, 1), date(y - 1, 3, 31), date(y - 1, 3, 31)
        assert W.calendar_gap(w, today=date(y - 1, 4, 10)) is None
        assert f"{y} 年" in W.calendar_gap(w, today=date(y - 1, 12, 10))
        w.state = "publicity"        # its deadlines are counted: nothing left to warn of
        assert W.calendar_gap(w, today=date(y - 1, 12, 10)) is None
        s.rollback()
