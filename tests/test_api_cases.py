"""The staff API over the real store, on SQLite and PostgreSQL (issue 13): every role (401/403),
tokens created, listed and revoked, the window's case process through the API with every
refused transition answered 409 naming the current state, concurrent actions on one
application (one wins), background jobs (202, progress, files), NUL and bounded strings on the
store's side, and a storage outage answered 503."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from api import routes_public, routes_staff, security
from api.app import create_app
from api.settings import Settings
from api.testing import REPO
from api.schemas import EXAMPLE_PROFILE, NUL_MESSAGE
from api_support import Api, accepting_window, api_on, assert_error, days, wait_job
from leaks import html_text
from engine.vocabulary import APPLICATION_STATE, WINDOW_STATE, cn_date
from hostile_files import nul_csv
from store import applications, jobs, rulesets
from store.db import Database
from store.models import Application, Commitment, JobFile, ProfileSnapshot
from store.paths import data_dir
from store_fixtures import STORES, cert_no, packer, profiles_csv, uscc_of

pytestmark = pytest.mark.timeout(300)
STATE_WORDS = (*WINDOW_STATE.values(), *APPLICATION_STATE.values(), *jobs.STATE_TEXT.values(), "受理期")
PUBLIC = {("GET", "/healthz"), ("GET", "/v1/rules"), ("GET", "/v1/rules/{rule_id}"), ("POST", "/v1/eligibility"),
          ("POST", "/v1/tax/self-assessment"), ("GET", "/v1/applications/{application_id}"),
          # the enterprise's own, opened by its access code (not a token)
          ("POST", "/v1/applications/{application_id}/correction"),
          ("GET", "/v1/applications/{application_id}/notices/{kind}")}
ADMIN = {("GET", "/v1/windows/{window_id}/close"), ("POST", "/v1/windows/{window_id}/close"),
         ("POST", "/v1/windows/{window_id}/replay"), ("GET", "/v1/tokens"), ("POST", "/v1/tokens"),
         ("DELETE", "/v1/tokens/{token_id}"), ("PUT", "/v1/windows/{window_id}/amounts")}
DUMMY = {"window_id": "W1", "application_id": "A1", "material_pk": "1", "job_id": "J1", "name": "f",
         "token_id": "99999", "rule_id": "x", "objection_id": "1"}


@pytest.fixture(scope="module", params=STORES)
def api(request, tmp_path_factory):
    """One app per store for the module; each test works in its own windows."""
    with api_on(request.param, tmp_path_factory.mktemp(request.param)) as a:
        yield a


def conflict(r) -> str:
    """A 409 whose message names the current state."""
    detail = assert_error(r, 409)["detail"]
    assert any(w in detail for w in STATE_WORDS), detail
    return detail


def profile(i: int, **facts) -> dict:
    """EXAMPLE_PROFILE as enterprise i, with its own certificate, obtained two months ago (inside
    the coverage of every window here, whatever day the tests run)."""
    reg = {**EXAMPLE_PROFILE["device_registrations"][0], "certificate_no": cert_no(i),
           "obtained_on": days(-60).isoformat()}
    reg.update(facts.pop("certificate", {}))
    return {**EXAMPLE_PROFILE, "uscc": uscc_of(i), "name": f"资阳测试企业{i}有限公司",
            "device_registrations": [{k: v for k, v in reg.items() if v is not None}], **facts}


def api_routes():
    """Every API route (the two routers the app includes), with the role it requires."""
    for r in routes_public.router.routes + routes_staff.router.routes:
        for method in getattr(r, "methods", ()) or ():
            if r.path.startswith("/v1/") and method != "HEAD":
                needs = [d.call for d in r.dependant.dependencies
                         if d.call in (security.require_staff, security.require_admin)]
                yield method, r.path, needs


# --- roles and tokens ------------------------------------------------------------------------------
def test_every_route_needs_a_token_of_its_role(api: Api):
    """401 without a token, with an unknown, malformed or revoked token; 403 for staff on the
    admin routes; every /v1 route but the public ones is guarded."""
    revoked = api.c.post("/v1/tokens", json={"role": "admin", "label": "将被吊销"}, headers=api.admin).json()
    assert api.c.delete(f"/v1/tokens/{revoked['token']['id']}", headers=api.admin).status_code == 204
    bad = [None, {"Authorization": "Bearer yagu_not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="},
           {"Authorization": f"Bearer {revoked['value']}"}]
    seen = 0
    for method, path, needs in api_routes():
        if (method, path) in PUBLIC:
            assert not needs, path
            continue
        assert len(needs) == 1, f"{method} {path} has no role"
        assert (needs[0] is security.require_admin) == ((method, path) in ADMIN), (method, path)
        url = re.sub(r"\{(\w+)\}", lambda m: DUMMY[m.group(1)], path)
        for headers in bad:
            r = api.c.request(method, url, headers=headers)
            assert assert_error(r, 401)["detail"] and r.headers["www-authenticate"] == "Bearer", (method, path)
        if (method, path) in ADMIN:
            assert "管理员" in assert_error(api.c.request(method, url, headers=api.staff), 403)["detail"]
        seen += 1
    assert seen >= 30


def test_tokens_are_created_with_an_id_listed_and_revoked(api: Api):
    r = api.c.post("/v1/tokens", json={"role": "staff", "label": "新同事"}, headers=api.admin)
    assert r.status_code == 201
    new = r.json()
    assert new["token"]["id"] and new["token"]["role_text"] == "经办人员" and new["value"].startswith("yagu_")
    listed = {t["id"]: t for t in api.c.get("/v1/tokens", headers=api.admin).json()}
    assert listed[new["token"]["id"]]["revoked_at"] is None and new["value"] not in str(listed)
    as_new = {"Authorization": f"Bearer {new['value']}"}
    assert api.c.get("/v1/windows", headers=as_new).status_code == 200
    assert api.c.get("/v1/tokens", headers=as_new).status_code == 403
    assert api.c.delete(f"/v1/tokens/{new['token']['id']}", headers=api.admin).status_code == 204
    assert api.c.get("/v1/tokens", headers=api.admin).json()[-1]["revoked_at"]
    assert_error(api.c.get("/v1/windows", headers=as_new), 401)
    assert_error(api.c.delete(f"/v1/tokens/{new['token']['id']}", headers=api.admin), 404)
    assert "正在使用" in assert_error(api.c.delete(f"/v1/tokens/{api.admin_id}", headers=api.admin), 409)["detail"]
    body = assert_error(api.c.post("/v1/tokens", json={"role": "root", "label": "", "days": 0}, headers=api.admin), 422)
    assert {e["path"] for e in body["errors"]} == {"role", "label", "days"}


def test_a_token_stops_working_when_it_expires_and_ends_its_console_sessions(api: Api):
    """Every token is made for a number of days (365 unless said); past them it opens neither
    the API nor the console, and the list says it expired."""
    from api.security import STAFF_COOKIE
    from store.models import ApiToken, utcnow
    from test_api_limits import _staff_login

    r = api.c.post("/v1/tokens", json={"role": "staff", "label": "临时借调", "days": 30}, headers=api.admin)
    assert r.status_code == 201, r.text
    made = r.json()["token"]
    left = datetime.fromisoformat(made["expires_at"]) - datetime.fromisoformat(made["created_at"])
    assert left == timedelta(days=30) and "到期" in made["state_text"]
    default = api.c.post("/v1/tokens", json={"role": "staff", "label": "默认"}, headers=api.admin).json()["token"]
    assert datetime.fromisoformat(default["expires_at"]) - datetime.fromisoformat(default["created_at"]) \
        == timedelta(days=365)
    mine = {"Authorization": f"Bearer {r.json()['value']}"}
    usual, api.staff = api.staff, mine      # the fixture is shared: put its token back
    try:
        sid = _staff_login(api)
    finally:
        api.staff = usual
    assert api.c.get("/staff", follow_redirects=False).status_code == 200
    with api.db.session() as s:            # thirty days later
        s.execute(update(ApiToken).where(ApiToken.id == made["id"]).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_error(api.c.get("/v1/windows", headers=mine), 401)
    assert api.c.cookies.get(STAFF_COOKIE) == sid
    assert api.c.get("/staff", follow_redirects=False).status_code in (302, 303)     # back to the login
    api.c.cookies.clear()
    (listed,) = [t for t in api.c.get("/v1/tokens", headers=api.admin).json() if t["id"] == made["id"]]
    assert listed["state_text"].startswith("已过期") and listed["revoked_at"] is None


def test_a_token_from_the_command_line_opens_the_api(tmp_path):
    """`yagu token create` prints the token last (alone on its line); it authenticates."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = subprocess.run([sys.executable, "-m", "cli.main", "token", "create", "--role", "admin", "--label", "命令行测试"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "YAGU_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("yagu_") and token not in out.stderr and "只显示这一次" in out.stderr and "到期" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "cli.main", "token", "create", "--role", "staff", "--days", "0"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "YAGU_DATABASE_URL": url})
    assert bad.returncode != 0 and "有效期应为 1 至 3650 天" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    with TestClient(create_app(Settings(database_url=url, migrate_on_start=False))) as c:
        assert c.get("/v1/tokens", headers={"Authorization": f"Bearer {token}"}).json()[0]["label"] == "命令行测试"


# --- the case process --------------------------------------------------------------------------------
def test_acceptance_period_and_unknown_windows(api: Api):
    now = accepting_window(api, "NOW")
    for wid, start, end, words in (("LATER", 5, 20, "尚未开始"), ("PAST", -20, -5, "已结束")):
        r = api.c.post("/v1/windows", headers=api.staff, json={
            "id": wid, "opens_on": days(start).isoformat(), "closes_on": days(end).isoformat(),
            "coverage_from": "2025-01-01", "coverage_to": "2026-06-30"})
        assert r.status_code == 201
        detail = conflict(api.c.post(f"/v1/windows/{wid}/applications", json={"profile": profile(1)}, headers=api.staff))
        assert words in detail and f"{days(start).year}年" in detail
        # the online form of such a window says so at once, by the window's name, before any typing
        page = api.c.get(f"/apply/{wid}")
        assert page.status_code == 409 and words in page.text and 'id="profile-form"' not in page.text
        label = api.c.get(f"/v1/windows/{wid}", headers=api.staff).json()["label"]
        assert f"“{label}”" in page.text and f"申报批次 {wid}" not in page.text
    again = {k: now[k] for k in ("id", "opens_on", "closes_on", "coverage_from", "coverage_to")}
    assert "已存在" in assert_error(api.c.post("/v1/windows", json=again, headers=api.staff), 409)["detail"]
    assert_error(api.c.post("/v1/windows/NOPE/applications", json={"profile": profile(1)}, headers=api.staff), 404)
    for path in ("/v1/windows/NOPE", "/v1/windows/NOPE/applications", "/v1/windows/NOPE/awards"):
        assert_error(api.c.get(path, headers=api.staff), 404)
    for path in ("/v1/windows/NOW/awards", "/v1/windows/NOW/proactive"):
        assert "尚未判定" in assert_error(api.c.get(path, headers=api.staff), 409)["detail"]
    assert "尚未公示" in assert_error(api.c.post("/v1/windows/NOW/close", json={"reason": "测试"},
                                                 headers=api.admin), 409)["detail"]
    detail = conflict(api.c.post("/v1/windows/NOW/publish", headers=api.staff))
    assert "受理期结束后才能公示" in detail


