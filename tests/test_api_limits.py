"""Hostile requests and the pages' defences: JSON bodies refused before validation (size, shape,
encoding, content type), bodies over the limit cut while streaming (413, chunked too), the
JSON limit on the self-check upload, security headers and no CDN on every page, server-side
sessions that logout ends, and no text from the URL on any page (issue 9 items 13, 14, 18, 21)."""
from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from api.schemas import EXAMPLE_PROFILE, EXAMPLE_REQUEST
from api.security import ENTERPRISE_COOKIE, STAFF_COOKIE
from api_support import Api, accepting_window, api_on, assert_error

pytestmark = pytest.mark.timeout(300)
JSON = {"content-type": "application/json"}
MB = 1024 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_on("sqlite", tmp_path_factory.mktemp("limits")) as a:
        accepting_window(a, "W1")
        yield a


def _nested(depth: int) -> dict:
    d: dict = {}
    for _ in range(depth):
        d = {"a": d}
    return d


# --- JSON bodies ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,status,words", [
    (json.dumps({"profile": {**EXAMPLE_PROFILE, **{f"k{i}": i for i in range(10_000)}}}).encode(), 422, "键"),
    (json.dumps({"profile": _nested(50)}).encode(), 422, "嵌套"),
    (b"[" * 100_000 + b"]" * 100_000, 422, "嵌套"),
    ('{"profile": {"name": "牙谷"}}'.encode("gbk"), 400, "UTF-8"),
    (b'{"profile": {"uscc": }', 400, "第 1 行"),
    (b'{"profile": {"rd_expense_cny": NaN}}', 400, "NaN"),
    (b'{"profile": {"rd_expense_cny": Infinity}}', 400, "Infinity"),
    (b'{"profile": {}, "profile": {}}', 422, "重复"),
], ids=["10000-keys", "50-levels", "100000-levels", "gbk", "malformed", "nan", "infinity", "duplicate-key"])
def test_hostile_json_is_refused_before_validation(api: Api, body, status, words):
    assert words in assert_error(api.c.post("/v1/eligibility", content=body, headers=JSON), status)["detail"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/json; charset=latin-1", None])
def test_only_utf8_json_is_accepted(api: Api, ctype):
    headers = {"content-type": ctype} if ctype else {}
    r = api.c.post("/v1/eligibility", content=json.dumps(EXAMPLE_REQUEST).encode(), headers=headers)
    assert "JSON" in assert_error(r, 415)["detail"]


def test_every_validation_error_is_in_the_uniform_body(api: Api):
    body = assert_error(api.c.post("/v1/eligibility", json={"as_of": "not-a-date", "benefits": "x", "extra": 1}), 422)
    assert {e["path"] for e in body["errors"]} == {"profile", "as_of", "benefits", "extra"}


def test_a_list_over_its_registry_bound_names_the_field(api: Api, registry):
    cap = registry.fields["device_registrations"].max_items
    regs = [{"certificate_no": f"川械注准2025217{i:04d}"} for i in range(cap + 1)]
    body = assert_error(api.c.post("/v1/eligibility", json={"profile": {**EXAMPLE_PROFILE, "device_registrations": regs}}),
                        422)
    assert body["errors"] == [{"path": "profile.device_registrations", "message": f"最多允许 {cap} 项",
                               "label": "医疗器械注册证及备案凭证"}]


# --- sizes --------------------------------------------------------------------------------------------
def test_bodies_over_the_limit_are_413_declared_or_streamed(api: Api):
    big = b'{"profile": {"name": "' + b"x" * (2 * MB) + b'"}}'
    assert "2 MB" in assert_error(api.c.post("/v1/eligibility", content=big, headers=JSON), 413)["detail"]

    def chunks(total: int, head: bytes = b'{"profile": {"name": "', tail: bytes = b'"}}'):
        yield head
        for _ in range(total // 65536):
            yield b"x" * 65536
        yield tail

    # no Content-Length: cut while streaming (issue 9 item 21: an over-limit chunked upload got 400)
    r = api.c.post("/v1/eligibility", content=chunks(3 * MB), headers=JSON)
    assert "2 MB" in assert_error(r, 413)["detail"]
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\n'
    r = api.c.post("/v1/windows/W1/applications/import", content=chunks(21 * MB, head, b"\r\n--B--\r\n"),
                   headers={**api.staff, "content-type": "multipart/form-data; boundary=B"})
    assert "20 MB" in assert_error(r, 413)["detail"]
    assert api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST).status_code == 200


def test_the_self_check_upload_has_the_json_limit(api: Api):
    """Issue 9 item 14: the upload once took 20 MB of JSON, ten times the JSON limit."""
    big = b'{"name": "' + b"x" * (3 * MB) + b'"}'
    r = api.c.post("/self-check/upload", files={"file": ("p.json", big, "application/json")})
    assert r.status_code == 413 and "2 MB" in r.text and "text/html" in r.headers["content-type"]
    deep = json.dumps(_nested(50)).encode()
    r = api.c.post("/self-check/upload", files={"file": ("p.json", deep, "application/json")})
    assert r.status_code == 422 and "嵌套" in r.text
    gbk = json.dumps({"name": "资阳牙科"}, ensure_ascii=False).encode("gbk")      # saved in the wrong encoding
    r = api.c.post("/self-check/upload", files={"file": ("p.json", gbk, "application/json")})
    assert r.status_code == 400 and "文件不是 UTF-8 编码的文本" in r.text and "请求体" not in r.text
    ok = api.c.post("/self-check/upload", files={"file": ("p.json", json.dumps(EXAMPLE_PROFILE).encode(),
                                                          "application/json")}, data={"as_of": "2026-03-31"})
    assert ok.status_code == 200 and "自测结果" in ok.text


# --- pages -------------------------------------------------------------------------------------------
PAGES = ["/", "/apply", "/apply/W1", "/application", "/staff/login", "/docs", "/redoc", "/openapi.json", "/healthz",
         "/static/yagu.css", "/no-such-page", "/v1/no-such", "/v1/rules/%00", "/v1/applications/A1?access_code=%00"]


def test_security_headers_and_no_cdn_on_every_page(api: Api):
    """Issue 9 item 21: no Content-Security-Policy header. Every answer carries one; no page
    loads anything from another host (the service runs on an intranet)."""
    answers = [api.c.get(p) for p in PAGES]
    answers += [api.c.post("/v1/eligibility", content=b"{", headers=JSON),
                api.c.post("/v1/eligibility", content=b"x" * (3 * MB), headers=JSON),
                api.c.put("/v1/rules"), api.c.post("/self-check", data={"name": "x"})]
    for r in answers:
        h = r.headers
        csp = h.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "http" not in csp, (r.url, csp)
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", r.url
        assert h["referrer-policy"] == "same-origin", r.url
        if "text/html" in h.get("content-type", ""):
            remote = re.findall(r'(?:src|href)="(?:https?:)?//[^"]*"', r.text)
            assert not remote, (r.url, remote)
    icon = api.c.get("/favicon.ico")            # asked for by every browser: never a 404
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert '<link rel="icon" href="/static/favicon.svg"' in api.c.get("/").text
    docs = api.c.get("/docs").text
    assert re.search(r'src="/static/docs/[^"]+\.js"', docs)
    assert api.c.get(re.search(r'src="(/static/docs/[^"]+\.js)"', docs).group(1)).status_code == 200


def _staff_login(api: Api) -> str:
    login = api.c.get("/staff/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    token = api.staff["Authorization"].split()[1]
    r = api.c.post("/staff/login", data={"csrf": csrf, "token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff"
    sid = api.c.cookies.get(STAFF_COOKIE)
    assert sid and token not in r.headers.get("set-cookie", "")
    return sid


def test_logout_ends_the_server_side_session(api: Api):
    """Issue 9 item 13: the cookie once held the bearer token, and replaying it after logout
    opened /staff. Now it holds a session id that logout ends on the server."""
    sid = _staff_login(api)
    home = api.c.get("/staff", follow_redirects=False)
    assert home.status_code == 200
    csrf = re.search(r'action="/staff/logout".*?name="csrf" value="([^"]+)"', home.text, re.S).group(1)
    assert api.c.post("/staff/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    api.c.cookies.set(STAFF_COOKIE, sid, path="/staff")        # the replayed cookie
    r = api.c.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?expired=1"
    # a page asked for with an ended session: the login says so, and returns to that page
    r = api.c.get("/staff/windows/W1?done=x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?" + urlencode(
        {"expired": 1, "next": "/staff/windows/W1?done=x"})
    sent = api.c.post("/staff/applications/A1/review", data={"reason": "x"}, follow_redirects=False,
                      headers={"referer": "http://testserver/staff/applications/A1"})    # a form sent
    assert sent.headers["location"] == "/staff/login?" + urlencode({"expired": 1, "next": "/staff/applications/A1"})
    elsewhere = api.c.post("/staff/applications/A1/review", data={}, follow_redirects=False,
                           headers={"referer": "https://example.com/staff/applications/A1"})
    assert elsewhere.headers["location"] == "/staff/login?expired=1"
    login = api.c.get(r.headers["location"])
    assert "登录已过期" in login.text and 'name="next" value="/staff/windows/W1?done=x"' in login.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    back = api.c.post("/staff/login", data={"csrf": csrf, "token": api.staff["Authorization"].split()[1],
                                            "next": "/staff/windows/W1?done=x"}, follow_redirects=False)
    assert back.headers["location"] == "/staff/windows/W1?done=x"
    for elsewhere in ("https://example.com/", "//example.com/staff", "/staff/login", "/application/view"):
        login = api.c.get("/staff/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        r = api.c.post("/staff/login", data={"csrf": csrf, "token": api.staff["Authorization"].split()[1],
                                             "next": elsewhere}, follow_redirects=False)
        assert r.headers["location"] == "/staff", elsewhere          # never off the console
    api.c.cookies.clear()

    sub = api.c.post("/v1/windows/W1/applications", json={"profile": EXAMPLE_PROFILE}, headers=api.staff).json()
    r = api.c.post("/application/login", data={"application_id": sub["application_id"],
                                               "access_code": sub["access_code"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/application/view"
    esid = api.c.cookies.get(ENTERPRISE_COOKIE)
    assert esid and sub["access_code"] not in r.headers["set-cookie"]
    assert api.c.get("/application/view", follow_redirects=False).status_code == 200
    assert api.c.post("/application/logout", follow_redirects=False).status_code == 303
    api.c.cookies.set(ENTERPRISE_COOKIE, esid, path="/application")
    assert api.c.get("/application/view", follow_redirects=False).status_code == 303
    api.c.cookies.clear()


BAIT = "请立即致电4008123123领取补贴XYZ"


def test_no_text_from_the_url_is_ever_shown(api: Api):
    """Issue 9 item 18: ?error= text was shown on /staff/login (phishing). Pages show only
    messages the server chose, whatever parameter carries the text."""
    params = {k: BAIT for k in ("error", "flash", "message", "msg", "done", "failed", "notice", "q")}
    paths = ["/", "/apply", "/application", "/staff/login", "/staff/login?failed=1"]
    for p in paths:
        r = api.c.get(p, params=params)
        assert BAIT not in r.text and "XYZ" not in r.text, p
    _staff_login(api)
    for p in ["/staff", "/staff/windows/W1", "/staff/tokens", "/staff/windows/W1/applications"]:
        r = api.c.get(p, params={k: v for k, v in params.items() if k != "q"})
        assert r.status_code in (200, 403) and BAIT not in r.text, p
    # filters no select of the page offers (an edited address): the whole list, not a 500
    r = api.c.get("/staff/windows/W1/applications", params={"state": "zzz", "status": BAIT, "device_class": "IV"})
    assert r.status_code == 200 and BAIT not in r.text and "zzz" not in r.text, r.text[-1000:]
    api.c.cookies.clear()
