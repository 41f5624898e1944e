"""Staff endpoints over the real store (SQLite) and engine: auth, the window life cycle,
the enterprise's access-code view, exports."""
import csv
import io
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from api.app import create_app
from api.schemas import EXAMPLE_PROFILE
from api.settings import Settings
from store.tokens import create_token

WINDOW = {"id": "2026-H1", "label": "2026年上半年集中申报", "opens_on": "2026-01-01",
          "closes_on": "2026-12-31", "as_of": "2026-03-31", "coverage_from": "2025-07-01",
          "coverage_to": "2025-12-31"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "staff.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}"))
    with TestClient(app, raise_server_exceptions=False) as c:
        store = app.state.runtime.store
        staff = create_token("staff", "经办", db=store)
        admin = create_token("admin", "管理", db=store)
        yield {"c": c, "store": store, "staff": {"Authorization": f"Bearer {staff}"},
               "admin": {"Authorization": f"Bearer {admin}"}, "tokens": (staff, admin)}


def test_staff_endpoints_need_a_token(env):
    c = env["c"]
    for method, path in [("get", "/v1/windows"), ("post", "/v1/windows/2026-H1/evaluate"),
                         ("get", "/v1/windows/2026-H1/awards.xlsx"), ("post", "/v1/windows/x/close")]:
        r = getattr(c, method)(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["detail"]
    r = c.get("/v1/windows", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = c.get("/v1/windows", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401


def test_tokens_are_stored_hashed(env):
    with env["store"].engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("select * from api_tokens"))]
    dump = repr(rows)
    for t in env["tokens"]:
        assert t not in dump


def test_window_life_cycle(env):
    c, staff, admin = env["c"], env["staff"], env["admin"]
    r = c.post("/v1/windows", json=WINDOW, headers=staff)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "2026-H1"
    assert c.post("/v1/windows", json=WINDOW, headers=staff).status_code == 409

    bad = c.post("/v1/windows/2026-H1/applications", headers=staff,
                 json={"profile": dict(EXAMPLE_PROFILE, uscc="91512000MA62XY0010", employees_avg=-1)})
    assert bad.status_code == 422
    paths = {e["path"] for e in bad.json()["errors"]}
    assert {"profile.uscc", "profile.employees_avg"} <= paths

    r = c.post("/v1/windows/2026-H1/applications", json={"profile": EXAMPLE_PROFILE}, headers=staff)
    assert r.status_code == 201, r.text
    app_id, code = r.json()["application_id"], r.json()["access_code"]
    assert c.post("/v1/windows/nope/applications", json={"profile": EXAMPLE_PROFILE},
                  headers=staff).status_code == 404

    first = c.post("/v1/windows/2026-H1/evaluate", headers=staff)
    assert first.status_code == 200, first.text
    again = c.post("/v1/windows/2026-H1/evaluate", headers=staff)
    assert again.json()["counts"] == first.json()["counts"]
    assert sum(first.json()["counts"].values()) >= 1

    decisions = c.get("/v1/windows/2026-H1/decisions", headers=staff).json()
    assert {d["application_id"] for d in decisions} == {app_id}
    assert c.get("/v1/windows/2026-H1/proactive", headers=staff).status_code == 200

    # the enterprise's view: same 404 for a wrong code and an unknown id
    mine = c.get(f"/v1/applications/{app_id}", params={"access_code": code})
    assert mine.status_code == 200
    body = mine.json()
    assert body["enterprise"]["uscc"] == EXAMPLE_PROFILE["uscc"] and body["window_id"] == "2026-H1"
    assert {d["benefit_id"] for d in body["decisions"]} >= {"device-registration-grant"}
    assert all("criteria" in d and "status" in d for d in body["decisions"])
    wrong = c.get(f"/v1/applications/{app_id}", params={"access_code": code + "X"})
    unknown = c.get("/v1/applications/A-NO-SUCH-APP", params={"access_code": code})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.content == unknown.content

    # closing needs admin
    assert c.post("/v1/windows/2026-H1/close", headers=staff).status_code == 403
    closed = c.post("/v1/windows/2026-H1/close", headers=admin)
    assert closed.status_code == 200, closed.text
    awards = closed.json()["awards"]
    assert c.post("/v1/windows/2026-H1/close", headers=admin).status_code == 409
    late = c.post("/v1/windows/2026-H1/applications", json={"profile": EXAMPLE_PROFILE}, headers=staff)
    assert late.status_code == 409

    x = c.get("/v1/windows/2026-H1/awards.xlsx", headers=staff)
    assert x.status_code == 200
    wb = load_workbook(io.BytesIO(x.content))
    data_rows = [r for r in wb.active.iter_rows(values_only=True) if any(r)]
    assert len(data_rows) >= len(awards)
    csv_r = c.get("/v1/windows/2026-H1/awards.csv", headers=staff)
    assert csv_r.status_code == 200
    assert list(csv.reader(io.StringIO(csv_r.content.decode("utf-8-sig"))))


def test_token_management_needs_admin(env):
    c = env["c"]
    body = {"role": "staff", "label": "新同事"}
    assert c.post("/v1/tokens", json=body, headers=env["staff"]).status_code == 403
    r = c.post("/v1/tokens", json=body, headers=env["admin"])
    assert r.status_code == 201
    new = r.json()["token"]
    assert c.get("/v1/windows", headers={"Authorization": f"Bearer {new}"}).status_code == 200


@pytest.mark.timeout(120)
def test_cli_token_create_prints_the_token_last(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    out = subprocess.run([sys.executable, "-m", "cli.main", "token", "create", "--role", "admin",
                          "--label", "测试"], capture_output=True, text=True, timeout=100,
                         env={**__import__("os").environ, "YAGU_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    app = create_app(Settings(database_url=url))
    with TestClient(app) as c:
        assert c.post("/v1/windows/none/close", headers={"Authorization": f"Bearer {token}"}).status_code == 404
