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


def _eval_workers_of(url: str) -> list[int]:
    """Live `store.evalworker` processes started for the database at `url`."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            if b"store.evalworker" not in cmd:
                continue
            env = (d / "environ").read_bytes().split(b"\0")
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if ("YAGU_DATABASE_URL=" + url).encode() in env and stat.split(")")[1].split()[0] != "Z":
            pids.append(int(d.name))
    return pids


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
        # Two worker processes: they must die with the killed parent, and the pool's
        # decisions must equal the in-process ones.
        proc = _yagu(killed_url, "window", "evaluate", "2026-H1", "--batch-size", "100",
                     "--workers", "2", cwd=tmp_path)
        deadline = time.time() + 120
        marks = 0
        while time.time() < deadline:
            with killed.read_session() as s:
                marks = s.scalar(select(func.count()).select_from(EvaluationMark))
            if marks >= 200 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "evaluation finished before it could be killed: " + proc.stderr.read().decode()
        workers = _eval_workers_of(killed_url)
        assert len(workers) == 2, "the killed run was expected to use two worker processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.time() + 10
        while _eval_workers_of(killed_url) and time.time() < deadline:
            time.sleep(0.1)
        assert not _eval_workers_of(killed_url), "worker processes outlived the killed evaluation"
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


@pytest.mark.timeout(240)
def test_worker_pool_decisions_equal_in_process(db, evaluator):
    """The same window evaluated by two worker processes and in this process: identical
    decisions and traces, in any batch size."""
    from sqlalchemy import delete

    data = profiles_csv([make_profile(i, seed=3) for i in range(120)])
    W.open_window(db, "2026-H1", **H1)
    import_applications(db, "2026-H1", data, "apps.csv")
    stats: dict = {}
    res = W.evaluate_window(db, "2026-H1", evaluator=evaluator, workers=2, batch_size=17, stats=stats)
    assert stats["workers"] == 2 and res.evaluated == 120
    pooled = decision_snapshot(db, "2026-H1")
    with db.session() as s:
        s.execute(delete(EvaluationMark))
        s.execute(delete(Decision))
    res = W.evaluate_window(db, "2026-H1", evaluator=evaluator, workers=1, batch_size=50, stats=stats)
    assert stats["workers"] == 1 and res.evaluated == 120
    assert decision_snapshot(db, "2026-H1") == pooled
    # and each stored trace is the engine's full result for that subject
    from store.windows import window_context
    from engine.profile import parse_profile

    with db.read_session() as s:
        w = W._get_window(s, "2026-H1")
        ctx = window_context(w)
    p = make_profile(7, seed=3)
    direct = evaluator.evaluate(parse_profile(p, evaluator.registry), as_of=date(2026, 3, 31), window=ctx, awarded=set())
    stored = W.list_decisions(db, "2026-H1", uscc=p["uscc"], with_trace=True)
    by_key = {(d["benefit_id"], (d["subject"] or {}).get("id", "")): d["result"] for d in stored}
    assert len(by_key) == len(direct.results)
    for r in direct.results:
        assert by_key[(r.benefit_id, r.subject.id if r.subject else "")] == r.model_dump(mode="json")


def test_bad_worker_setting_is_named(db, evaluator, monkeypatch):
    W.open_window(db, "2026-H1", **H1)
    monkeypatch.setenv("YAGU_EVAL_WORKERS", "two")
    with pytest.raises(ValueError, match="YAGU_EVAL_WORKERS"):
        W.evaluate_window(db, "2026-H1", evaluator=evaluator)
    monkeypatch.setenv("YAGU_EVAL_WORKERS", "1")
    W.evaluate_window(db, "2026-H1", evaluator=evaluator)  # the lease was released


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_trace_codec_round_trips_and_reads_old_traces(value):
    """Traces compressed with the preset dictionary decode to the value stored; traces
    written before dictionaries (plain zlib of json) still decode."""
    import json
    import zlib

    from store.models import decode_json, encode_json

    assert decode_json(encode_json(value)) == value
    old = zlib.compress(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(), 1)
    assert decode_json(old) == value
