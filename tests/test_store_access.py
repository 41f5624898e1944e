"""Who may see and do what, on SQLite and PostgreSQL: access codes (shown once, replaced on
resubmission), API tokens listed and revoked, server-side sessions ended by logout, expiry and
revocation; notice numbers gapless and stable, also when assigned concurrently."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from store import applications as A
from store import sessions, tokens
from store.db import Database
from store.errors import NotFound, ValidationFailed
from store.models import WebSession, utcnow
from store.notices import assign_number
from store_fixtures import (  # noqa: F401  (fixtures)
    IN_H1, db, evaluate, grant_profile, open_h1, store_url, submit_all,
)


def test_an_access_code_opens_its_application_only_until_replaced(db):
    open_h1(db)
    (first,) = submit_all(db, "2026-H1", [grant_profile(1)])
    (other,) = submit_all(db, "2026-H1", [grant_profile(2)])
    assert len(first.access_code) == 12
    assert A.check_access_code(db, first.application_id, first.access_code)
    assert A.check_access_code(db, first.application_id.lower(), " " + first.access_code.lower())
    code = first.access_code           # typed from paper in groups of four
    assert A.check_access_code(db, first.application_id, f"{code[:4]} {code[4:8]}-{code[8:]}")
    assert not A.check_access_code(db, first.application_id, other.access_code)
    assert not A.check_access_code(db, "A0000000000000000", first.access_code)
    assert not A.check_access_code(db, "A\x00", first.access_code)
    again = A.submit_application(db, "2026-H1", grant_profile(1, employees_avg=20), today=IN_H1)
    assert again.application_id == first.application_id and again.access_code != first.access_code
    assert not A.check_access_code(db, first.application_id, first.access_code)
    assert A.check_access_code(db, first.application_id, again.access_code)


def test_access_codes_stored_with_a_32_byte_hash_before_still_open_their_application(db):
    """Hashes are stored as 16 bytes now; an application whose code was stored with all 32
    (before 0.19) is still opened by that code, and only by it."""
    import hashlib

    from store.models import Application

    open_h1(db)
    (first,) = submit_all(db, "2026-H1", [grant_profile(1)])
    with db.session() as s:
        assert len(s.get(Application, first.application_id).access_code_hash) == 32     # hex of 16 bytes
        old = hashlib.sha256(f"{first.application_id}:{first.access_code}".encode()).hexdigest()
        s.execute(update(Application).where(Application.id == first.application_id).values(access_code_hash=old))
    assert A.check_access_code(db, first.application_id, first.access_code)
    wrong = first.access_code[:-1] + ("2" if first.access_code[-1] != "2" else "3")
    assert not A.check_access_code(db, first.application_id, wrong)


def test_staff_reissue_a_lost_access_code_the_old_one_and_its_pages_stop_working(db):
    """An enterprise that lost its code gets a new one from staff: the old code and every page
    opened with it stop working, the history says who did it and why, never the code."""
    from store import cases

    open_h1(db)
    (first,) = submit_all(db, "2026-H1", [grant_profile(1)])
    (other,) = submit_all(db, "2026-H1", [grant_profile(2)])
    theirs = sessions.open_session(db, "enterprise", first.application_id, "enterprise")
    kept = sessions.open_session(db, "enterprise", other.application_id, "enterprise")
    with pytest.raises(ValidationFailed) as e:
        cases.reissue_access_code(db, first.application_id, " ", actor="窗口经办")
    assert e.value.problems[0].path == "reason"
    assert A.check_access_code(db, first.application_id, first.access_code)     # nothing changed
    with pytest.raises(NotFound):
        cases.reissue_access_code(db, "A0000000000000000", "遗失", actor="窗口经办")
    code = cases.reissue_access_code(db, first.application_id, "企业遗失查询码，已核验营业执照", actor="窗口经办")
    assert len(code) == 12 and code != first.access_code
    assert A.check_access_code(db, first.application_id, code)
    assert not A.check_access_code(db, first.application_id, first.access_code)
    assert sessions.lookup(db, theirs, "enterprise") is None
    assert sessions.lookup(db, kept, "enterprise") is not None and A.check_access_code(
        db, other.application_id, other.access_code)
    last = cases.detail(db, first.application_id).events[-1]
    assert (last.actor, last.action_text, last.details["reason"]) == ("窗口经办", "重新生成查询码",
                                                                    "企业遗失查询码，已核验营业执照")
    assert code not in str(last.details)


def test_a_judged_application_submitted_again_says_its_results_are_of_the_earlier_one(db):
    """Submitted again after judging, with other facts: its page says the results shown were
    judged on what it submitted before (it once showed them as if current), until judged again."""
    from store import cases

    open_h1(db)
    (first,) = submit_all(db, "2026-H1", [grant_profile(1)])
    evaluate(db, "2026-H1")
    assert not cases.detail(db, first.application_id).stale
    A.submit_application(db, "2026-H1", grant_profile(1, in_park=False), today=IN_H1)
    d = cases.detail(db, first.application_id)
    assert d.stale and d.state == "received"
    assert (d.judged_profile["in_park"], d.profile["in_park"]) == (True, False)     # results read what they judged
    evaluate(db, "2026-H1")
    d = cases.detail(db, first.application_id)
    assert not d.stale and d.grants[0].final_status == "ineligible"


def test_tokens_are_listed_and_revoked_and_end_their_sessions(db):
    view, secret = tokens.create_token(db, "staff", "窗口经办", actor="管理员")
    admin, _ = tokens.create_token(db, "admin", "管理员")
    assert tokens.authenticate(db, secret) == tokens.Identity(view.id, "staff")
    assert [(t.id, t.role_text, t.label) for t in tokens.list_tokens(db)] == [
        (view.id, "经办人员", "窗口经办"), (admin.id, "管理员", "管理员")]
    with pytest.raises(ValidationFailed) as e:
        tokens.create_token(db, "root", " ")
    assert {p.path for p in e.value.problems} == {"role", "label"}
    sid = sessions.open_session(db, "staff", str(view.id), "staff")
    assert sessions.lookup(db, sid, "staff").role == "staff"
    assert sessions.lookup(db, sid, "enterprise") is None
    tokens.revoke_token(db, view.id, actor="管理员")
    assert tokens.authenticate(db, secret) is None
    assert sessions.lookup(db, sid, "staff") is None             # a revoked token's sessions end
    assert tokens.list_tokens(db)[0].revoked_at is not None
    with pytest.raises(NotFound, match="已吊销"):
        tokens.revoke_token(db, view.id)


def test_sessions_end_at_logout_and_at_expiry(db):
    sid = sessions.open_session(db, "enterprise", "A0000000000000001", "enterprise")
    other = sessions.open_session(db, "enterprise", "A0000000000000002", "enterprise")
    assert sessions.lookup(db, sid, "enterprise").subject == "A0000000000000001"
    sessions.end(db, sid)
    assert sessions.lookup(db, sid, "enterprise") is None         # a replayed cookie opens nothing
    assert sessions.lookup(db, other, "enterprise") is not None
    with db.session() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert sessions.lookup(db, other, "enterprise") is None
    assert sessions.lookup(db, "x" * 200, "enterprise") is None


def test_notice_numbers_are_gapless_stable_and_unique_under_concurrency(store_url):
    db = Database(store_url)
    try:
        open_h1(db)
        apps = [s.application_id for s in submit_all(db, "2026-H1", [grant_profile(i) for i in range(1, 7)])]
        barrier = threading.Barrier(len(apps))
        numbers, errors = {}, []

        def assign(app_id):
            d = Database(store_url)
            try:
                barrier.wait()
                with d.session() as s:
                    numbers[app_id] = assign_number(s, "2026-H1", app_id, "one_time", IN_H1).number
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            finally:
                d.dispose()

        ts = [threading.Thread(target=assign, args=(a,)) for a in apps]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert errors == []
        assert sorted(numbers.values()) == [f"资高新惠告〔2026〕第{i:04d}号" for i in range(1, 7)]
        with db.session() as s:         # re-rendering keeps the number; another kind has its own series
            assert assign_number(s, "2026-H1", apps[0], "one_time", IN_H1).number == numbers[apps[0]]
            assert assign_number(s, "2026-H1", apps[0], "non_support", IN_H1).number == "资高新惠不〔2026〕第0001号"
    finally:
        db.dispose()
