"""Batch evaluation: SIGKILL mid-run and re-run; idempotence and import-order independence
(hypothesis); exports, notice numbers and tokens."""
from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from store import windows as W
from store.db import Database
from store.intake import import_applications
from store.models import Decision, EvaluationMark
from store_fixtures import (  # noqa: F401
    H1, STORES, db, decision_snapshot, evaluator, make_profile, make_store_url, profiles_csv,
    store_url,
)

REPO = Path(__file__).resolve().parent.parent


def _yagu(url: str, *args, cwd) -> subprocess.Popen:
    env = {**os.environ, "YAGU_DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.timeout(280)
@pytest.mark.parametrize("kind", STORES)
def test_sigkill_midway_then_rerun_equals_uninterrupted(kind, tmp_path, evaluator):
    n = 1500
    data = profiles_csv([make_profile(i) for i in range(n)])
    urls = []
    for name in ("killed", "clean"):
        d = tmp_path / name
        d.mkdir()
        url, cleanup = make_store_url(kind, d)
        urls.append((url, cleanup))
        db = Database(url)
        W.open_window(db, "2026-H1", **H1)
        import_applications(db, "2026-H1", data, "apps.csv")
        db.dispose()
    try:
        (killed_url, _), (clean_url, _) = urls
        # Uninterrupted run, in-process.
        clean = Database(clean_url)
        W.evaluate_window(clean, "2026-H1", evaluator=evaluator, batch_size=100)

        # Killed run: a separate `yagu window evaluate` process, SIGKILLed once some batches
        # are committed and before it finishes.
        killed = Database(killed_url)
        proc = _yagu(killed_url, "window", "evaluate", "2026-H1", "--batch-size", "100", cwd=tmp_path)
        deadline = time.time() + 120
        marks = 0
        while time.time() < deadline:
            with killed.read_session() as s:
                marks = s.scalar(select(func.count()).select_from(EvaluationMark))
            if marks >= 200 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "evaluation finished before it could be killed: " + proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with killed.read_session() as s:
            partial = s.scalar(select(func.count()).select_from(EvaluationMark))
        assert 0 < partial < n
        # Re-run (the dead process's lease does not block it) finishes the work.
        rerun = _yagu(killed_url, "window", "evaluate", "2026-H1", "--batch-size", "100", cwd=tmp_path)
        out, err = rerun.communicate(timeout=200)
        assert rerun.returncode == 0, err.decode()
        assert "结果已是最新" in out.decode()

        a, b = decision_snapshot(killed, "2026-H1"), decision_snapshot(clean, "2026-H1")
        assert a == b
        keys = [(r[0], r[1], r[2]) for r in a]
        assert len(keys) == len(set(keys))  # no duplicates
        assert {r[0] for r in a} == {make_profile(i)["uscc"] for i in range(n)}
        killed.dispose()
        clean.dispose()
    finally:
        for _, cleanup in urls:
            cleanup()


@pytest.mark.timeout(280)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False),
       chunks=st.integers(1, 4))
def test_decisions_independent_of_import_order_and_rerun(tmp_path_factory, evaluator, seed, order, chunks):
    """Importing the same applications in another order (and in several files) gives the
    same decisions; evaluating twice changes nothing."""
    profiles = [make_profile(i, seed) for i in range(30)]
    shuffled = list(profiles)
    order.shuffle(shuffled)
    snaps = []
    for variant in (profiles, shuffled):
        d = tmp_path_factory.mktemp("h")
        url, cleanup = make_store_url("sqlite", d)
        db = Database(url)
        W.open_window(db, "2026-H1", **H1)
        size = -(-len(variant) // chunks)
        for k in range(0, len(variant), size):
            import_applications(db, "2026-H1", profiles_csv(variant[k:k + size]), "a.csv")
        W.evaluate_window(db, "2026-H1", evaluator=evaluator, batch_size=7)
        first = decision_snapshot(db, "2026-H1")
        res = W.evaluate_window(db, "2026-H1", evaluator=evaluator, batch_size=7)
        assert res.evaluated == 0
        assert decision_snapshot(db, "2026-H1") == first
        snaps.append(first)
        db.dispose()
        cleanup()
    assert snaps[0] == snaps[1]


def test_export_neutralises_formulas_and_flags_provisional(db, evaluator):
    from openpyxl import load_workbook

    from store.exports import export_awards, export_decisions

    W.open_window(db, "2026-H1", **H1)
    p = make_profile(1, certs=1)
    p.update(in_park=True, on_serious_dishonest_list=False, name="=HYPERLINK(\"http://x\")公司")
    p["device_registrations"][0]["obtained_on"] = "2025-11-20"
    W.submit_application(db, "2026-H1", p)
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    closed = W.close_window(db, "2026-H1")
    assert closed.awards, "fixture should produce one award"
    text = export_awards(db, "2026-H1", "csv")
    assert text.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
    assert "统一社会信用代码" in rows[1] and "金额（元）" in rows[1]
    body = [r for r in rows[2:] if r and r[0].isdigit()]
    assert body[0][2].startswith("'=")
    assert any("参考金额" in c for c in body[0]) == closed.awards[0]["amount_provisional"]
    assert any(r and r[0] == "合计" for r in rows)
    assert any(r and r[0].startswith("按管理类别") for r in rows)
    assert any(r and r[0].startswith("按来源") for r in rows)

    wb = load_workbook(io.BytesIO(export_awards(db, "2026-H1", "xlsx")))
    ws = wb.active
    values = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert not any(v.startswith(("=", "+", "-", "@")) for v in values)
    assert any(v.startswith("'=HYPERLINK") for v in values)
    wb2 = load_workbook(io.BytesIO(export_decisions(db, "2026-H1", "xlsx")))
    assert wb2.active.max_row >= 3


def test_notice_numbers_gapless_and_stable(db):
    import threading

    from store.notices import assign_notice_number

    W.open_window(db, "2026-H1", **H1)
    ids = [W.submit_application(db, "2026-H1", make_profile(i, certs=0))[0] for i in range(6)]
    got, errors = {}, []

    def issue(app_id):
        try:
            with db.session() as s:
                got[app_id] = assign_notice_number(s, "2026-H1", app_id, "one_time", date(2026, 4, 1))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=issue, args=(a,)) for a in ids]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert sorted(seq for _, seq in got.values()) == [1, 2, 3, 4, 5, 6]
    assert got[ids[0]][0] == f"资高新惠告〔2026〕第{got[ids[0]][1]:04d}号"
    with db.session() as s:  # re-render: same number
        assert assign_notice_number(s, "2026-H1", ids[0], "one_time", date(2026, 4, 2)) == got[ids[0]]
        assert assign_notice_number(s, "2026-H1", ids[0], "award", date(2026, 4, 2)) == ("资高新惠兑〔2026〕第0001号", 1)


def test_tokens(db):
    from store.tokens import authenticate, create_token

    t = create_token("admin", "测试", db=db)
    assert authenticate(t, db=db) == "admin"
    assert authenticate(t + "x", db=db) is None
    assert authenticate("", db=db) is None
    with pytest.raises(ValueError):
        create_token("root", "x", db=db)
