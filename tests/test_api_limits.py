"""Hostile and malformed request bodies get a clear 4xx in the uniform error body; the
server keeps answering afterwards."""
import json

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import EXAMPLE_PROFILE
from api.settings import Settings
from api.testing import LiveServer


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "limits.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", max_certificates=20))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _assert_error_body(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), "detail is Chinese"
    assert "Traceback" not in r.text
    return body


def _nested(depth):
    d = {}
    for _ in range(depth):
        d = {"a": d}
    return d


def test_ten_thousand_keys_is_refused(client):
    profile = dict(EXAMPLE_PROFILE, **{f"k{i}": i for i in range(10_000)})
    r = client.post("/v1/eligibility", json={"profile": profile})
    body = _assert_error_body(r, 422)
    assert "键" in body["detail"]


def test_fifty_level_nesting_is_refused(client):
    r = client.post("/v1/eligibility", json={"profile": _nested(50)})
    body = _assert_error_body(r, 422)
    assert "嵌套" in body["detail"]


def test_deep_nesting_beyond_the_parser_recursion_limit(client):
    body = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/v1/eligibility", content=body, headers={"content-type": "application/json"})
    _assert_error_body(r, 422)


def test_too_many_certificates_names_the_field(client):
    regs = [{"certificate_no": f"川械注准2025217{i:04d}"} for i in range(21)]
    r = client.post("/v1/eligibility", json={"profile": dict(EXAMPLE_PROFILE, device_registrations=regs)})
    body = _assert_error_body(r, 422)
    assert body["errors"][0]["path"] == "profile.device_registrations"
    assert "21" in body["errors"][0]["message"] and "20" in body["errors"][0]["message"]


def test_at_the_certificate_limit_is_evaluated(client):
    regs = [{"certificate_no": f"川械注准2025217{i:04d}", "obtained_on": "2025-10-15"} for i in range(20)]
    r = client.post("/v1/eligibility", json={"profile": dict(EXAMPLE_PROFILE, device_registrations=regs),
                                             "as_of": "2026-03-31"})
    assert r.status_code == 200, r.text
    grants = [x for x in r.json()["results"] if x["benefit_id"] == "device-registration-grant"]
    assert len(grants) == 20


def test_non_utf8_body(client):
    r = client.post("/v1/eligibility", content='{"profile": {"name": "牙谷"}}'.encode("gbk"),
                    headers={"content-type": "application/json"})
    body = _assert_error_body(r, 400)
    assert "UTF-8" in body["detail"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/json; charset=latin-1", None])
def test_wrong_content_type(client, ctype):
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/v1/eligibility", content=json.dumps({"profile": EXAMPLE_PROFILE}).encode(),
                    headers=headers)
    _assert_error_body(r, 415)


def test_malformed_json_names_the_position(client):
    r = client.post("/v1/eligibility", content=b'{"profile": {"uscc": }',
                    headers={"content-type": "application/json"})
    body = _assert_error_body(r, 400)
    assert "第 1 行" in body["detail"]


def test_nan_is_not_json(client):
    r = client.post("/v1/eligibility", content=b'{"profile": {"rd_expense_cny": NaN}}',
                    headers={"content-type": "application/json"})
    _assert_error_body(r, 400)


def test_duplicate_keys_are_refused(client):
    r = client.post("/v1/eligibility", content=b'{"profile": {}, "profile": {}}',
                    headers={"content-type": "application/json"})
    body = _assert_error_body(r, 422)
    assert "profile" in body["detail"]


def test_body_over_two_megabytes(client):
    big = b'{"profile": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    r = client.post("/v1/eligibility", content=big, headers={"content-type": "application/json"})
    body = _assert_error_body(r, 413)
    assert "2 MB" in body["detail"]


def test_chunked_body_over_the_limit_is_cut_while_streaming(client):
    def chunks():
        yield b'{"profile": {"name": "'
        for _ in range(300):
            yield b"x" * 10_000  # 3 MB in total, no Content-Length
        yield b'"}}'
    r = client.post("/v1/eligibility", content=chunks(), headers={"content-type": "application/json"})
    _assert_error_body(r, 413)


def test_every_fastapi_validation_error_is_in_the_uniform_body(client):
    r = client.post("/v1/eligibility", json={"as_of": "not-a-date", "benefits": "x"})
    body = _assert_error_body(r, 422)
    paths = {e["path"] for e in body["errors"]}
    assert {"profile", "as_of", "benefits"} <= paths
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in body["errors"])


@pytest.mark.timeout(120)
def test_live_server_survives_hostile_bodies(tmp_path):
    with LiveServer(f"sqlite:///{tmp_path}/live.db",
                    env={"YAGU_MAX_CERTIFICATES": "500"}) as srv:
        h = {"content-type": "application/json"}
        regs = [{"certificate_no": f"川械注准2025217{i:04d}"} for i in range(501)]
        bodies = [
            (json.dumps({"profile": {f"k{i}": i for i in range(10_000)}}).encode(), h, 422),
            (json.dumps({"profile": _nested(50)}).encode(), h, 422),
            (json.dumps({"profile": dict(EXAMPLE_PROFILE, device_registrations=regs)}).encode(), h, 422),
            ('{"profile": "牙谷"}'.encode("gbk"), h, 400),
            (json.dumps({"profile": EXAMPLE_PROFILE}).encode(), {"content-type": "text/plain"}, 415),
            (b"{" * 3 * 1024 * 1024, h, 413),
        ]
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for body, headers, status in bodies:
                r = c.post("/v1/eligibility", content=body, headers=headers)
                assert r.status_code == status, (status, r.text[:200])
                assert r.json()["detail"]
            assert srv.alive()
            assert c.get("/healthz").json() == {"status": "ok"}
            r = c.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "as_of": "2026-03-31"})
            assert r.status_code == 200