def test_the_case_process_and_every_refused_transition(api: Api):
    """Intake → judging (job) → one-time notice → 补正 state → 复核 → 公示 → close, each step's
    refusals answered 409 naming the current state, through the API."""
    c, staff, admin = api.c, api.staff, api.admin
    r = c.post("/v1/windows", headers=staff, json={
        "id": "W2", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    assert r.status_code == 201
    # moments read back with their zone on both databases (SQLite's once came without one)
    assert c.get("/v1/windows/W2", headers=staff).json()["created_at"] == r.json()["created_at"]
    assert r.json()["created_at"].endswith(("Z", "+00:00")), r.json()["created_at"]
    # The acceptance period is over: applications are taken as they were on its last day.
    formula = "＝HYPERLINK(\"http://x.invalid\")资阳企业"           # full-width ＝ (issue 9 item 17)
    people = {"eligible": profile(1, name=formula), "missing": profile(2, certificate={"origin": None}),
              "refused": profile(3, in_park=False)}
    subs = {k: applications.submit_application(api.db, "W2", p, channel="api", actor="测试", today=days(-3))
            for k, p in people.items()}
    ids = {k: sub.application_id for k, sub in subs.items()}
    conflict(c.post("/v1/windows/W2/applications", json={"profile": profile(4)}, headers=staff))

    job = wait_job(api, c.post("/v1/windows/W2/evaluate", headers=staff))
    assert job["state"] == "succeeded" and job["done"] == job["total"] == job["result"]["evaluated"] >= 3
    grant = {k: next(g["result"]["status"] for g in c.get(f"/v1/applications/{a}/detail", headers=staff).json()["grants"])
             for k, a in ids.items()}
    assert grant == {"eligible": "eligible", "missing": "needs_info", "refused": "ineligible"}

    assert c.post("/v1/windows/W2/one-time-notices", headers=staff).json() == {"issued": 2}
    missing = c.get(f"/v1/applications/{ids['missing']}/detail", headers=staff).json()
    assert missing["state"] == "correction" and missing["correction"]["facts"]
    # each asked fact named in words beside its path, as the page shows it
    assert len(missing["correction"]["fact_labels"]) == len(missing["correction"]["facts"])
    assert all("[" not in x and "." not in x for x in missing["correction"]["fact_labels"]), missing["correction"]
    # A stale revision loses; the current state is named.
    cert = people["eligible"]["device_registrations"][0]["certificate_no"]
    rev = c.get(f"/v1/applications/{ids['eligible']}/detail", headers=staff).json()["revision"]
    review = {"benefit_id": "device-registration-grant", "subject_id": cert, "action": "confirm"}
    first = c.post(f"/v1/applications/{ids['eligible']}/reviews", json={**review, "revision": rev}, headers=staff)
    assert first.status_code == 201 and first.json()["created"] is True, first.text
    assert "已判定" in conflict(c.post(f"/v1/applications/{ids['eligible']}/reviews",
                                       json={**review, "revision": rev}, headers=staff))
    body = assert_error(c.post(f"/v1/applications/{ids['eligible']}/reviews",
                               json={**review, "action": "override"}, headers=staff), 422)
    assert {e["path"] for e in body["errors"]} == {"status", "reason"}       # both missing: both said
    body = assert_error(c.post(f"/v1/applications/{ids['eligible']}/reviews", headers=staff, json={
        **review, "amount_cny": "abc", "reason": "理" * 2001}), 422)             # in Chinese, in its unit
    assert {(e["path"], e["message"]) for e in body["errors"]} == {
        ("amount_cny", "应为数字"), ("reason", "不能超过 2000 个字符")}, body
    body = assert_error(c.post(f"/v1/applications/{ids['eligible']}/reviews",   # a field naming no decision:
                               json={**review, "benefit_id": "no-such", "action": "override"}, headers=staff), 422)
    assert {e["path"] for e in body["errors"]} == {"benefit_id", "status", "reason"}, body   # said with the rest
    body = assert_error(c.post(f"/v1/applications/{ids['eligible']}/reviews",
                               json={**review, "subject_id": "国械注准20990000000"}, headers=staff), 422)
    assert [(e["path"], e["label"]) for e in body["errors"]] == [("subject_id", "注册证编号")], body
    body = assert_error(c.post(f"/v1/applications/{ids['eligible']}/reviews",     # which certificate: said
                               json={**review, "subject_id": "", "action": "override"}, headers=staff), 422)
    assert {e["path"] for e in body["errors"]} == {"subject_id", "status", "reason"}, body
    # A material: uploaded by staff, accepted once.
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    for data, wrong in (({"benefit_id": "no-such", "material_id": "registration_certificate"}, "benefit_id"),
                        ({"benefit_id": "device-registration-grant", "material_id": "no-such"}, "material_id")):
        body = assert_error(c.post(f"/v1/applications/{ids['missing']}/materials", headers=staff, data=data,
                                   files={"file": ("扫描件.txt", b"not a pdf", "text/plain")}), 422)
        assert len(body["errors"]) == 2 and body["errors"][-1]["path"] == wrong, body   # the file's and the field's
    ups = [c.post(f"/v1/applications/{ids['missing']}/materials", headers=staff,
                  files={"file": ("来源证明.pdf", pdf, "application/pdf")},
                  data={"benefit_id": "device-registration-grant", "material_id": "registration_certificate"})
           for _ in range(2)]           # retried: one file to review, named by the same id
    assert [u.status_code for u in ups] == [201, 200], [u.text for u in ups]
    assert [u.json()["created"] for u in ups] == [True, False] and ups[0].json()["id"] == ups[1].json()["id"]
    (m,) = c.get(f"/v1/applications/{ids['missing']}/detail", headers=staff).json()["grants"][0]["materials"]
    assert m["id"] == ups[0].json()["id"]
    got = c.get(f"/v1/applications/{ids['missing']}/materials/{m['id']}", headers=staff)
    assert got.content == pdf and got.headers["content-type"] == "application/pdf"
    url = f"/v1/applications/{ids['missing']}/materials/{m['id']}/review"
    assert c.post(url, json={"accept": True}, headers=staff).status_code == 204
    assert "已通过" in assert_error(c.post(url, json={"accept": True}, headers=staff), 409)["detail"]
    assert "受理中" in conflict(c.post(f"/v1/applications/{ids['eligible']}/objections", json={"text": "异议"},
                                       headers=staff))

    # 公示 waits for the last open 补正 deadline: the missing applicant's has passed unanswered
    assert "补正期限内" in assert_error(c.post("/v1/windows/W2/publish", headers=staff), 409)["detail"]
    from test_api_limits import _staff_login
    _staff_login(api)                   # the console's confirmation says so before anything is sent
    confirm = c.get("/staff/windows/W2/publish").text
    bogus = c.get(f"/staff/applications/{ids['missing']}/notices/bogus")     # a notice kind that does not exist
    assert bogus.status_code == 404 and "没有这种告知书" in bogus.text and "bogus" not in bogus.text
    c.cookies.clear()
    assert "补正期限内" in re.search(r'id="publish-blocked">(.*?)</div>', confirm, re.S).group(1)
    assert 'id="confirm-publish"' not in confirm
    with api.db.session() as s:
        for a in ids.values():
            app = s.get(Application, a)
            if app.correction_due is not None:
                app.correction_due = days(-1)
    w = c.post("/v1/windows/W2/publish", headers=staff)
    assert w.status_code == 200 and w.json()["state"] == "publicity" and w.json()["counts"]["applications"] == 3
    assert "公示中" in conflict(c.post("/v1/windows/W2/publish", headers=staff))
    assert "公示中" in conflict(c.post("/v1/windows/W2/one-time-notices", headers=staff))
    raised = [c.post(f"/v1/applications/{ids['eligible']}/objections", json={"text": "该企业不在园区"},
                     headers=staff) for _ in range(2)]    # a portal retrying after a timeout records it once
    assert [r.status_code for r in raised] == [201, 200], [r.text for r in raised]
    assert raised[0].json()["id"] == raised[1].json()["id"] and raised[1].json()["created"] is False
    # The enterprise reads its application without the objection (nor who raised it), nor who
    # at the park did each step; staff see them.
    own = c.get(f"/v1/applications/{ids['eligible']}", headers={"X-Access-Code": subs["eligible"].access_code})
    assert own.status_code == 200 and "该企业不在园区" not in own.text, own.text
    assert c.get(f"/v1/applications/{ids['eligible']}",       # the query parameter still works (older callers)
                 params={"access_code": subs["eligible"].access_code}).json() == own.json()
    assert assert_error(c.get(f"/v1/applications/{ids['eligible']}"), 422)["errors"][0]["path"] == "X-Access-Code"
    assert_error(c.get(f"/v1/applications/{ids['eligible']}", headers={"X-Access-Code": "WRONGCODE2345"}), 404)
    assert own.json()["objections"] == [] and own.json()["events"]
    assert all(e["actor"] == "" and e["details"] is None for e in own.json()["events"])
    assert [o["text"] for o in c.get(f"/v1/applications/{ids['eligible']}/detail", headers=staff).json()["objections"]
            ] == ["该企业不在园区"]
    proposed = c.get("/v1/windows/W2/awards", headers=staff).json()
    assert not proposed["final"] and [a["application_id"] for a in proposed["awards"]] == [ids["eligible"]]
    # its page names the 公示 period, during which an objection may be raised
    c.post("/application/login", data={"application_id": ids["eligible"], "access_code": subs["eligible"].access_code})
    period = re.search(r'id="publicity">(.*?)</dd>', c.get("/application/view").text, re.S).group(1)
    c.cookies.clear()
    w2 = c.get("/v1/windows/W2", headers=staff).json()
    assert period.startswith(f"{cn_date(date.fromisoformat(w2['publicity_from']))}至"), period

    preview = c.get("/v1/windows/W2/close", headers=admin).json()
    assert preview["awards"] == 1 and preview["early"] and preview["non_support_notices"] == 2
    assert_error(c.post("/v1/windows/W2/close", headers=staff), 403)
    body = assert_error(c.post("/v1/windows/W2/close", headers=admin), 422)
    assert body["errors"][0]["path"] == "reason" and "公示期至" in body["errors"][0]["message"]
    # an objection nobody answered stops the close, named on the preview and in the refusal
    (open_,) = preview["open_objections"]
    assert open_["text"] == "该企业不在园区" and any("异议尚未处理" in b for b in preview["blocked"])
    early = {"reason": "年度预算执行需要，经管委会同意提前关闭"}
    assert "异议尚未处理" in assert_error(c.post("/v1/windows/W2/close", json=early, headers=admin), 409)["detail"]
    resolve = f"/v1/applications/{ids['eligible']}/objections/{open_['id']}/resolution"
    from test_api_limits import _staff_login

    _staff_login(api)                       # the console's confirmation page says the same
    page = c.get("/staff/windows/W2/close").text
    assert "现在不能关闭" in page and "该企业不在园区" in page and 'id="close-form"' not in page
    c.cookies.clear()
    assert_error(c.post(f"/v1/applications/{ids['refused']}/objections/{open_['id']}/resolution",
                        json={"resolution": "x"}, headers=staff), 404)           # not that application's
    assert c.post(resolve, json={"resolution": "经核实该企业住所在园区内，异议不成立"},
                  headers=staff).status_code == 204
    assert "已处理" in assert_error(c.post(resolve, json={"resolution": "再次"}, headers=staff), 409)["detail"]
    assert c.get("/v1/windows/W2/close", headers=admin).json()["blocked"] == []
    _staff_login(api)                       # a staff member is told that closing is an admin's
    page = c.get("/staff/windows/W2/close").text
    assert 'id="close-admin-only"' in page and 'id="close-form"' not in page and "现在不能关闭" not in page
    # the one award's amount is a reference amount (W2 set no amounts): said before it is paid
    warning = re.search(r'id="close-provisional">(.*?)</li>', page, re.S).group(1)
    assert "<b>1</b> 项" in warning and "300,000元" in warning and "参考金额" in warning, warning
    conditions = re.search(r'id="close-provisional-criteria">(.*?)</li>', page, re.S).group(1)
    assert "暂定条件" in conditions and "请先复核" in conditions and "同一注册证" in conditions, conditions
    c.cookies.clear()
    closed = c.post("/v1/windows/W2/close", json=early, headers=admin)
    assert closed.status_code == 200, closed.text
    assert [a["application_id"] for a in closed.json()["awards"]] == [ids["eligible"]]
    body = assert_error(c.get("/v1/windows/W2/applications", params={"device_class": "IV"}, headers=staff), 422)
    assert body["errors"][0]["path"] == "device_class" and "III" in body["errors"][0]["message"]
    (paid,) = closed.json()["awards"]                     # class, origin and channel in words too
    assert (paid["device_class_text"], paid["channel_text"]) == ("第二类", "接口") and paid["origin_text"], paid
    assert closed.json()["non_support_notices"] == 2 and closed.json()["totals"]["amount_cny"] == 300000
    # what a portal may offer now: the notices issued, and those numbered when first opened
    paid_detail = c.get(f"/v1/applications/{ids['eligible']}/detail", headers=staff).json()
    assert "award" in paid_detail["available_notices"] and "award" not in [n["kind"] for n in paid_detail["notices"]]
    refused_detail = c.get(f"/v1/applications/{ids['refused']}", headers={
        "X-Access-Code": subs["refused"].access_code}).json()
    assert "non_support" in refused_detail["available_notices"] and "award" not in refused_detail["available_notices"]

    assert "已关闭" in conflict(c.post("/v1/windows/W2/close", json={"reason": "再次"}, headers=admin))
    _staff_login(api)                       # a closed window's confirmation page: closed, nothing to check
    page = c.get("/staff/windows/W2/close").text
    c.cookies.clear()
    assert "已关闭" in page and "关闭后不能再" not in page and 'id="close-form"' not in page
    assert "已关闭" in conflict(c.post("/v1/windows/W2/evaluate", headers=staff))
    jobs_before = len(jobs.list_jobs(api.db, window_id="W2", limit=1000))
    assert "已关闭" in conflict(c.post("/v1/windows/W2/applications/import", headers=staff,
                                       files={"file": ("late.csv", b"x", "text/csv")}))
    # a console page opened before the close: refused at once, no job queued to fail later
    from test_api_limits import _staff_login

    _staff_login(api)
    page = c.get("/staff/windows/W2").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    stale = c.post("/staff/windows/W2/evaluate", data={"csrf": csrf}, follow_redirects=False)
    assert stale.status_code == 409 and "已关闭，不能再判定" in stale.text, stale.text[-2000:]
    stale = c.post("/staff/windows/W2/import", data={"csrf": csrf}, files={"file": ("late.csv", b"x", "text/csv")},
                   follow_redirects=False)
    assert stale.status_code == 409 and "不再受理申报" in stale.text
    c.cookies.clear()
    assert len(jobs.list_jobs(api.db, window_id="W2", limit=1000)) == jobs_before > 0      # none queued
    assert "已关闭" in conflict(c.post("/v1/windows/W2/publish", headers=staff))
    assert "已关闭" in conflict(c.post("/v1/windows/W2/one-time-notices", headers=staff))
    assert "已兑现" in conflict(c.post(f"/v1/applications/{ids['eligible']}/reviews", json=review, headers=staff))
    assert "不予支持" in conflict(c.post(f"/v1/applications/{ids['refused']}/materials", headers=staff,
                                         files={"file": ("a.pdf", pdf, "application/pdf")},
                                         data={"benefit_id": "device-registration-grant",
                                               "material_id": "registration_certificate"}))
    assert "已关闭" in conflict(c.post(f"/v1/applications/{ids['refused']}/objections", json={"text": "晚了"},
                                       headers=staff))
    final = c.get("/v1/windows/W2/awards", headers=staff).json()
    assert final["final"] and final["totals"]["count"] == 1
    states = {k: c.get(f"/v1/applications/{a}/detail", headers=staff).json()["state"] for k, a in ids.items()}
    assert states == {"eligible": "awarded", "missing": "refused", "refused": "refused"}
    # exports: the formula-like name is a string cell in the xlsx, quoted and neutralised in the csv
    xlsx = load_workbook(io.BytesIO(c.get("/v1/windows/W2/awards.xlsx", headers=staff).content))
    cells = [cell for row in xlsx.active.iter_rows() for cell in row if cell.value == formula]
    assert cells and all(cell.data_type == "s" for cell in cells)
    assert any(cert in (row or ()) for row in xlsx.active.iter_rows(values_only=True))
    got = c.get("/v1/windows/W2/awards.csv", headers=staff)
    assert quote("兑现名单-W2.csv") in got.headers["content-disposition"]      # closed: no longer 拟支持
    text = got.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert any(cert in row for row in rows) and any("'" + formula in row for row in rows)
    assert all(line.startswith('"') for line in text.splitlines() if line)


def test_concurrent_reviews_of_one_application_one_wins(api: Api):
    """Issue 13: concurrent staff actions on one application: one wins, every other gets a 409
    naming the current state."""
    accepting_window(api, "W3")
    sub = api.c.post("/v1/windows/W3/applications", json={"profile": profile(5)}, headers=api.staff).json()
    assert wait_job(api, api.c.post("/v1/windows/W3/evaluate", headers=api.staff))["state"] == "succeeded"
    rev = api.c.get(f"/v1/applications/{sub['application_id']}/detail", headers=api.staff).json()["revision"]
    cert = profile(5)["device_registrations"][0]["certificate_no"]
    body = {"benefit_id": "device-registration-grant", "subject_id": cert, "action": "override",
            "status": "ineligible", "reason": "现场核查发现产品未在园区生产", "revision": rev}

    async def race():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://t") as ac:
            return await asyncio.gather(*[ac.post(f"/v1/applications/{sub['application_id']}/reviews", json=body,
                                                  headers=api.staff) for _ in range(6)])

    answers = asyncio.run(race())
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5
    for r in answers:
        if r.status_code == 409:
            conflict(r)
    detail = api.c.get(f"/v1/applications/{sub['application_id']}/detail", headers=api.staff).json()
    assert detail["revision"] == rev + 1 and detail["grants"][0]["final_status"] == "ineligible"
    assert [e["action"] for e in detail["events"]].count("review.override") == 1
    # the list shows what 复核 changed, beside the rules' verdict
    _, rows = applications.list_applications(api.db, "W3")
    (row,) = [r for r in rows if r.application_id == sub["application_id"]]
    assert row.grant_statuses == {"eligible": 1} and row.review_changes == {"ineligible": 1}


def test_an_application_that_cannot_be_judged_and_a_changed_profile(api: Api):
    """Issue 9 item 2: a stored profile the engine cannot judge (e.g. kept from before the
    field bounds) fails alone, recorded against its application; item 15: a profile changed
    after judging keeps the window from being published or closed until it is judged again."""
    c, staff = api.c, api.staff
    accepting_window(api, "W9")
    good = c.post("/v1/windows/W9/applications", json={"profile": profile(50)}, headers=staff).json()
    bad = c.post("/v1/windows/W9/applications", json={"profile": profile(51)}, headers=staff).json()
    with api.db.session() as s:
        h = s.scalar(select(Application.snapshot_hash).where(Application.id == bad["application_id"]))
        pack = packer(s, rulesets.current().registry)
        s.execute(update(ProfileSnapshot).where(ProfileSnapshot.hash == h)
                  .values(packed=pack(orjson.dumps({**profile(51), "rd_expense_cny": 2e16}))))
    job = wait_job(api, c.post("/v1/windows/W9/evaluate", headers=staff))
    assert job["state"] == "succeeded" and job["result"]["failed"] == 1, job
    assert c.get("/v1/windows/W9", headers=staff).json()["counts"]["failed"] == 1
    judged = c.get(f"/v1/applications/{good['application_id']}/detail", headers=staff).json()
    failed = c.get(f"/v1/applications/{bad['application_id']}/detail", headers=staff).json()
    assert judged["state"] == "judged" and judged["grants"]
    assert failed["state"] == "failed"
    assert "当年研发费用：不能大于" in failed["evaluation_error"] and "rd_expense_cny" not in failed["evaluation_error"]

    again = c.post("/v1/windows/W9/applications", json={"profile": profile(50, employees_avg=121)}, headers=staff)
    assert again.status_code == 201 and again.json()["application_id"] == good["application_id"]
    preview = c.get("/v1/windows/W9/close", headers=api.admin).json()
    assert preview["stale"] == 1 and any("未按现行规则" in b and "批量判定" in b for b in preview["blocked"]), preview


# --- jobs --------------------------------------------------------------------------------------------
def test_jobs_answer_202_with_progress_and_files(api: Api):
    c, staff = api.c, api.staff
    accepting_window(api, "W4")
    batch = [profile(10 + i) for i in range(4)]
    r = c.post("/v1/windows/W4/applications/import", headers=staff,
               files={"file": ("申报.csv", profiles_csv(batch), "text/csv")})
    job = wait_job(api, r)
    assert job["state"] == "succeeded" and job["kind_text"] == "批量导入", job
    assert job["result"]["created"] == 4 and job["files"] == ["查询码.csv"] and job["done"] == job["total"] == 4
    assert job["window_id"] == "W4" and job["downloads"] == {"查询码.csv": []}
    codes = c.get(f"/v1/jobs/{r.json()['job_id']}/files/查询码.csv", headers=staff)
    assert codes.status_code == 200
    # every download of the access codes is recorded, with who and when
    (once,) = c.get(f"/v1/jobs/{r.json()['job_id']}", headers=staff).json()["downloads"]["查询码.csv"]
    assert re.fullmatch(rf"\d{{4}}年\d+月\d+日 \d\d:\d\d 经办人员（令牌 {api.staff_id}）", once), once
    with api.db.read_session() as sess:      # plaintext access codes: owner-only, in the data directory
        (stored,) = sess.scalars(select(JobFile.path).where(JobFile.job_id == r.json()["job_id"])).all()
    assert Path(stored).is_relative_to(data_dir()) and Path(stored).stat().st_mode & 0o777 == 0o600
    rows = list(csv.reader(io.StringIO(codes.content.decode("utf-8-sig"))))
    found = {row[0] for row in rows}
    assert {p["uscc"] for p in batch} <= found
    assert_error(c.get(f"/v1/jobs/{r.json()['job_id']}/files/nope.csv", headers=staff), 404)

    job = wait_job(api, c.post("/v1/windows/W4/evaluate", headers=staff))
    # every known enterprise is judged too (免申即享), so at least the four applicants
    assert job["state"] == "succeeded" and job["done"] == job["total"] == job["result"]["evaluated"] >= 4
    assert job["message"] and job["started_at"] and job["finished_at"]
    job = wait_job(api, c.post("/v1/windows/W4/replay", headers=api.admin))
    assert job["state"] == "succeeded" and job["result"]["differences"] == 0 and job["result"]["decisions"] >= 4
    assert job["done"] == job["total"] >= 4         # progress says all of it, for a few hundred too
    job = wait_job(api, c.post("/v1/windows/W4/impact", json={"as_of": days(400).isoformat()}, headers=staff))
    assert job["state"] == "succeeded" and job["files"] == [f"规则变化影响-W4-{days(400).isoformat()}.xlsx"]
    assert job["done"] == job["total"] >= 4
    # Another ruleset: only a directory put among the server's rule drafts, by its name; no other
    # path of the server (the answer would tell what exists there); a draft's problems all said.
    drafts, shipped = Path(os.environ["YAGU_DATA_DIR"]) / "rules-drafts", Path(__file__).resolve().parent.parent / "rules"
    shutil.copytree(shipped, drafts / "草案-金额下调", dirs_exist_ok=True)
    shutil.copytree(shipped, drafts / "有错的草案", dirs_exist_ok=True)
    (drafts / "有错的草案" / "index.yaml").write_text("benefits: [nope, nope]\n", encoding="utf-8")
    for probe in ("/etc", "../../etc", str(shipped)):
        body = assert_error(c.post("/v1/windows/W4/impact", json={"rules_dir": probe}, headers=staff), 422)
        assert body["errors"][0]["path"] == "rules_dir" and "草案-金额下调" in body["errors"][0]["message"], body
    job = wait_job(api, c.post("/v1/windows/W4/impact", json={"rules_dir": "草案-金额下调"}, headers=staff))
    assert job["state"] == "succeeded" and job["result"]["changes"] == 0, job
    assert job["files"] == [f"规则变化影响-W4-草案-金额下调-{job['result']['as_of']}.xlsx"]
    assert job["result"]["label"].startswith("与“草案-金额下调”比较，判定日期 ") and job["about"] == job["result"]["label"]
    job = wait_job(api, c.post("/v1/windows/W4/impact", json={"rules_dir": "有错的草案"}, headers=staff))
    assert job["state"] == "failed" and "另一套规则有 11 个问题" in job["error"], job      # nope twice, 8 unlisted
    assert job["about"] == "与“有错的草案”比较", job      # a failed run still says what it compared
    assert "index.yaml:1: 事项 `nope` 重复列出" in job["error"] and "Traceback" not in job["error"], job
    # the console: its drafts offered by name; every problem of a bad one on the job's page; a
    # comparison of the rules with themselves refused before it runs
    from test_api_limits import _staff_login
    _staff_login(api)
    page = c.get("/staff/windows/W4").text
    assert '<option value="草案-金额下调">' in page and '<option value="有错的草案">' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = c.post("/staff/windows/W4/impact", data={"csrf": csrf})
    assert refused.status_code == 422 and "未分析" in refused.text and "请选择另一套规则" in refused.text
    ran = c.post("/staff/windows/W4/impact", data={"csrf": csrf, "rules_dir": "有错的草案"})
    job_page = c.get(ran.url).text if ran.url.path.startswith("/staff/jobs/") else ran.text
    for _ in range(100):
        if "任务出错" in job_page:
            break
        time.sleep(0.1)
        job_page = c.get(ran.url).text
    assert "事项 `nope` 重复列出" in job_page and job_page.count("<li>") >= 11, job_page[-3000:]
    assert "与“有错的草案”比较" in job_page
    assert "（与“有错的草案”比较）" in c.get("/staff/windows/W4").text       # told apart in the window's job list
    c.cookies.clear()
    # the notices of a window: a background job with progress, its bundle a file (issue 9 item 10)
    job = wait_job(api, c.post("/v1/windows/W4/notices", params={"html": True}, headers=staff))
    assert job["state"] == "succeeded" and job["total"] == job["result"]["applications"] >= 4, job
    assert job["files"] == ["告知书-W4.zip"]
    bundle = c.get(f"/v1/jobs/{job['id']}/files/告知书-W4.zip", headers=staff)
    assert bundle.status_code == 200 and bundle.content[:2] == b"PK"
    assert "已完成" in assert_error(c.post(f"/v1/jobs/{job['id']}/cancel", headers=staff), 409)["detail"]
    assert_error(c.get("/v1/jobs/JNOSUCHJOB", headers=staff), 404)

    r = c.post("/v1/registry/import", headers=staff, files={"file": ("名录.csv", profiles_csv([profile(30)]), "text/csv")})
    assert wait_job(api, r)["result"]["committed"] is True


@pytest.mark.parametrize("kind", STORES)
def test_a_queued_job_holds_its_lock_and_can_be_cancelled(tmp_path, kind):
    """Without a runner the job waits: a second job on the same window is refused (409 naming
    the first), the queued one is cancelled, and cancelling it again is refused."""
    with api_on(kind, tmp_path, run_jobs=False) as api:
        accepting_window(api, "W5")
        first = api.c.post("/v1/windows/W5/evaluate", headers=api.staff)
        assert first.status_code == 202
        j = api.c.get(f"/v1/jobs/{first.json()['job_id']}", headers=api.staff).json()
        assert (j["state"], j["state_text"], j["done"]) == ("queued", "排队中", 0)
        assert first.json()["job_id"] in conflict(api.c.post("/v1/windows/W5/evaluate", headers=api.staff))
        assert api.c.post(f"/v1/jobs/{first.json()['job_id']}/cancel", headers=api.staff).status_code == 204
        assert "已取消" in assert_error(api.c.post(f"/v1/jobs/{first.json()['job_id']}/cancel",
                                                   headers=api.staff), 409)["detail"]
        assert api.c.post("/v1/windows/W5/evaluate", headers=api.staff).status_code == 202


def test_integers_beyond_the_database_are_refused_alike(api: Api):
    """Issue 9 item 9 on both stores: an id past a database integer once gave PostgreSQL's
    "integer out of range" as a 500 (2^31 for a token id) and SQLite's OverflowError (2^63)."""
    c = api.c
    for huge in (2 ** 31, 2 ** 63, 2 ** 64):
        answers = [(c.delete(f"/v1/tokens/{huge}", headers=api.admin), "token_id"),
                   (c.get(f"/v1/applications/A1/materials/{huge}", headers=api.staff), "material_pk"),
                   (c.get("/v1/windows/W1/applications", params={"offset": huge}, headers=api.staff), "offset"),
                   (c.post("/v1/applications/A1/materials/1/review", json={"accept": True, "revision": huge},
                           headers=api.staff), "revision")]
        for r, path in answers:
            assert (path, "不能大于 2147483647") in [(e["path"], e["message"]) for e in assert_error(r, 422)["errors"]], \
                (path, huge)


# --- the store's side of hostile input -------------------------------------------------------------------
def test_nul_and_long_strings_never_reach_the_database(api: Api):
    """Issue 9 items 4 and 8 on both stores: NUL in a path id is 404, in any text 422; a text
    over its column's length is refused before PostgreSQL's varchar would fail."""
    c, staff = api.c, api.staff
    accepting_window(api, "W6")
    for path in ("/v1/windows/W6%00", "/v1/windows/%00/applications", "/v1/applications/A%00/detail",
                 "/v1/jobs/J%00", "/v1/applications/%00?access_code=X"):
        assert_error(c.get(path, headers=staff), 404)
    answers = [
        (c.post("/v1/windows", json={"id": "W7", "label": "批次\x00"}, headers=staff), "label"),
        (c.post("/v1/windows/W6/applications", json={"profile": profile(40, name="企业\x00")}, headers=staff),
         "profile.name"),
        (c.post("/v1/windows/W6/applications", json={"profile": profile(41), "claims": ["川\x00"]}, headers=staff),
         "claims[0]"),
        (c.get("/v1/windows/W6/applications", params={"q": "资阳\x00"}, headers=staff), "q"),
        (c.post("/v1/tokens", json={"role": "staff", "label": "a\x00"}, headers=api.admin), "label"),
    ]
    for r, path in answers:
        assert (path, NUL_MESSAGE) in [(e["path"], e["message"]) for e in assert_error(r, 422)["errors"]], path
    # the enterprise's login form (once /lookup) with NUL in the id or the code: refused, not a 500
    for form in ({"application_id": "A\x00", "access_code": "X"}, {"application_id": "A1", "access_code": "X\x00"}):
        r = c.post("/application/login", data=form, follow_redirects=False)
        assert r.status_code == 401 and "申报编号或查询码不正确" in r.text and "\x00" not in r.text
        assert "查询码遗失的" in r.text and "重新发放" in r.text        # where to find them, and a lost code
    long_cert = profile(42, certificate={"certificate_no": "川械注准" + "1" * 100})
    body = assert_error(c.post("/v1/windows/W6/applications", json={"profile": long_cert}, headers=staff), 422)
    assert body["errors"][0]["path"] == "profile.device_registrations[0].certificate_no"
    # A NUL inside an import file is a row problem; in the file's name it is dropped.
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="\xe5\x90\x8d\x00\xe5\x8d\x95.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n" + nul_csv() + b"\r\n--B--\r\n")
    job = wait_job(api, c.post("/v1/windows/W6/applications/import", content=body,
                               headers={**staff, "content-type": "multipart/form-data; boundary=B"}))
    assert job["state"] == "succeeded" and job["result"]["committed"] is False
    assert job["result"]["filename"] == "名单.csv" and job["result"]["problems"]
    assert c.get("/v1/windows/W6", headers=staff).json()["counts"]["applications"] == 0
    assert c.get("/healthz").status_code == 200


def test_storage_outage_is_a_503_and_the_health_check_says_so(api: Api, tmp_path):
    """Issue 9 item 16: a read-only SQLite file, or a PostgreSQL server that went away."""
    rt = api.app.state.runtime
    if api.kind == "sqlite":
        outage = Database(f"sqlite:///file:{rt.db.engine.url.database}?mode=ro&uri=true")
        reason = "数据库文件只读"
    else:
        outage = Database("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
        reason = "无法连接或写入数据库"
    healthy, rt.db = rt.db, outage
    try:
        for r in (api.c.get("/healthz"), api.c.post("/v1/windows", json={"id": "2027-H1"}, headers=api.staff)):
            detail = assert_error(r, 503)["detail"]
            assert reason in detail and "稍后重试" in detail and r.headers["retry-after"]
        page = api.c.get("/apply")          # a read-only file can still be read
        if api.kind == "postgres":
            assert page.status_code == 503 and reason in page.text and "text/html" in page.headers["content-type"]
        else:
            assert page.status_code == 200
        # the self-check does not need to write: when the award ledger cannot be read, the
        # criterion it decides is unknown, never a pass
        r = api.c.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "as_of": "2026-03-31"})
        assert r.status_code == 200
        grant = next(x for x in r.json()["results"] if x["benefit_id"] == "device-registration-grant")
        assert grant["status"] == ("needs_info" if api.kind == "postgres" else "eligible")
    finally:
        rt.db = healthy
        outage.dispose()
    assert api.c.get("/healthz").status_code == 200


