"""What the API tests share: an app on a fresh store (SQLite or PostgreSQL, tests/store_fixtures)
with a staff and an admin token, windows whose acceptance period covers today, jobs awaited
through the API, and checks of the uniform error body."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterator

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from engine.profile import shanghai_today
from store.db import Database
from store.tokens import create_token
from store_fixtures import make_store_url

CJK = ("\u4e00", "\u9fff")


def chinese(text: str) -> bool:
    return any(CJK[0] <= c <= CJK[1] for c in text)


@dataclass
class Api:
    app: FastAPI
    c: TestClient
    db: Database
    staff: dict
    admin: dict
    staff_id: int
    admin_id: int
    kind: str


@contextmanager
def api_on(kind: str, tmp_path, **settings) -> Iterator[Api]:
    """The app on a fresh, migrated store of `kind`, its lifespan (job runner included) running."""
    url, cleanup = make_store_url(kind, tmp_path)
    try:
        app = create_app(Settings(database_url=url, **{"migrate_on_start": False, **settings}))
        with TestClient(app, raise_server_exceptions=False) as c:
            db = app.state.runtime.db
            staff, s_value = create_token(db, "staff", "经办测试")
            admin, a_value = create_token(db, "admin", "管理测试")
            yield Api(app, c, db, {"Authorization": f"Bearer {s_value}"}, {"Authorization": f"Bearer {a_value}"},
                      staff.id, admin.id, kind)
    finally:
        cleanup()


def accepting_window(api: Api, window_id: str = "W1", **extra) -> dict:
    """A window (through the API) whose acceptance period covers today."""
    today = shanghai_today()
    body = {"id": window_id, "opens_on": (today - timedelta(days=10)).isoformat(),
            "closes_on": (today + timedelta(days=10)).isoformat(), "coverage_from": "2025-01-01",
            "coverage_to": today.isoformat(), **extra}
    r = api.c.post("/v1/windows", json=body, headers=api.staff)
    assert r.status_code == 201, r.text
    return r.json()


def wait_job(api: Api, r, timeout: float = 90) -> dict:
    """The finished job of a 202 answer, polled through GET /v1/jobs/{id}."""
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + timeout
    while True:
        j = api.c.get(f"/v1/jobs/{job_id}", headers=api.staff).json()
        if j["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return j
        time.sleep(0.1)


def assert_error(r, status: int) -> dict:
    """The uniform error body, in Chinese, without a trace."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    body = r.json()
    assert set(body) >= {"detail", "errors"}
    assert chinese(body["detail"]), body
    assert "Traceback" not in r.text and "Error:" not in r.text
    for e in body["errors"]:
        assert chinese(e["message"]), e
    return body


def days(n: int) -> date:
    return shanghai_today() + timedelta(days=n)
