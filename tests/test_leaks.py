"""No raw enum value, field path, id or placeholder on the results page, the enterprise's
application page or the CLI table, for profiles covering every enum value and every unknown fact
(issue 10; the notices have their own test in test_notices.py, sharing tests/leaks.py)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from api_support import accepting_window, api_on
from engine.profile import shanghai_today
from leaks import covering_profiles, html_text, leaks
from store import applications

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_on("sqlite", tmp_path_factory.mktemp("leaks")) as a:
        yield a


def _results_page(api, profile: dict, as_of: str) -> str:
    data = json.dumps(profile, ensure_ascii=False).encode("utf-8")
    r = api.c.post("/self-check/upload", data={"as_of": as_of},
                   files={"file": ("画像.json", io.BytesIO(data), "application/json")})
    assert r.status_code == 200, r.text[:500]
    return r.text


def test_results_pages_show_no_insides(api, registry, book):
    found = {}
    for i, p in enumerate(covering_profiles(registry)):
        for as_of in ("2026-03-31", "2024-06-30"):
            page = html_text(_results_page(api, p, as_of))
            bad = leaks(page, registry, book)
            if bad:
                found[(i, as_of)] = bad[:5]
    assert found == {}


def test_the_enterprises_application_page_shows_no_insides(api, registry, book):
    accepting_window(api, "WL")
    p = covering_profiles(registry)[0]
    sub = applications.submit_application(api.db, "WL", p, channel="api", actor="测试", today=shanghai_today())
    c = api.c
    login = c.get("/application")
    assert login.status_code == 200
    r = c.post("/application/login", data={"application_id": sub.application_id, "access_code": sub.access_code},
               follow_redirects=True)
    assert r.status_code == 200 and sub.access_code not in str(r.url)
    assert leaks(html_text(r.text), registry, book) == []


def test_the_cli_table_shows_no_insides(tmp_path, registry, book):
    for i, p in enumerate(covering_profiles(registry)[:4]):
        f = tmp_path / f"p{i}.json"
        f.write_text(json.dumps(p, ensure_ascii=False), encoding="utf-8")
        run = subprocess.run([sys.executable, "-m", "cli.main", "check", str(f), "--as-of", "2026-03-31",
                              "--no-ledger"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-1000:]
        assert leaks(run.stdout, registry, book) == [], (i, leaks(run.stdout, registry, book)[:5])
