"""Background jobs and evaluation, on SQLite (in-process runner) and PostgreSQL (procrastinate):
imports as jobs with their row report; evaluation resumable and idempotent; an application
that cannot be evaluated blocks nothing; a database outage or a worker killed with SIGKILL
mid-evaluation leaves no stuck job, and the queue resumes to the same decisions."""
from __future__ import annotations

import os
import stat
from datetime import date, timedelta

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import store.tasks  # noqa: F401 — registers the job kinds
from engine import Evaluator
from engine.adapter import EngineError
from engine.profile import parse_profile
from store import applications as A
from store import cases, jobs, profiles, rulesets
from store import windows as W
from store.db import Database
from store.errors import Conflict
from store.evaluation import evaluate_window
from store.models import Application, Evaluation, Job, JobFile, ProfileSnapshot
from store.paths import data_dir
from store.tasks import stash_upload
from store_fixtures import (  # noqa: F401  (fixtures)
    AFTER_H1, IN_H1, STORES, Outage, assert_history_complete, db, decision_snapshot, evaluate,
    grant_profile, grant_rows, make_profile, make_store_url, open_h1, packer, profiles_csv, sigkill, spawn, store_url,
    submit_all, uscc_of, wait_until,
)

LOCK = "window:2026-H1"


def _ingest(db, profiles, window_id="2026-H1"):
    registry = rulesets.current().registry
    A.ingest(db, window_id, [A.Intake.of(parse_profile(p, registry)) for p in profiles], today=IN_H1)


