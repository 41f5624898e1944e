"""The running service (`yagu serve` in a subprocess, real uvicorn): hostile spreadsheets through
the upload endpoints are refused within seconds with bounded memory and the service answers
afterwards, also after its rule-engine process is killed (issue 9 items 1, 3, 5, 6, 7); a
start-up failure names the database without its password (item 19)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import hostile_files as H
from api.schemas import EXAMPLE_REQUEST
from api.testing import REPO, LiveServer, free_port
from api_support import chinese, days
from store.db import Database
from store.tokens import create_token

pytestmark = pytest.mark.timeout(300)
MB = 1024 * 1024
RSS_GROWTH_LIMIT_MB = 300
ANSWER_WITHIN_S = 5        # a file refused when uploaded
JOB_WITHIN_S = 20          # a file whose every row (up to the row cap) is read by its job


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


WINDOW, REGISTRY = "/v1/windows/W1/applications/import", "/v1/registry/import"
BOTH = (WINDOW, REGISTRY)
# (what, file name, bytes, endpoints): the files whose rows must all be read go through one
# endpoint each (both run the same intake), the rest through both.
HOSTILE = [
    ("declared-dimension A1:XFD1048576", "bomb.xlsx", lambda: H.dimension_bomb(), BOTH),
    ("one 100 MB shared string", "strings.xlsx", lambda: H.shared_string_bomb(), BOTH),
    ("billion laughs in the sheet", "laughs.xlsx", lambda: H.billion_laughs("sheet"), BOTH),
    ("billion laughs in the shared strings", "laughs2.xlsx", lambda: H.billion_laughs("strings"), BOTH),
    ("billion laughs in the workbook", "laughs3.xlsx", lambda: H.billion_laughs("workbook"), BOTH),
    ("undefined entity", "entity.xlsx", lambda: H.undefined_entity(), BOTH),
    ("truncated sheet", "cut.xlsx", lambda: H.truncated_sheet(), BOTH),
    ("200,000-character CSV field", "field.csv", lambda: H.huge_csv_field(), BOTH),
    ("NUL in a CSV field", "nul.csv", lambda: H.nul_csv(), BOTH),
    ("undecodable CSV", "bytes.csv", lambda: H.undecodable_csv(), BOTH),
    ("not a spreadsheet", "random.xlsx", lambda: os.urandom(50_000), BOTH),
    ("an executable", "tool.exe", lambda: b"MZ" + os.urandom(1000), BOTH),
    ("150,000-cell row", "wide.xlsx", lambda: H.wide_row(150_000), (REGISTRY,)),
    ("210,000 invalid rows (over the row cap)", "rows.xlsx", lambda: H.invalid_rows_xlsx(210_000), (WINDOW,)),
    ("210,000 invalid CSV rows", "rows.csv", lambda: b"".join(H.invalid_rows_csv(210_000)), (REGISTRY,)),
]


def test_hostile_spreadsheets_against_the_running_service(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    db = Database(url)
    db.upgrade()
    _, token = create_token(db, "staff", "恶意文件测试")
    db.dispose()
    auth = {"Authorization": f"Bearer {token}"}
    with LiveServer(url) as srv, httpx.Client(base_url=srv.url, timeout=60, headers=auth) as c:
        r = c.post("/v1/windows", json={"id": "W1", "opens_on": days(-5).isoformat(), "closes_on": days(5).isoformat(),
                                        "coverage_from": "2025-01-01", "coverage_to": days(0).isoformat()})
        assert r.status_code == 201, r.text
        assert c.post("/v1/eligibility", json=EXAMPLE_REQUEST).status_code == 200       # warm
        base_peak = status_kb(srv.proc.pid, "VmHWM")
        report = []
        for what, name, make, endpoints in HOSTILE:
            data = make()
            for path in endpoints:
                t0 = time.monotonic()
                r = c.post(path, files={"file": (name, data, "application/octet-stream")})
                if r.status_code == 202:       # readable at a glance: its rows are read by the job
                    job_id = r.json()["job_id"]
                    while (j := c.get(f"/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
                        assert time.monotonic() - t0 < JOB_WITHIN_S, (what, j)
                        time.sleep(0.05)
                    assert j["state"] in ("succeeded", "failed"), (what, j)
                    refused = (j["error"] or "") if j["state"] == "failed" else j["result"]["problems"]
                    assert refused and (j["state"] == "failed" or j["result"]["committed"] is False), (what, j)
                    if j["state"] == "succeeded" and "rows" in name:     # capped report, row cap named
                        messages = [p["message"] for p in refused]
                        assert len(messages) <= 202 and messages[-1].startswith("另有 "), (what, messages[-3:])
                        assert any("200000 行的上限" in m for m in messages), what
                    outcome = f"job {j['state']}: {str(refused)[:60]}"
                else:
                    body = r.json()
                    assert r.status_code in (413, 422) and chinese(body["detail"]), (what, r.status_code, r.text[:300])
                    assert len(r.content) < 20_000, (what, len(r.content))        # a short prefix, not the bomb
                    outcome = f"{r.status_code}: {body['errors'][0]['message'][:60] if body['errors'] else body['detail']}"
                seconds = time.monotonic() - t0
                assert seconds < (ANSWER_WITHIN_S if r.status_code != 202 else JOB_WITHIN_S), (what, seconds)
                report.append((what, path.split("/")[2], round(seconds, 2), outcome))
            assert srv.alive(), what
        growth_mb = (status_kb(srv.proc.pid, "VmHWM") - base_peak) / 1024
        for line in report:
            print(*line, sep=" | ")
        print(f"peak RSS growth of the server: {growth_mb:.0f} MB (limit {RSS_GROWTH_LIMIT_MB} MB)")
        assert growth_mb < RSS_GROWTH_LIMIT_MB
        h = c.get("/healthz")
        assert h.status_code == 200 and h.json()["database"] == "ok"
        assert c.get("/v1/windows/W1").json()["counts"]["applications"] == 0

        # SIGKILL of the server's rule-engine process: the next evaluation starts a new one
        first = c.post("/v1/eligibility", json=EXAMPLE_REQUEST)
        assert first.status_code == 200
        engines = [p for p in children(srv.proc.pid)
                   if b"engine.enginehost" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert engines, "the server evaluates in a child process"
        for p in engines:
            os.kill(p, signal.SIGKILL)
        again = c.post("/v1/eligibility", json=EXAMPLE_REQUEST)
        assert again.status_code == 200 and again.json() == first.json()
        assert srv.alive() and c.get("/healthz").status_code == 200


def test_start_up_failure_names_the_database_without_its_password(tmp_path):
    """Issue 9 item 19: the start-up error once printed the database URL with its password."""
    secret = "S3cret-Pw-xyz"
    env = {**os.environ, "YAGU_DATABASE_URL": f"postgresql+psycopg://yagu:{secret}@127.0.0.1:1/yagu?connect_timeout=2"}
    out = subprocess.run([sys.executable, "-m", "cli.main", "serve", "--port", str(free_port())], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert secret not in out.stdout + out.stderr
    assert "***" in out.stderr and "127.0.0.1" in out.stderr and "数据库" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr

    # the app itself, started without `yagu serve`, on a database it cannot write
    from fastapi.testclient import TestClient

    from api.app import StartupError, create_app
    from api.settings import Settings
    path = tmp_path / "ro.db"
    Database(f"sqlite:///{path}").upgrade()
    app = create_app(Settings(database_url=f"sqlite:///file:{path}?mode=ro&uri=true", migrate_on_start=False))
    with pytest.raises(StartupError, match="不可写"):
        with TestClient(app):
            pass