def test_the_enterprise_page_files_each_upload_under_its_certificate(api: Api):
    """Two certificates of one application both lack their 来源 and so both are asked the same
    materials: each file input on the enterprise's page names its certificate, the upload lands
    under that certificate, and a 容缺 commitment names the certificate it covers."""
    c, staff = api.c, api.staff
    c.post("/v1/windows", headers=staff, json={
        "id": "W9", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    p = profile(91, certificate={"origin": None})
    p["device_registrations"].append({**p["device_registrations"][0], "certificate_no": cert_no(92)})
    sub = applications.submit_application(api.db, "W9", p, channel="api", actor="测试", today=days(-3))
    wait_job(api, c.post("/v1/windows/W9/evaluate", headers=staff))
    assert c.post("/v1/windows/W9/one-time-notices", headers=staff).json() == {"issued": 1}
    detail = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()
    assert detail["state"] == "correction"

    c.cookies.clear()
    assert c.post("/application/login", data={"application_id": sub.application_id,
                                              "access_code": sub.access_code}).status_code == 200
    view = c.get("/application/view").text
    inputs = re.findall(r'type="file" name="file:([^"]+)"', view)
    assert {i.split("|")[1] for i in inputs} == {cert_no(91), cert_no(92)}, inputs
    one = next(i for i in inputs if i.split("|")[1] == cert_no(92))
    csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    wrong = c.post("/application/correction", data={"csrf": csrf}, follow_redirects=False,
                   files={f"file:{one}": ("fake.pdf", b"just text", "application/pdf")})
    name = re.search(r'<legend>([^<]+) <small>（注册证 ' + cert_no(92), view).group(1)
    assert wrong.status_code == 422 and name in wrong.text and "企业画像" not in wrong.text, wrong.text[-2000:]
    assert c.get("/self-check", follow_redirects=False).headers["location"] == "/"     # a reloaded result
    # what the 补正 leaves out is listed, until the enterprise says it cannot provide it
    left = c.post("/application/correction", data={"csrf": csrf}, follow_redirects=False,
                  files={f"file:{one}": ("第二张证的材料.pdf", pdf, "application/pdf")})
    assert left.status_code == 422 and 'id="left-out-hint"' in left.text
    box = re.search(r'id="correction-errors">(.*?)</div>', left.text, re.S).group(1)
    assert f"（注册证 {cert_no(91)}）</b>：尚未上传" in box and "第二张证" not in box
    assert "已收到“第二张证的材料.pdf”" in left.text          # kept for the next try
    r = c.post("/application/correction", data={"csrf": csrf, "partial": "yes"}, follow_redirects=False,
               files={f"file:{one}": ("第二张证的材料.pdf", pdf, "application/pdf")})
    assert r.status_code == 303 and r.headers["location"].endswith("done=corrected"), r.text
    c.cookies.clear()
    grants = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()["grants"]
    filed = {g["result"]["subject"]["id"]: [m["filename"] for m in g["materials"]] for g in grants}
    assert filed == {cert_no(91): [], cert_no(92): ["第二张证的材料.pdf"]}, filed


def test_the_close_confirmation_names_running_corrections_and_closed_pages_ask_nothing(api: Api):
    """Closing early cuts running 补正 periods short: the confirmation says how many and until
    when. Once closed, the enterprise's page gives the final outcome and no longer asks for
    facts or shows a pending amount."""
    from test_api_limits import _staff_login

    c, staff, admin = api.c, api.staff, api.admin
    c.post("/v1/windows", headers=staff, json={
        "id": "W8", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    sub = applications.submit_application(api.db, "W8", profile(81, certificate={"origin": None}), channel="api",
                                          actor="测试", today=days(-3))
    wait_job(api, c.post("/v1/windows/W8/evaluate", headers=staff))
    assert c.post("/v1/windows/W8/one-time-notices", headers=staff).json() == {"issued": 1}
    due = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()["correction_due"]
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    r = c.post(f"/v1/applications/{sub.application_id}/materials", headers=staff,
               data={"benefit_id": "device-registration-grant", "material_id": "credit_report", "subject_id": cert_no(81)},
               files={"file": ("信用报告.pdf", pdf, "application/pdf")})
    assert r.status_code == 201, r.text
    c.cookies.clear()
    _staff_login(api)
    home = c.get("/staff").text
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*W8(?:(?!</tr>).)*</tr>", home, re.S).group(0)
    assert "受理期已结束，待公示" in row and "受理中" not in row, row     # not 受理中, not a contradiction
    assert "尚未公示" in re.search(r'id="close-blocked">(.*?)</div>', c.get("/staff/windows/W8/close").text,
                                   re.S).group(1)
    from store import awards
    # publicized as if on a day after the 补正 deadline: on the real today it still runs
    awards.publish(api.db, "W8", today=date.fromisoformat(due) + timedelta(days=1))
    page = c.get("/staff/windows/W8/close").text
    warning = re.search(r'id="close-corrections">(.*?)</p>', page, re.S).group(1)
    assert "1" in warning and "补正期限尚未届满" in warning
    y, m, d = (int(x) for x in due.split("-"))
    assert f"{y}年{m}月{d}日" in warning
    # nobody reviewed the refusal closing would make: the confirmation says so, with the lists
    unreviewed = re.search(r'id="close-unreviewed">(.*?)</p>', page, re.S).group(1)
    assert "<b>1</b>" in unreviewed and "没有复核记录" in unreviewed
    pending = re.search(r'id="close-pending-materials">(.*?)</p>', page, re.S).group(1)
    assert "<b>1</b>" in pending and "尚未审核" in pending and f'/staff/applications/{sub.application_id}"' in pending
    assert "资阳测试企业81有限公司（企业信用报告" in pending
    assert "/staff/windows/W8/applications?status=needs_info&amp;reviewed=no" in unreviewed
    listed = c.get("/staff/windows/W8/applications?status=needs_info&reviewed=no").text
    assert sub.application_id in listed
    c.cookies.clear()
    assert c.get("/v1/windows/W8/close", headers=admin).json()["unreviewed_refusals"] == 1
    assert c.post("/v1/windows/W8/close", json={"reason": "测试提前关闭"}, headers=admin).status_code == 200
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    c.cookies.clear()
    grant = view[view.index("<h2>资金支持</h2>"):view.index("</article>", view.index('data-benefit="device-registration-grant"'))]
    assert "本项最终结论：不予支持" in grant and "还需填写" not in grant and "怎样才能符合" not in grant
    assert "参考金额" not in grant


def test_a_commitment_says_until_when_on_both_pages_and_names_the_material(api: Api):
    """容缺: the offer says how long the enterprise has; once signed, its page gives the date to
    supply the material by, and the staff page names the material (not its code), the signer and
    that date."""
    from test_api_limits import _staff_login

    c, staff = api.c, api.staff
    c.post("/v1/windows", headers=staff, json={
        "id": "W7", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    sub = applications.submit_application(api.db, "W7", profile(71, on_serious_dishonest_list=None), channel="api",
                                          actor="测试", today=days(-3))
    wait_job(api, c.post("/v1/windows/W7/evaluate", headers=staff))
    assert c.post("/v1/windows/W7/one-time-notices", headers=staff).json() == {"issued": 1}
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    # 容缺 is signed in the 补正 form itself, next to the material's file: what was typed stays
    offer = re.search(r'<fieldset class="field material">.*?</fieldset>', view, re.S).group(0)
    assert re.search(r"自签署次日起 \d+ 个工作日内补交", offer), offer
    signer = re.search(r'name="(signer:[^"]+)"', offer).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
    long_name = "张" * 51
    bad = c.post("/application/correction", data={"csrf": csrf, signer: long_name, "partial": "yes",
                                                  "fact:on_serious_dishonest_list": "no"})
    assert bad.status_code == 422 and "<b>企业信用报告（无违法违规记录版）的容缺承诺人</b>" in bad.text
    assert f'value="{long_name}"' in bad.text and "承诺人姓名" in bad.text
    with api.db.read_session() as s:            # nothing stored while a problem remains
        assert s.scalar(select(func.count()).select_from(Commitment)
                        .where(Commitment.application_id == sub.application_id)) == 0
    r = c.post("/application/correction", data={"csrf": csrf, signer: "张三", "partial": "yes"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    view = c.get("/application/view").text
    promised = re.search(r'<div class="card promised">(.*?)</div>', view, re.S).group(1)
    due = re.search(r"请于 <b>(\d{4}年\d{1,2}月\d{1,2}日)</b> 前补交", promised).group(1)
    c.cookies.clear()
    _staff_login(api)
    page = c.get(f"/staff/applications/{sub.application_id}").text
    close = c.get("/staff/windows/W7/close").text            # closing says which promises are still open
    c.cookies.clear()
    still = re.search(r'id="close-commitments">(.*?)</p>', close, re.S).group(1)
    assert "资阳测试企业71有限公司（企业信用报告" in still and f"{due}前" in still
    listed = re.search(r'<ul class="promised">(.*?)</ul>', page, re.S).group(1)
    assert "张三" in listed and f"承诺 {due}前补交" in listed and "尚未补交" in listed
    material_id = signer.rsplit("|", 1)[1]
    assert material_id not in listed and "已签署容缺承诺：" + material_id not in page
    # the promised material is uploaded on the same page until the deadline, once
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    supply = re.search(r'<form method="post" action="/application/promised".*?</form>', view, re.S).group(0)
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', supply))
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    wrong = c.post("/application/promised", data=hidden, files={"file": ("报告.pdf", b"text", "application/pdf")})
    assert wrong.status_code == 422
    at = re.search(r'<form method="post" action="/application/promised".*?</form>', wrong.text, re.S).group(0)
    assert "材料未补交" in at and "不是" in at and "autofocus" in at     # the reason at its form
    none = c.post("/application/promised", data=hidden)
    assert none.status_code == 422 and "请选择要补交的文件" in none.text
    r = c.post("/application/promised", data=hidden, files={"file": ("信用报告.pdf", pdf, "application/pdf")},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=supplied"), r.text
    view = c.get("/application/view").text
    assert "已补交" in re.search(r'<div class="card promised">(.*?)</div>', view, re.S).group(1)
    assert 'action="/application/promised"' not in view
    again = c.post("/application/promised", data=hidden, files={"file": ("再交.pdf", pdf, "application/pdf")})
    assert again.status_code == 409 and "材料未补交：该材料已补交" in again.text   # at the top: no form left
    c.cookies.clear()
    _staff_login(api)
    page = c.get(f"/staff/applications/{sub.application_id}").text
    c.cookies.clear()
    assert "（已补交）" in re.search(r'<ul class="promised">(.*?)</ul>', page, re.S).group(1)
    assert "信用报告.pdf" in page and "补交承诺的材料：企业信用报告" in page and "签署容缺承诺：企业信用报告" in page
    assert f"{len(pdf)} 字节 · " in page                                      # a small file is not "0.0 KB"


def test_a_correction_with_problems_lists_them_all_and_keeps_what_was_typed(api: Api):
    """One 补正 with a file that is not a PDF, a file over the limit and a date in the future:
    the page lists the three problems at once, above the form, which keeps what was typed; the
    file inputs (which no page can refill) are said to need choosing again; nothing is stored."""
    c, staff = api.c, api.staff
    sub = _notified(api, "W6", profile(61, certificate={"origin": None, "obtained_on": None}))
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
    facts = dict(re.findall(r'name="(fact:[^"]+)" id="(fact-\d+)"', view))
    date_key = next(k for k in facts if k.endswith("obtained_on"))
    origin_key = next(k for k in facts if k.endswith("origin"))
    files_in = re.findall(r'type="file" name="(file:[^"]+)"', view)
    assert len(files_in) >= 2, files_in
    future = days(30).isoformat()
    r = c.post("/application/correction", data={"csrf": csrf, date_key: future, origin_key: "self_developed"},
               files={files_in[0]: ("假的.pdf", b"just text", "application/pdf"),
                      files_in[1]: ("很大.pdf", b"%PDF-1.4\n" + b"0" * (11 * 2**20), "application/pdf")})
    assert r.status_code == 422, r.text[-1500:]
    box = re.search(r'id="correction-errors">(.*?)</div>', r.text, re.S).group(1)
    assert "假的.pdf" in box and "很大.pdf" in box and "10 MB" in box and "不能晚于今天" in box, box
    assert "请重新选择" in box
    assert f'value="{future}"' in r.text
    assert re.search(r'<option value="self_developed" selected>', r.text)
    c.cookies.clear()
    detail = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()
    assert detail["state"] == "correction" and all(not g["materials"] for g in detail["grants"])


def test_a_refused_correction_keeps_the_good_files_for_the_next_try(api: Api):
    """A 补正 sent back for a fact left out keeps the files that passed their checks: the page
    says they were received and the next try sends them without choosing them again; a wrong
    file is not kept. Once the 补正 goes through, nothing stays held."""
    c, staff = api.c, api.staff
    sub = _notified(api, "W16", profile(66, certificate={"origin": None}))
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
    origin_key = next(k for k in re.findall(r'name="(fact:[^"]+)"', view) if k.endswith("origin"))
    files_in = re.findall(r'type="file" name="(file:[^"]+)"', view)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    sent = {k: (f"材料{i}.pdf", pdf, "application/pdf") for i, k in enumerate(files_in)}
    sent[files_in[0]] = ("假的.pdf", b"just text", "application/pdf")
    r = c.post("/application/correction", data={"csrf": csrf}, files=sent)        # the origin left out
    assert r.status_code == 422
    kept = dict(re.findall(r'name="(held:[^"]+)" value="([0-9a-f]{64})"', r.text))
    assert sorted(k[5:] for k in kept) == sorted(k[5:] for k in files_in[1:]), kept     # not the wrong one
    assert "已收到“材料1.pdf”" in r.text and "有问题的文件没有保留" in r.text
    done = c.post("/application/correction", data={"csrf": csrf, origin_key: "self_developed", **kept},
                  files={files_in[0]: ("材料0.pdf", pdf, "application/pdf")}, follow_redirects=False)
    assert done.status_code == 303, done.text[-2000:]
    from api.security import ENTERPRISE_COOKIE
    from store import held
    assert held.held(c.cookies.get(ENTERPRISE_COOKIE)) == {}         # nothing stays held
    c.cookies.clear()
    detail = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()
    names = sorted(m["filename"] for g in detail["grants"] for m in g["materials"])
    assert names == sorted(f"材料{i}.pdf" for i in range(len(files_in))), names
    # a file for a material no longer required (the change document of a self-developed product)
    # is named in words too (it showed as registrant_change_document)
    assert all(m["name"] != m["material_id"] for g in detail["grants"] for m in g["materials"]), detail["grants"]


def test_a_list_fact_is_answered_in_the_correction_row_by_row_or_as_none(api: Api):
    """违法违规记录 left unknown is asked in the 补正 as a list: 没有, or each record on its own
    row (one more row on request, what was typed kept); each answer reaches the profile as a
    list (a text box once sent "没有" and was refused: 必须是列表)."""
    c, staff = api.c, api.staff
    c.post("/v1/windows", headers=staff, json={
        "id": "W11", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    subs = [applications.submit_application(api.db, "W11", profile(110 + i, violations=None), channel="api",
                                            actor="测试", today=days(-3)) for i in range(2)]
    wait_job(api, c.post("/v1/windows/W11/evaluate", headers=staff))
    assert c.post("/v1/windows/W11/one-time-notices", headers=staff).json() == {"issued": 2}
    for sub, answer in zip(subs, ("none", "listed")):
        c.cookies.clear()
        c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
        view = c.get("/application/view").text
        assert 'name="fact:violations.known"' in view and view.count('name="fact:violations.kind"') == 3
        csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
        form = {"csrf": csrf, "fact:violations.known": answer, "partial": "yes"}
        if answer == "none":            # 没有 with a record typed below: said, never silently dropped
            typed = c.post("/application/correction", data={**form, "fact:violations.kind": "tax_evasion",
                                                             "fact:violations.decided_on": "2025-01-10"})
            box = re.search(r'id="correction-errors">(.*?)</div>', typed.text, re.S).group(1)
            assert typed.status_code == 422 and "选择了“没有记录”，但下面填写了记录" in box, box
            assert 'value="2025-01-10"' in typed.text
        if answer == "listed":
            more = c.post("/application/correction", data={**form, "action": "add:violations",
                                                            "fact:violations.description": "标签不规范"})
            assert more.status_code == 200 and more.text.count('name="fact:violations.kind"') == 4
            assert 'value="标签不规范"' in more.text
            # the new (fourth) row's first box has the focus, and no other box
            (focused,) = re.findall(r'<(?:select|input)[^>]*\bautofocus\b[^>]*>', more.text)
            assert re.match(r'<select name="fact:violations.kind" id="fact-\d+-3-kind"', focused), focused
            form |= {"fact:violations.kind": ["market_minor", ""], "fact:violations.decided_on": ["2024-06-01", ""],
                     "fact:violations.authority": ["market", ""], "fact:violations.description": ["标签不规范", ""],
                     "fact:violations.known": ""}       # rows filled, no choice made: the rows are the answer
        # the answer needs the proof the notice asked with it (无欠税及重大税收违法记录证明)
        refused = c.post("/application/correction", data=form)
        box = re.search(r'id="correction-errors">(.*?)</div>', refused.text, re.S).group(1)
        assert refused.status_code == 422 and "无欠税及重大税收违法记录证明" in box and "证明材料" in box, box
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        files = {f"file:{key}": ("证明.pdf", pdf, "application/pdf")
                 for key in re.findall(r'type="file" name="file:([^"]+)"', view)}
        r = c.post("/application/correction", data=form, files=files)
        assert "补正已提交" in r.text, r.text[-3000:]
        # the same form sent again (a second tap, another tab): the same page, not an error
        again = c.post("/application/correction", data=form, files=files)
        assert again.status_code == 200 and "补正已提交" in again.text, again.text[-2000:]
        other = c.post("/application/correction", data={**form, "partial": ""}, files=files)
        assert other.status_code == 409 and "这次提交未被接受" in other.text and "补正已于" in other.text
        c.cookies.clear()
        stated = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()["profile"]["violations"]
        assert stated == ([] if answer == "none" else [
            {"kind": "market_minor", "decided_on": "2024-06-01", "authority": "market", "description": "标签不规范"}])


def _notified(api: Api, window_id: str, p: dict):
    """`p` applied in a window whose acceptance has ended, judged, its one-time notice issued."""
    c, staff = api.c, api.staff
    c.post("/v1/windows", headers=staff, json={
        "id": window_id, "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    sub = applications.submit_application(api.db, window_id, p, channel="api", actor="测试", today=days(-3))
    wait_job(api, c.post(f"/v1/windows/{window_id}/evaluate", headers=staff))
    assert c.post(f"/v1/windows/{window_id}/one-time-notices", headers=staff).json() == {"issued": 1}
    return sub


def _asked_origin_and_violations(api: Api, window_id: str, i: int):
    """An application whose certificate's origin and whose violations are unknown, in a window
    judged and notified: (submission, the access-code header, its API path, what the 补正 asks)."""
    c = api.c
    sub = _notified(api, window_id, profile(i, certificate={"origin": None}, violations=None))
    own, url = {"X-Access-Code": sub.access_code}, f"/v1/applications/{sub.application_id}"
    return sub, own, url, c.get(url, headers=own).json()["correction"]


def test_a_portal_submits_the_correction_and_downloads_the_notices_through_the_api(api: Api):
    """一网通办: the enterprise's side of the 补正 through the API with its access code — one
    submission, every problem at once, nothing stored until complete; then its notice."""
    c = api.c
    sub, own, url, asked = _asked_origin_and_violations(api, "W12", 120)
    origin = next(f for f in asked["facts"] if f.endswith(".origin"))
    assert "violations" in asked["facts"] and asked["materials"]
    assert_error(c.post(url + "/correction", data={"facts": "{}"}, headers={"X-Access-Code": "WRONGCODE2345"}), 404)
    assert assert_error(c.post(url + "/correction", data={"facts": "{}"}), 422)["errors"][0]["path"] == "X-Access-Code"
    # one fact given, the rest left out: every one left out is said, nothing stored
    body = assert_error(c.post(url + "/correction", data={"facts": json.dumps({origin: "self_developed"})},
                               headers=own), 422)
    assert {(e["path"], e["message"]) for e in body["errors"] if not e["path"].startswith("files.")} == {
        ("violations", "尚未填写")}
    assert any(e["message"] == "尚未上传" for e in body["errors"]), body
    # each problem named as the enterprise knows it: the fact, and the material with its certificate
    assert all(e["label"] and not e["label"].isascii() for e in body["errors"]), body["errors"]
    assert any(e["path"].startswith("files.") and "（注册证 " in e["label"] for e in body["errors"])
    assert c.get(url, headers=own).json()["state"] == "correction"
    assert_error(c.post(url + "/correction", data={"facts": "[1]"}, headers=own), 422)
    # a promise list that does not read is said with the facts' own problems, not before them
    body = assert_error(c.post(url + "/correction", headers=own, data={
        "facts": json.dumps({origin: "不知道", "violations": []}), "promises": "签字了"}), 422)
    assert {"promises", origin} <= {e["path"] for e in body["errors"]}, body["errors"]
    assert next(e["label"] for e in body["errors"] if e["path"] == "promises") == "容缺承诺"
    # sent as JSON, not as the form it is: refused as such (it was read as an empty form)
    assert "multipart/form-data" in assert_error(c.post(url + "/correction", json={"facts": {origin: "introduced"}},
                                                        headers=own), 415)["detail"]
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    files = {f"file:{m['benefit_id']}|{m['subject_id']}|{m['material_id']}": (f"{m['material_id']}.pdf", pdf, "application/pdf")
             for m in asked["materials"]}
    done = c.post(url + "/correction", headers=own, files=files,
                  data={"facts": json.dumps({origin: "self_developed", "violations": []})})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "corrected" and done.json()["objections"] == []
    # sent again (the answer was lost on the way): the same application, not an error; another
    # 补正 is refused, naming when the first was sent
    again = c.post(url + "/correction", headers=own, files=files,
                   data={"facts": json.dumps({origin: "self_developed", "violations": []})})
    assert again.status_code == 200 and again.json()["events"] == done.json()["events"], again.text
    assert "补正已于" in assert_error(c.post(url + "/correction", headers=own, files=files, data={
        "facts": json.dumps({origin: "introduced", "violations": []})}), 409)["detail"]
    notice = c.get(url + "/notices/one_time", headers=own)
    assert notice.status_code == 200 and notice.headers["content-type"] == "application/pdf"
    assert "一次性告知书" in unquote(notice.headers["content-disposition"])
    assert "尚未兑现" in assert_error(c.get(url + "/notices/award", headers=own), 409)["detail"]
    assert_error(c.get(url + "/notices/selfcheck", headers=own), 422)


def test_a_material_the_correction_made_moot_is_said_to_be_no_longer_needed(api: Api):
    """The notice asked for files a missing fact decides; the 补正 gives the fact (and says it
    cannot provide the rest): the files no longer asked are named on the enterprise's page and
    in the API, and the ones still asked are not among them."""
    c = api.c
    sub, own, url, asked = _asked_origin_and_violations(api, "W13", 130)
    origin = next(f for f in asked["facts"] if f.endswith(".origin"))
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    proofs = {f"file:{m['benefit_id']}|{m['subject_id']}|{m['material_id']}": (f"{m['material_id']}.pdf", pdf, "application/pdf")
              for m in asked["materials"] if m["material_id"] != "registrant_change_document"}
    done = c.post(url + "/correction", headers=own, files=proofs, data={
        "facts": json.dumps({origin: "self_developed", "violations": []}), "complete": "false"}).json()
    still = {m["name"] for g in done["grants"] for m in g["result"]["required_materials"]
             if m["id"] in g["result"]["missing_materials"]}
    moot = done["no_longer_needed"]
    named = {n: next(m["name"] for m in asked["materials"] if n.startswith(m["name"])) for n in moot}
    assert moot and not set(named.values()) & still, (moot, still)      # asked, and no longer
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    note = re.search(r'id="no-longer-needed">(.*?)</div>', c.get("/application/view").text, re.S).group(1)
    c.cookies.clear()
    assert "已不再需要" in note and all(n in note for n in moot), note


def test_a_grant_made_eligible_by_review_reads_so_on_the_enterprise_page(api: Api):
    """复核 to 符合条件 with the amount the rules could not give: the enterprise's page states the
    review's verdict and amount, keeps the rules' card as their record, and no longer asks for
    anything or suggests how to qualify."""
    c, staff = api.c, api.staff
    c.post("/v1/windows", headers=staff, json={
        "id": "W5", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    sub = applications.submit_application(api.db, "W5", profile(51, in_park=False), channel="api", actor="测试",
                                          today=days(-3))
    wait_job(api, c.post("/v1/windows/W5/evaluate", headers=staff))
    # in the console: every problem of the review form at once, at that decision, as typed
    from test_api_limits import _staff_login
    _staff_login(api)
    page = c.get(f"/staff/applications/{sub.application_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post(f"/staff/applications/{sub.application_id}/review", data={
        "csrf": csrf, "benefit_id": "device-registration-grant", "subject_id": cert_no(51), "decision": "eligible",
        "reason": "", "amount_cny": "一百万"})
    rev = int(re.search(r'name="revision" value="(\d+)"', page).group(1))
    stale = c.post(f"/staff/applications/{sub.application_id}/review", data={    # someone else came first
        "csrf": csrf, "benefit_id": "device-registration-grant", "subject_id": cert_no(51), "decision": "eligible",
        "reason": "现场核实已入园", "amount_cny": "1500000", "revision": str(rev - 1)})
    c.cookies.clear()
    assert stale.status_code == 409 and "已被他人更新" in stale.text and 'value="现场核实已入园"' in stale.text
    assert r.status_code == 422
    box = re.search(r'id="review-errors">(.*?)</div>', r.text, re.S).group(1)
    assert "<b>理由</b>：改变规则判定须写明理由" in box and "<b>支持金额</b>" in box, box
    assert "选择" not in box                                     # the verdict was chosen: not asked again
    assert re.search(r'name="reason" maxlength="2000" value=""[^>]*aria-invalid="true"', r.text)
    assert 'value="一百万"' in r.text and '<option value="eligible" selected>' in r.text
    review = {"benefit_id": "device-registration-grant", "subject_id": cert_no(51), "action": "override",
              "status": "eligible", "reason": "已签订入园协议"}
    refused = assert_error(c.post(f"/v1/applications/{sub.application_id}/reviews", json=review, headers=staff), 422)
    assert "支持金额" in str(refused)
    r = c.post(f"/v1/applications/{sub.application_id}/reviews", json={**review, "amount_cny": "1500000"},
               headers=staff)
    assert r.status_code == 201, r.text
    again = c.post(f"/v1/applications/{sub.application_id}/reviews", json={**review, "amount_cny": "1500000.00"},
                   headers=staff)       # retried without a revision: recorded once
    assert again.status_code == 200 and again.json() == {"id": r.json()["id"], "created": False}, again.text
    detail = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()
    (said,) = [e for e in detail["events"] if e["action"] == "review.override"]
    assert said["action_text"] == f"复核：改变判定（注册证 {cert_no(51)}，不符合条件 → 符合条件，支持金额 1,500,000元）", said
    assert detail["grants"][0]["review"]["id"] == r.json()["id"]
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    c.cookies.clear()
    note = re.search(r'<p class="alert info review-note">(.*?)</p>', view, re.S).group(1)
    assert "符合条件" in note and "1,500,000元" in note and "已签订入园协议" in note
    # the award list and its export say where the amount comes from: the review, not a document
    (award,) = [a for a in c.get("/v1/windows/W5/awards", headers=staff).json()["awards"]
                if a["application_id"] == sub.application_id]
    assert award["amount_cny"] == 1500000 and award["amount_reviewed"] and not award["amount_provisional"]
    sheet = load_workbook(io.BytesIO(c.get("/v1/windows/W5/awards.xlsx", headers=staff).content)).active
    rows = [[str(x.value) for x in r] for r in sheet.iter_rows()]
    assert any("复核确定（规则未给出金额）" in r and sub.application_id in r for r in rows), rows
    card = view[view.index('data-benefit="device-registration-grant"'):]
    card = card[:card.index("</article>")]
    assert "怎样才能符合" not in card and "还需填写" not in card


def test_a_window_opened_by_mistake_is_deleted_from_its_page(api: Api):
    from test_api_limits import _staff_login

    c, staff = api.c, api.staff
    assert c.post("/v1/windows", headers=staff, json={
        "id": "WDEL", "opens_on": days(-3).isoformat(), "closes_on": days(30).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-3).isoformat()}).status_code == 201
    _staff_login(api)
    page = c.get("/staff/windows/WDEL").text
    assert 'id="delete-window"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post("/staff/windows/WDEL/delete", data={"csrf": csrf, "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff?done=deleted"
    assert "申报批次已删除" in c.get(r.headers["location"]).text
    c.cookies.clear()
    assert_error(c.get("/v1/windows/WDEL", headers=staff), 404)


def test_the_self_check_carries_what_was_typed_into_the_application_form(api: Api):
    """用所填信息在线申报: the application form opens filled with what the self-check was given
    (a clerk on a phone once typed twenty facts and two certificates again)."""
    import html as html_

    accepting_window(api, "WSC")
    p = profile(170)
    results = api.c.post("/self-check/upload", files={"file": ("p.json", json.dumps(p), "application/json")})
    carried = re.search(r'id="apply-with-profile">.*?name="profile_json" value="([^"]*)"', results.text, re.S)
    raw = html_.unescape(carried.group(1))
    assert json.loads(raw)["uscc"] == p["uscc"]
    listed = api.c.post("/apply", data={"profile_json": raw})      # several windows accept: choose one
    assert listed.status_code == 200
    if 'id="profile-form"' not in listed.text:
        assert listed.text.count('name="window_id"') >= 2 and "自测所填的信息会带入申报表" in listed.text
    form = api.c.post("/apply", data={"profile_json": raw, "window_id": "WSC"})
    assert form.status_code == 200 and 'action="/apply/WSC"' in form.text
    assert f'value="{html_.escape(p["name"])}"' in form.text and f'value="{p["uscc"]}"' in form.text
    cert = p["device_registrations"][0]["certificate_no"]
    assert f'value="{cert}"' in form.text
    assert api.c.post("/apply", data={"profile_json": "not json"}, follow_redirects=False).status_code == 303
    # 修改所填信息: the self-check's form again, filled (重新自测 starts empty)
    again = api.c.post("/self-check/edit", data={"profile_json": raw})
    assert again.status_code == 200 and 'action="/self-check"' in again.text and f'value="{cert}"' in again.text
    # 修改申报 on the enterprise's page, while the window accepts: the application form, filled
    sub = applications.submit_application(api.db, "WSC", p, channel="api", actor="测试")
    api.c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    page = api.c.get("/application/view").text
    amend = re.search(r'<form method="post" action="/apply" class="card no-print" id="amend">.*?</form>', page, re.S)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', amend.group(0)))
    api.c.cookies.clear()
    form = api.c.post("/apply", data={k: html_.unescape(v) for k, v in fields.items()})
    assert 'action="/apply/WSC"' in form.text and f'value="{cert}"' in form.text and 'name="prior_code"' in form.text


def test_a_promise_about_the_enterprise_is_supplied_once_for_all_its_certificates(api: Api):
    """The credit report is about the enterprise: promised once, it is supplied once — one upload
    box, under the first certificate, and a note under the others (there was a box under each)."""
    c = api.c
    p = profile(150, on_serious_dishonest_list=None)
    p["device_registrations"].append({**p["device_registrations"][0], "certificate_no": cert_no(150, 1)})
    sub = _notified(api, "W15", p)
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    signer = re.search(r'name="(signer:device-registration-grant\|\|credit_report)"', view).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
    assert c.post("/application/correction", data={"csrf": csrf, signer: "张三", "partial": "yes"},
                  follow_redirects=False).status_code == 303
    view = c.get("/application/view").text
    c.cookies.clear()
    assert view.count("<div class=\"card promised\">") == 2                  # listed under each certificate
    assert view.count('action="/application/promised"') == 1                # supplied once
    assert "在上面第一张注册证下补交一次即可" in view


def test_a_long_application_list_pages_with_previous_next_and_nearby_pages(api: Api):
    """3,000 applications once made 60 bare page links; now: 上一页, the first, the last and the
    pages near this one, 下一页, and where one is."""
    from test_api_limits import _staff_login

    accepting_window(api, "WPG")
    applications.import_applications(api.db, "WPG", profiles_csv([profile(2000 + i) for i in range(401)]),
                                      "many.csv", today=days(0))
    _staff_login(api)
    pager = re.search(r'<nav class="pager".*?</nav>', api.c.get("/staff/windows/WPG/applications?page_no=5").text,
                      re.S).group(0)
    api.c.cookies.clear()
    links = re.findall(r'page_no=(\d+)"(?: rel="(\w+)")?', pager)
    assert [int(n) for n, rel in links if not rel] == [1, 3, 4, 6, 7, 9]
    assert ("4", "prev") in links and ("6", "next") in links
    assert '<b aria-current="page">5</b>' in pager and pager.count("…") == 2 and "第 5 / 9 页" in pager


def test_the_correction_form_takes_a_statement_staff_then_read(api: Api):
    from test_api_limits import _staff_login

    c = api.c
    sub = _notified(api, "W16", profile(160, in_park=False))
    c.cookies.clear()
    c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code})
    view = c.get("/application/view").text
    assert '<textarea name="statement"' in view
    csrf = re.search(r'name="csrf" value="([^"]+)"', view).group(1)
    r = c.post("/application/correction", data={"csrf": csrf, "statement": "已迁入园区，变更登记办理中", "partial": "yes"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    c.cookies.clear()
    _staff_login(api)
    page = c.get(f"/staff/applications/{sub.application_id}").text
    c.cookies.clear()
    assert "企业的说明：已迁入园区，变更登记办理中" in page
    box = re.search(r'id="enterprise-statement">(.*?)</div></div>', page, re.S).group(1)   # above, not only in the history
    assert "已迁入园区，变更登记办理中" in box and page.index("enterprise-statement") < page.index("资金支持判定与复核")


def test_staff_give_an_enterprise_that_lost_its_code_a_new_one_shown_once(api: Api):
    """At the window, in the console: a reason is required (the form comes back with it said);
    the new code is shown once, on a printable slip, and opens the enterprise's page where the
    old one no longer does; a refresh does not show it again. Through the API: 201 with the new
    code; the history names who and why."""
    c, staff = api.c, api.staff
    accepting_window(api, "W31")
    sub = applications.submit_application(api.db, "W31", profile(131), channel="api", actor="测试", today=days(0))
    from test_api_limits import _staff_login
    _staff_login(api)
    page = c.get(f"/staff/applications/{sub.application_id}").text
    assert "重新生成查询码" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post(f"/staff/applications/{sub.application_id}/access-code", data={"csrf": csrf, "reason": " "})
    assert r.status_code == 422 and "请填写重新生成的原因" in r.text and 'id="code-errors"' in r.text
    r = c.post(f"/staff/applications/{sub.application_id}/access-code",
               data={"csrf": csrf, "reason": "遗失查询码，已核验营业执照"}, follow_redirects=False)
    assert r.status_code == 303 and "code" not in r.headers["location"].split("/")[-1].replace("access-code", "")
    slip = c.get(r.headers["location"]).text
    code = re.search(r'id="access-code">([^<]+)<', slip).group(1)
    assert len(code) == 12 and code != sub.access_code and sub.application_id in slip and "打印" in slip
    again = c.get(r.headers["location"], follow_redirects=False)      # shown once only
    assert again.status_code == 303 and code not in again.text
    c.cookies.clear()
    assert c.post("/application/login", data={"application_id": sub.application_id,
                                              "access_code": sub.access_code}).status_code == 401
    opened = c.post("/application/login", data={"application_id": sub.application_id, "access_code": code})
    assert opened.status_code == 200 and opened.url.path == "/application/view", opened.url
    c.cookies.clear()
    # the API
    assert_error(c.post(f"/v1/applications/{sub.application_id}/access-code", json={"reason": "x"},
                        headers=staff), 422)
    assert_error(c.post("/v1/applications/A0000000000000000/access-code", json={"reason": "遗失查询码"},
                        headers=staff), 404)
    r = c.post(f"/v1/applications/{sub.application_id}/access-code", json={"reason": "企业电话申请，已回拨核实"},
               headers=staff)
    assert r.status_code == 201 and r.json()["application_id"] == sub.application_id, r.text
    new = r.json()["access_code"]
    assert applications.check_access_code(api.db, sub.application_id, new)
    assert not applications.check_access_code(api.db, sub.application_id, code)
    history = c.get(f"/v1/applications/{sub.application_id}/detail", headers=staff).json()["events"]
    assert [e["details"]["reason"] for e in history if e["action_text"] == "重新生成查询码"] == [
        "遗失查询码，已核验营业执照", "企业电话申请，已回拨核实"]
    assert code not in json.dumps(history) and new not in json.dumps(history)


def test_a_window_form_with_problems_marks_each_box_with_its_own_message(api: Api):
    """The console's new-window form sent with wrong dates: every problem is listed above it and
    each box in question is marked, with its message under it, the typed values kept."""
    from test_api_limits import _staff_login
    c = api.c
    _staff_login(api)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/staff").text).group(1)
    r = c.post("/staff/windows", data={"csrf": csrf, "id": "W-bad", "label": "有误的批次", "opens_on": "2026-07-01",
                                       "closes_on": "2026-06-01", "correction_workdays": "abc"})
    c.cookies.clear()
    assert r.status_code == 422, r.text
    marked = set(re.findall(r'name="(\w+)"[^>]*aria-invalid="true"', r.text))
    listed = re.search(r'id="form-errors">(.*?)</div>', r.text, re.S).group(1)
    assert "closes_on" in marked or "opens_on" in marked, marked
    assert "correction_workdays" in marked and "<b>补正期限</b>" in listed, (marked, listed)
    assert len(re.findall(r'class="error-text"', r.text)) == listed.count("<li>")
    assert 'value="有误的批次"' in r.text and 'value="abc"' in r.text
    assert "W-bad" not in [w["id"] for w in c.get("/v1/windows", headers=api.staff).json()]


def test_the_window_page_says_official_notices_wait_for_unset_settings(api: Api):
    """Staff learn on the window's page, before they try, that no official notice can be issued
    while a notice setting (the contact phone) is unset, and who fills it in."""
    accepting_window(api, "W-SETTINGS")
    from test_api_limits import _staff_login
    _staff_login(api)
    assert 'id="settings-unset"' not in api.c.get("/staff/windows/W-SETTINGS").text
    svc = api.app.state.notices
    filled = svc.settings
    svc.settings = filled.model_copy(update={"contact_phone": None})
    try:
        box = re.search(r'id="settings-unset">(.*?)</div>', api.c.get("/staff/windows/W-SETTINGS").text, re.S).group(1)
    finally:
        svc.settings = filled           # the app serves the module's other tests
    assert "联系电话" in box and "一次性告知书" in box and "系统管理员" in box and ".yaml" not in box, box


def _console_login(api: Api, headers: dict) -> None:
    login = api.c.get("/staff/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    r = api.c.post("/staff/login", data={"csrf": csrf, "token": headers["Authorization"].split()[1]},
                   follow_redirects=False)
    assert r.status_code == 303, r.text


def test_an_admin_sets_the_round_notices_amounts_on_the_window_page(api: Api):
    """The publish page asks for the round notice's amounts: the window's page takes them, each
    kind of certificate named in words beside its reference amount, every problem at once and
    what was typed kept; staff see them but cannot change them."""
    accepting_window(api, "W-AMOUNTS")
    _console_login(api, api.staff)
    page = api.c.get("/staff/windows/W-AMOUNTS").text
    assert 'id="amounts-form"' not in page and "金额由系统管理员按当期申报通知设定" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert api.c.post("/staff/windows/W-AMOUNTS/amounts", data={"csrf": csrf}).status_code == 403
    api.c.cookies.clear()
    _console_login(api, api.admin)
    page = api.c.get("/staff/windows/W-AMOUNTS").text
    fields = re.findall(r'name="(amount:[^"]+)"', page)
    assert len(fields) == 8 and 'id="amounts-reference"' in page, fields
    box = re.search(r'id="amounts">(.*?)</section>', page, re.S).group(1)
    assert "管理类别：第三类" in box and "来源：自主研发" in box and "500,000元" in box
    assert "grant_amounts" not in html_text(box) and "self_developed" not in html_text(box)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = api.c.post("/staff/windows/W-AMOUNTS/amounts", data={"csrf": csrf, fields[0]: "三十万", fields[1]: "-5",
                                                                   fields[2]: "1e3"})
    assert refused.status_code == 422
    errors = re.search(r'id="amount-errors">(.*?)</div>', refused.text, re.S).group(1)
    assert errors.count("<li>") == 8 and "来源：引进；管理类别：第三类：请填写金额" in errors, errors
    assert "不能为负数" in errors and "“1e3”" in errors, errors
    assert refused.text.count('aria-invalid="true"') == 8
    assert api.c.get("/staff/windows/W-AMOUNTS/amounts", follow_redirects=False).headers["location"] == \
        "/staff/windows/W-AMOUNTS#amounts"
    assert 'value="三十万"' in refused.text                               # as typed
    assert api.c.get("/v1/windows/W-AMOUNTS", headers=api.staff).json()["amounts"] == {}     # nothing half-set
    data = {"csrf": csrf, **{f: "30万" for f in fields}, fields[-1]: "400,000"}
    done = api.c.post("/staff/windows/W-AMOUNTS/amounts", data=data)
    assert done.status_code == 200 and "本批次金额已设定" in done.text and 'id="amounts-set"' in done.text
    table = api.c.get("/v1/windows/W-AMOUNTS", headers=api.staff).json()["amounts"]["grant_amounts"]
    assert table["false"]["self_developed"]["II"] == 300000 and table["true"]["introduced"]["III"] == 400000
    cleared = api.c.post("/staff/windows/W-AMOUNTS/amounts", data={"csrf": csrf, "action": "clear"})
    assert "已恢复规则中的参考金额" in cleared.text
    assert api.c.get("/v1/windows/W-AMOUNTS", headers=api.staff).json()["amounts"] == {}
    api.c.cookies.clear()


def test_the_publish_confirmation_names_applicants_never_sent_their_one_time_notice(api: Api):
    """一次告知 comes before 公示: an applicant whose grant is not all eligible and who was never
    told what is missing is named on the confirmation, with the way to tell it."""
    c, staff = api.c, api.staff
    c.post("/v1/windows", headers=staff, json={
        "id": "W-UNTOLD", "opens_on": days(-30).isoformat(), "closes_on": days(-2).isoformat(),
        "coverage_from": "2025-01-01", "coverage_to": days(-2).isoformat()})
    for p in (profile(140), profile(141, certificate={"origin": None})):
        applications.submit_application(api.db, "W-UNTOLD", p, channel="api", actor="测试", today=days(-3))
    wait_job(api, c.post("/v1/windows/W-UNTOLD/evaluate", headers=staff))
    from test_api_limits import _staff_login
    _staff_login(api)
    page = c.get("/staff/windows/W-UNTOLD/publish").text
    untold = re.search(r'id="publish-untold">(.*?)</li>', page, re.S).group(1)
    assert "<b>1</b> 份申报" in untold and "一次性告知书" in untold and "/one-time-notices" in untold, untold
    c.cookies.clear()
    assert c.post("/v1/windows/W-UNTOLD/one-time-notices", headers=staff).json() == {"issued": 1}
    from store import awards
    assert awards.publish_preview(api.db, "W-UNTOLD")["untold"] == 0       # told now