def _comparable(snapshot):
    """A decision snapshot without what differs between two databases (ids, input keys)."""
    evals, decs = snapshot
    return [e[:4] + e[5:] for e in evals], decs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Decisions of an uninterrupted evaluation of make_profile(0..599), in process."""
    d = tmp_path_factory.mktemp("reference")
    db = Database(f"sqlite:///{d / 'ref.db'}")
    db.upgrade()
    open_h1(db)
    _ingest(db, [make_profile(i) for i in range(600)])
    evaluate_window(db, "2026-H1")
    snap = _comparable(decision_snapshot(db, "2026-H1"))
    db.dispose()
    return snap


def _evaluation_job(db, batch_size=10) -> str:
    return jobs.submit(db, "window.evaluate", {"window_id": "2026-H1", "batch_size": batch_size, "actor": "测试"},
                       actor="测试", lock_key=LOCK)


def _count(db, model) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(model))


# --- imports ----------------------------------------------------------------------------------------
def test_an_import_runs_as_a_job_with_its_row_report(db):
    today = date.today()
    W.open_window(db, "current", opens_on=today - timedelta(days=5), closes_on=today + timedelta(days=5),
                  coverage_from="2025-10-01", coverage_to="2026-09-30")
    good = profiles_csv([make_profile(i) for i in range(5)])
    path = stash_upload(good, "申报.csv")
    job = jobs.submit(db, "applications.import", {"window_id": "current", "path": path, "filename": "申报.csv",
                                                  "actor": "经办人"}, actor="经办人", lock_key="import:current")
    jobs.run_pending(db)
    v = jobs.get(db, job)
    assert (v.state, v.kind_text, v.state_text) == ("succeeded", "批量导入", "已完成")
    assert v.result["committed"] and v.result["created"] == 5 and v.result["problems"] == []
    assert "access_codes" not in v.result and v.files == ["查询码.csv"]
    assert not os.path.exists(path)                    # the stashed upload is gone
    with db.read_session() as s:
        f = s.get(JobFile, (job, "查询码.csv"))
    assert f.path.startswith(str(data_dir())) and stat.S_IMODE(os.stat(f.path).st_mode) == 0o600
    media, data = jobs.file(db, job, "查询码.csv")
    text = data.decode("utf-8-sig")
    assert media == "text/csv" and text.count("\n") == 2 + 5 and uscc_of(3) in text

    # A file with errors: the report lists each bad cell where it is; nothing is imported.
    bad = good.decode("utf-8-sig").replace("2018-06-01", "2018-13-45", 1).replace(uscc_of(4), "91512000MA0000004X")
    path = stash_upload(bad.encode("utf-8-sig"), "有错.csv")
    job = jobs.submit(db, "applications.import", {"window_id": "current", "path": path, "filename": "有错.csv",
                                                  "actor": "经办人"}, actor="经办人", lock_key="import:current")
    jobs.run_pending(db)
    v = jobs.get(db, job)
    assert v.state == "succeeded" and not v.result["committed"] and v.files == []
    problems = v.result["problems"]
    assert {(p.get("row"), p.get("column")) for p in problems} >= {(2, "成立日期"), (6, "统一社会信用代码")}
    assert all("\u4e00" <= p["message"][0] <= "\u9fff" or p["message"][0] in "“0123456789" for p in problems)
    assert _count(db, Application) == 5


# --- evaluation ----------------------------------------------------------------------------------
class Interrupt(Exception):
    pass


def test_evaluation_is_resumable_and_running_it_twice_stores_nothing_twice(db, tmp_path):
    open_h1(db)
    profiles = [make_profile(i) for i in range(60)]
    _ingest(db, profiles)
    batches = []

    def stop_after_three(s):
        batches.append(1)
        if len(batches) > 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        evaluate_window(db, "2026-H1", batch_size=10, check=stop_after_three)
    assert _count(db, Evaluation) == 30
    res = evaluate_window(db, "2026-H1", batch_size=10)
    assert (res.evaluated, res.skipped, res.failed) == (30, 30, 0)
    before = decision_snapshot(db, "2026-H1")
    res = evaluate_window(db, "2026-H1", batch_size=7)
    assert (res.evaluated, res.skipped) == (0, 60)
    assert decision_snapshot(db, "2026-H1") == before
    keys = [r[:3] for r in grant_rows(db)]
    assert len(keys) == len(set(keys)) and _count(db, Evaluation) == 60
    clean = Database(f"sqlite:///{tmp_path / 'clean.db'}")
    clean.upgrade()
    open_h1(clean)
    _ingest(clean, profiles)
    evaluate_window(clean, "2026-H1")
    assert _comparable(decision_snapshot(clean, "2026-H1")) == _comparable(before)
    clean.dispose()
    assert_history_complete(db, "2026-H1")


def test_the_evaluation_job_counts_applications_and_known_enterprises_apart(db):
    """An applicant of another window is a known enterprise: judged for 免申即享, not counted
    as an application of this one."""
    open_h1(db)
    open_h1(db, "2026-HX")
    submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2)])
    submit_all(db, "2026-HX", [grant_profile(3)])
    job = _evaluation_job(db)
    jobs.run_pending(db)
    r = jobs.get(db, job).result
    assert (r["evaluated"], r["applications"], r["known_enterprises"]) == (3, 2, 1)


def test_an_application_that_cannot_be_evaluated_is_recorded_and_blocks_nothing(db, monkeypatch):
    for wid in ("2026-H1", "2026-X"):
        open_h1(db, wid)
        submit_all(db, wid, [grant_profile(i) for i in range(1, 7)])
    # A snapshot the rules in force no longer accept (stored under an older field registry),
    # and a profile the engine fails on.
    with db.session() as s:
        snap = s.get(ProfileSnapshot, s.scalar(select(Application.snapshot_hash).where(Application.uscc == uscc_of(2))))
        pack = packer(s, rulesets.current().registry)
        snap.packed = pack(orjson.dumps({**profiles.load(s, snap.packed), "employees_avg": -5}))
    real_many = Evaluator.decide_many

    def many(self, profiles, *a, **kw):      # a batch, and each of its profiles alone after
        if any(p.uscc == uscc_of(4) for p in profiles):
            raise EngineError("durable_rules: process died (signal 11)")
        return real_many(self, profiles, *a, **kw)

    monkeypatch.setattr(Evaluator, "decide_many", many)
    for wid in ("2026-H1", "2026-X"):
        res = evaluate(db, wid)
        assert (res.evaluated, res.failed) == (6, 2)
        w = W.get_window(db, wid)
        assert w.counts.failed == 2 and w.counts.stale == 0
        assert w.counts.by_state == {"judged": 4, "failed": 2}
        assert w.counts.grant_decisions == {"eligible": 4}
    with db.read_session() as s:
        errors = dict(s.execute(select(Evaluation.uscc, Evaluation.error)
                                .where(Evaluation.window_id == "2026-H1", Evaluation.error.is_not(None))).all())
    assert set(errors) == {uscc_of(2), uscc_of(4)}
    assert "全年季度平均从业人数：不能小于 0" in errors[uscc_of(2)]
    assert "规则引擎未能判定" in errors[uscc_of(4)]
    for msg in errors.values():   # staff read these: no class names, codes or field paths
        assert not any(t in msg for t in ("Error", "[type=", "employees_avg", "signal", "input_value"))
    assert_history_complete(db, "2026-H1")
    # The window goes on to its end; the failed applications are neither awarded nor refused.
    monkeypatch.undo()
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    from store import awards
    awards.publish(db, "2026-H1", today=AFTER_H1)
    res = awards.close_window(db, "2026-H1", today=date(2026, 4, 10))
    assert len(res.awards) == 4 and res.refused == []


# --- outages and crashes ------------------------------------------------------------------------------
def test_after_a_database_outage_mid_evaluation_the_window_is_not_held(store_url, reference):
    """The outage lasts through the job's failure handling, so the job cannot record its end;
    once the database is back, a new evaluation is accepted at once and completes."""
    db = Database(store_url)
    watch = Database(store_url)
    try:
        open_h1(db)
        _ingest(db, [make_profile(i) for i in range(600)])
        first = _evaluation_job(db, batch_size=50)
        outage = Outage(db, start_on="UPDATE applications SET state", after=3)
        try:
            jobs.run_pending(db)
        except OperationalError:
            pass                # SQLite: the runner itself reports it; procrastinate logs it
        assert outage.failures > 0
        outage.end()
        assert jobs.get(watch, first).state == "running"      # it could not record its end
        done = _count(watch, Evaluation)
        assert 0 < done < 600
        second = _evaluation_job(db, batch_size=50)           # no 409: the lock is not held by nobody
        jobs.run_pending(db)
        v1, v2 = jobs.get(db, first), jobs.get(db, second)
        assert (v1.state, v2.state) == ("failed", "succeeded")
        assert "运行中断" in v1.error and "Traceback" not in v1.error
        assert (v2.result["evaluated"], v2.result["skipped"]) == (600 - done, done)
        assert _comparable(decision_snapshot(db, "2026-H1")) == reference
        assert jobs.active(db, LOCK) is None
    finally:
        db.dispose()
        watch.dispose()


def test_the_local_runner_finishes_a_job_the_outage_interrupted(tmp_path, monkeypatch, reference):
    url, _ = make_store_url("sqlite", tmp_path)
    db = Database(url)
    monkeypatch.setattr(jobs, "POLL", 0.1)
    open_h1(db)
    _ingest(db, [make_profile(i) for i in range(600)])
    outage = Outage(db, start_on="UPDATE applications SET state", after=3)
    runner = jobs.LocalRunner(db).start()
    try:
        job = _evaluation_job(db, batch_size=50)
        runner.wake()
        # The run fails, and so does recording its failure; then the database comes back.
        wait_until(lambda: outage.failures > 0 and job not in jobs._ACTIVE, 60, "the run to end in the outage")
        outage.end()
        v = jobs.wait(db, job, poll=0.1, timeout=60)
        assert v.state == "succeeded" and v.result["skipped"] > 0
        with db.read_session() as s:
            assert s.get(Job, job).attempts == 2
        assert _comparable(decision_snapshot(db, "2026-H1")) == reference
    finally:
        runner.stop()
        db.dispose()


WORKER = {
    "sqlite": ("import time\nfrom store.db import Database\nfrom store import jobs, tasks\n"
               "jobs.LocalRunner(Database()).start()\nwhile True: time.sleep(1)\n"),
    "postgres": "from store.db import Database\nfrom store import jobs, tasks\njobs.worker_main(Database(), 1, False)\n",
}
FAST = {"YAGU_JOBS_POLL": "0.1", "YAGU_JOBS_HEARTBEAT": "0.5", "YAGU_JOBS_STALLED_AFTER": "3"}


@pytest.mark.parametrize("kind", STORES)
def test_a_worker_killed_mid_evaluation_is_resumed_by_the_queue(kind, tmp_path, monkeypatch, reference):
    url, cleanup = make_store_url(kind, tmp_path)
    db = Database(url)
    try:
        open_h1(db)
        _ingest(db, [make_profile(i) for i in range(600)])
        job = _evaluation_job(db)
        proc = spawn(url, WORKER[kind], env=FAST)
        try:
            wait_until(lambda: _count(db, Evaluation) >= 100, 120, "the worker to commit some batches", proc)
        finally:
            sigkill(proc)
        done = _count(db, Evaluation)
        assert done < 600, "the evaluation finished before the worker could be killed"
        assert jobs.get(db, job).state == "running"
        monkeypatch.setattr(jobs, "POLL", 0.1)
        monkeypatch.setattr(jobs, "HEARTBEAT", 0.5)
        monkeypatch.setattr(jobs, "STALLED_AFTER", 3)
        runner = jobs.LocalRunner(db).start() if kind == "sqlite" else jobs.PgWorkerThread(db).start()
        try:
            v = jobs.wait(db, job, poll=0.2, timeout=120)
        finally:
            runner.stop()
        assert v.state == "succeeded"
        assert v.result["skipped"] >= done and v.result["evaluated"] + v.result["skipped"] == 600
        with db.read_session() as s:
            assert s.get(Job, job).attempts == 2
        keys = [r[:3] for r in grant_rows(db)]
        assert len(keys) == len(set(keys))
        assert _comparable(decision_snapshot(db, "2026-H1")) == reference
    finally:
        db.dispose()
        cleanup()


@jobs.task("test.fails", "测试任务")
def _failing_task(db, ctx, args):
    raise {"bug": KeyError("profile"), "store": Conflict("申报批次 X 已关闭"),
           "database": OperationalError("INSERT", None, Exception("attempt to write a readonly database")),
           "worker": RuntimeError("评估进程出错：\nTraceback (most recent call last): …")}[args["kind"]]


def test_a_failed_job_says_why_in_one_chinese_line(db):
    expected = {"bug": "任务出错（程序错误），已记入日志，请联系系统管理员", "store": "申报批次 X 已关闭",
                "database": "数据库操作失败（数据库文件只读），请稍后重新提交", "worker": "评估进程出错："}
    ids = {k: jobs.submit(db, "test.fails", {"kind": k}, actor="测试") for k in expected}
    jobs.run_pending(db)
    for k, job in ids.items():
        v = jobs.get(db, job)
        assert (v.state, v.state_text, v.error) == ("failed", "失败", expected[k])
