"""Background jobs: window evaluations, impact runs, notice bundles, imports.

Progress, results and failures live in the `jobs` table on both databases, so the console
and the CLI read one table. What runs them:

* **PostgreSQL**: the procrastinate queue (a maintained job-queue library on the project's
  own database). Any number of `yagu worker` processes, on any number of machines, take jobs;
  `yagu serve` runs one in-process unless `YAGU_JOBS_WORKER=external`. procrastinate detects
  a worker that stopped heart-beating but does not re-queue its job: the reaper here does.
* **SQLite** (the default): a runner thread in the process (`LocalRunner`); a job whose
  process died (pid gone, or no heartbeat) is re-queued by the next runner.

Either way a job is run by `run(db, job_id)`: it takes a fresh run token, and every batch a
task writes checks that token in the same transaction (`JobContext.check`), so a run that is
only presumed dead and wakes up later cannot write over its successor; on PostgreSQL the run
also holds an advisory lock on the job's lock key (released by PostgreSQL itself if the
worker's connection dies). Tasks are resumable and idempotent, so a re-queued job ends with
the same result.

A run that ended without recording its end (the database went away while it finished) is
*orphaned*: its process no longer runs it (SQLite: this process's set of running jobs, or a
dead process; PostgreSQL: nobody holds its advisory lock). The local runner re-queues it, and
a new submission for the same lock key takes over instead of waiting for it forever.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional

import procrastinate
from procrastinate import exceptions as pexc
from pydantic import BaseModel, Field
from sqlalchemy import and_, exists, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from engine.vocabulary import cn_date, cn_time
from store import audit
from store.db import Database
from store.errors import Conflict, NotFound, StoreError, storage_reason
from store.models import AuditLog, Job, JobFile, utcnow

log = logging.getLogger("yagu.jobs")

HEARTBEAT = float(os.environ.get("YAGU_JOBS_HEARTBEAT") or 5)
STALLED_AFTER = float(os.environ.get("YAGU_JOBS_STALLED_AFTER") or 30)
POLL = float(os.environ.get("YAGU_JOBS_POLL") or 2)
ME = f"{socket.gethostname()}:{os.getpid()}"
STATE_TEXT = {"queued": "排队中", "running": "进行中", "succeeded": "已完成", "failed": "失败", "cancelled": "已取消"}
KIND_TEXT: dict[str, str] = {}
Task = Callable[[Database, "JobContext", dict], dict]
_TASKS: dict[str, Task] = {}
_ACTIVE: set[str] = set()       # jobs this process is running now
_ADVISORY = "hashtextextended(current_schema() || ':' || :k, 0)"   # per schema: tests share a database


def task(kind: str, title: str) -> Callable[[Task], Task]:
    """Register a task function under a job kind (its Chinese title is shown in the console)."""
    def deco(fn: Task) -> Task:
        _TASKS[kind] = fn
        KIND_TEXT[kind] = title
        return fn
    return deco


class Superseded(Exception):
    """Another run of this job took over; this run stops without writing."""


class Cancelled(Exception):
    pass


class JobView(BaseModel):
    id: str
    kind: str
    kind_text: str
    state: str
    state_text: str
    done: int
    total: int
    message: Optional[str] = None
    result: Optional[dict] = None
    error: Optional[str] = None
    actor: str
    created_at: datetime
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    files: list[str] = []
    window_id: Optional[str] = Field(None, description="任务所属的申报批次（批量判定、导入、打包、影响分析、重放）")
    about: Optional[str] = Field(None, description="影响分析比较的是什么（另一套规则的名称、判定日期），任务失败时也有")
    downloads: dict[str, list[str]] = Field(
        default_factory=dict, description="须安全转交的文件（查询码）每次下载的时间和经办人，按文件名")


# Files a job writes that hold secrets (the access codes of new applications): each download
# is recorded, with who and when, and the job's page lists them.
SECRET_FILES = frozenset({"查询码.csv"})


@dataclass
class JobContext:
    db: Database
    job_id: str
    token: str
    args: dict

    def check(self, s: Session) -> None:
        """In a task's write transaction: still this run's job, and not cancelled."""
        row = s.execute(select(Job.run_token, Job.cancel_requested).where(Job.id == self.job_id)
                        .with_for_update()).one()
        if row.run_token != self.token:
            raise Superseded(self.job_id)
        if row.cancel_requested:
            raise Cancelled(self.job_id)

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        with self.db.session() as s:
            self.check(s)
            s.execute(update(Job).where(Job.id == self.job_id)
                      .values(done=done, total=total, message=message, heartbeat_at=utcnow()))

    def add_file(self, name: str, media_type: str, data: bytes) -> None:
        from store.paths import private_dir, write_private
        path = write_private(private_dir("jobs", self.job_id) / _safe(name), data)
        self._register(name, media_type, path)

    @contextmanager
    def writing(self, name: str, media_type: str) -> Iterator[BinaryIO]:
        """An output file written as the task goes (memory stays bounded, e.g. a zip of a whole
        window's notices); it appears, owner-only, once the block completes."""
        from store.paths import private_dir
        path = private_dir("jobs", self.job_id) / _safe(name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self._register(name, media_type, path)

    def _register(self, name: str, media_type: str, path: Path) -> None:
        with self.db.session() as s:
            self.check(s)
            s.merge(JobFile(job_id=self.job_id, name=name, media_type=media_type, path=str(path),
                            size=path.stat().st_size))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.一" or "\u4e00" <= c <= "\u9fff" else "_" for c in name)[:150]


# --- submitting and reading ---------------------------------------------------------------------
def submit(db: Database, kind: str, args: dict, *, actor: str, lock_key: str | None = None) -> str:
    """Queue a job; at most one job per lock key may wait or run at a time (Conflict)."""
    if kind not in _TASKS:
        raise ValueError(f"unknown job kind {kind}")
    job_id = "J" + secrets.token_hex(8).upper()
    with db.session() as s:
        if lock_key:
            for busy in s.execute(select(Job).where(Job.lock_key == lock_key, Job.state.in_(("queued", "running")))
                                  .with_for_update()).scalars():
                if busy.state == "running" and _orphaned(db, s, busy):
                    # no token: a run only presumed dead stops at its next batch (Superseded)
                    busy.state, busy.run_token, busy.finished_at, busy.message = "failed", None, utcnow(), "运行中断"
                    busy.error = f"运行中断（数据库或进程故障），未能完成；已由任务 {job_id} 重新执行"
                    continue
                raise Conflict(f"同一对象已有任务“{STATE_TEXT[busy.state]}”（任务 {busy.id}），请等待其完成")
        s.add(Job(id=job_id, kind=kind, args=args, lock_key=lock_key, state="queued", done=0, total=0,
                  attempts=0, cancel_requested=False, actor=actor, created_at=utcnow()))
    if db.is_postgres:
        _pg_defer(db, job_id, lock_key)
    else:
        _wake_local(db)
    return job_id


def get(db: Database, job_id: str) -> JobView:
    with db.read_session() as s:
        j = s.get(Job, job_id) if isinstance(job_id, str) and len(job_id) <= 32 else None
        if j is None:
            raise NotFound(f"任务 {job_id} 不存在")
        names = s.scalars(select(JobFile.name).where(JobFile.job_id == job_id)).all()
        downloads: dict[str, list[str]] = {}
        for name in SECRET_FILES & set(names):
            downloads[name] = [f"{cn_time(at)} {actor}" for at, actor in s.execute(
                select(AuditLog.at, AuditLog.actor).where(AuditLog.action == "job.file.download",
                                                          AuditLog.target == f"{job_id}/{name}")
                .order_by(AuditLog.id))]
        return _view(j, list(names), downloads)


def _window_of(lock_key: Optional[str]) -> Optional[str]:
    kind, _, rest = (lock_key or "").partition(":")
    return rest if kind in ("window", "import", "notices", "impact", "replay") and rest != "registry" else None


def _view(j: Job, files: list[str], downloads: dict | None = None) -> JobView:
    return JobView(id=j.id, kind=j.kind, kind_text=KIND_TEXT.get(j.kind, j.kind), state=j.state,
                   state_text=state_text(j.kind, j.state, j.result), done=j.done, total=j.total, message=j.message, result=j.result,
                   error=j.error, actor=j.actor, created_at=j.created_at, started_at=j.started_at,
                   finished_at=j.finished_at, files=files, window_id=_window_of(j.lock_key),
                   downloads=downloads or {}, about=_about(j))


def _about(j: Job) -> Optional[str]:
    """What an impact run compared, from its result or, for one that failed (no result), from
    what was asked: runs are told apart in the job lists."""
    if j.kind != "window.impact":
        return None
    if j.result and j.result.get("label"):
        return j.result["label"]
    args = j.args or {}
    said = [f"与“{Path(args['rules_dir']).name}”比较"] if args.get("rules_dir") else []
    if args.get("as_of"):
        try:
            said.append(f"判定日期 {cn_date(date.fromisoformat(args['as_of']))}")
        except ValueError:
            said.append(f"判定日期“{args['as_of']}”")
    return "，".join(said) or None


def state_text(kind: str, state: str, result: dict | None) -> str:
    """The job's state in words; an import that ended by refusing its file (nothing imported,
    the problems in its report) is not 已完成."""
    if kind == "applications.import" and state == "succeeded" and result and not result.get("committed"):
        return "未导入（文件有问题）"
    return STATE_TEXT[state]


def list_jobs(db: Database, *, window_id: str | None = None, limit: int = 20) -> list[JobView]:
    """The latest jobs (of one window: its evaluations, imports, bundles, impact runs)."""
    with db.read_session() as s:
        q = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if window_id:
            q = q.where(Job.lock_key.like(f"%:{window_id}"))
        return [_view(j, []) for j in s.execute(q).scalars()]


def active(db: Database, lock_key: str) -> Optional[str]:
    with db.read_session() as s:
        return s.scalar(select(Job.id).where(Job.lock_key == lock_key, Job.state.in_(("queued", "running"))))


def file(db: Database, job_id: str, name: str, *, actor: str | None = None) -> tuple[str, bytes]:
    """A job's file; a download of a secret one (SECRET_FILES) is recorded, with `actor`."""
    with db.session() as s:
        f = s.get(JobFile, (job_id, name))
        if f is None:
            raise NotFound("文件不存在")
        with open(f.path, "rb") as fh:
            data = fh.read()
        if name in SECRET_FILES:
            audit.record(s, actor, "job.file.download", f"{job_id}/{name}")
        return f.media_type, data


def cancel(db: Database, job_id: str) -> None:
    with db.session() as s:
        j = s.get(Job, job_id)
        if j is None:
            raise NotFound(f"任务 {job_id} 不存在")
        if j.state not in ("queued", "running"):
            raise Conflict(f"任务 {job_id} 当前为“{STATE_TEXT[j.state]}”，不能取消")
        j.cancel_requested = True
        if j.state == "queued":
            j.state, j.finished_at, j.message = "cancelled", utcnow(), "已取消"


def wait(db: Database, job_id: str, on_progress: Callable[[JobView], None] | None = None,
         poll: float = 0.5, timeout: float | None = None) -> JobView:
    start = time.monotonic()
    while True:
        v = get(db, job_id)
        if on_progress:
            on_progress(v)
        if v.state in ("succeeded", "failed", "cancelled"):
            return v
        if timeout is not None and time.monotonic() - start > timeout:
            return v
        time.sleep(poll)


# --- running -------------------------------------------------------------------------------------
def run(db: Database, job_id: str) -> None:
    """Run one job to its end (the queue's task body, on both databases)."""
    if db.is_postgres:
        with db.engine.connect() as c:     # held for the whole run; dropped with the connection
            key = c.scalar(select(Job.lock_key).where(Job.id == job_id)) or job_id
            # advisory locks are per database: the schema keeps two schemas' windows apart
            c.execute(text(f"select pg_advisory_lock({_ADVISORY})"), {"k": key})
            c.commit()
            try:
                _run(db, job_id)
            finally:
                c.execute(text(f"select pg_advisory_unlock({_ADVISORY})"), {"k": key})
                c.commit()
    else:
        _run(db, job_id)


def _run(db: Database, job_id: str) -> None:
    _ACTIVE.add(job_id)         # before it is marked running: never seen running and not active
    try:
        _run_active(db, job_id)
    finally:
        _ACTIVE.discard(job_id)


def _run_active(db: Database, job_id: str) -> None:
    token = secrets.token_hex(8)
    with db.session() as s:
        j = s.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()
        if j is None or j.state in ("succeeded", "failed", "cancelled"):
            return
        j.state, j.run_token, j.attempts, j.worker = "running", token, j.attempts + 1, ME
        j.heartbeat_at, j.started_at = utcnow(), j.started_at or utcnow()
        kind, args = j.kind, dict(j.args)
    ctx = JobContext(db, job_id, token, args)
    try:
        result = _TASKS[kind](db, ctx, args)
    except Superseded:
        return
    except Cancelled:
        _finish(db, job_id, token, state="cancelled", message="已取消")
        return
    except Exception as exc:  # noqa: BLE001 — a failed job records why; the runner goes on
        if isinstance(exc, StoreError):     # refused as the user is told (a closed window, a bad file)
            log.info("job %s refused: %s", job_id, exc.message[:200])
        else:                               # a program error: its traceback, for the log
            log.exception("job %s failed", job_id)
        _finish(db, job_id, token, state="failed", error=_error_text(exc), message="失败")
        return
    _finish(db, job_id, token, state="succeeded", result=result, message="已完成")


def _error_text(exc: BaseException) -> str:
    """Why the job failed, in one Chinese line (the traceback is in the log)."""
    if isinstance(exc, StoreError):
        return exc.message[:2000]
    if isinstance(exc, DBAPIError):
        return f"数据库操作失败（{storage_reason(exc)}），请稍后重新提交"
    first = str(exc).strip().split("\n", 1)[0]
    if any("\u4e00" <= c <= "\u9fff" for c in first):     # our own words (e.g. an evaluation process died)
        return first[:500]
    return "任务出错（程序错误），已记入日志，请联系系统管理员"


def _finish(db: Database, job_id: str, token: str, **values: Any) -> None:
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.run_token == token)
                  .values(finished_at=utcnow(), heartbeat_at=utcnow(), **values))


# --- SQLite: the in-process runner -----------------------------------------------------------------
def _pid_dead(worker: str | None) -> bool:
    host, _, pid = (worker or "").partition(":")
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def _orphaned(db: Database, s: Session, j: Job) -> bool:
    """A job marked running that nobody runs any more."""
    if db.is_postgres:      # run() holds the advisory lock while it runs (released if its connection dies)
        return bool(s.scalar(text(f"select pg_try_advisory_xact_lock({_ADVISORY})"), {"k": j.lock_key or j.id}))
    if j.worker == ME:
        return j.id not in _ACTIVE
    hb = j.heartbeat_at.replace(tzinfo=timezone.utc) if j.heartbeat_at and j.heartbeat_at.tzinfo is None \
        else j.heartbeat_at
    return _pid_dead(j.worker) or hb is None or utcnow() - hb > timedelta(seconds=STALLED_AFTER)


def recover(db: Database) -> list[str]:
    """Re-queue running jobs that nobody runs any more: their process died (same host),
    stopped heart-beating, or (this process) ended without recording the end (SQLite)."""
    out = []
    with db.session() as s:
        for j in s.execute(select(Job).where(Job.state == "running")).scalars():
            if _orphaned(db, s, j):
                j.state, j.run_token, j.worker = "queued", None, None
                j.message = "上次运行中断，已重新排队"
                out.append(j.id)
    return out


def claim(db: Database) -> Optional[str]:
    """The oldest queued job whose lock key is not held by a running job (SQLite)."""
    j2 = Job.__table__.alias("j2")
    with db.session() as s:        # BEGIN IMMEDIATE: claims never interleave
        job_id = s.scalar(select(Job.id).where(
            Job.state == "queued", Job.cancel_requested.is_(False),
            ~exists().where(and_(j2.c.state == "running", Job.lock_key.is_not(None),
                                 j2.c.lock_key == Job.lock_key)))
            .order_by(Job.created_at).limit(1))
        return job_id


def run_pending(db: Database) -> None:
    """Run queued jobs in this thread until none is left (the CLI, tests)."""
    if db.is_postgres:
        _pg_burst(db)
        return
    recover(db)
    while (job_id := claim(db)) is not None:
        run(db, job_id)


class LocalRunner:
    """A thread that runs the SQLite database's jobs in this process (`yagu serve`)."""

    def __init__(self, db: Database):
        self.db = db
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="yagu-jobs", daemon=True)
        self._hb = threading.Thread(target=self._heartbeat, name="yagu-jobs-heartbeat", daemon=True)

    def start(self) -> "LocalRunner":
        _LOCAL[id(self.db)] = self
        self._hb.start()
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        _LOCAL.pop(id(self.db), None)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                recover(self.db)
                job_id = claim(self.db)
                if job_id is not None:
                    run(self.db, job_id)
                    continue
            except Exception:  # noqa: BLE001 — a database outage: retry after a pause
                log.exception("job runner")
            self._wake.wait(POLL)
            self._wake.clear()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                running = list(_ACTIVE)
                if running:
                    with self.db.session() as s:
                        s.execute(update(Job).where(Job.id.in_(running), Job.state == "running", Job.worker == ME)
                                  .values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001
                log.exception("job heartbeat")


_LOCAL: dict[int, LocalRunner] = {}


def _wake_local(db: Database) -> None:
    runner = _LOCAL.get(id(db))
    if runner is not None:
        runner.wake()


# --- PostgreSQL: procrastinate ---------------------------------------------------------------------
_apps: dict[tuple[str, str], procrastinate.App] = {}


def pg_app(db: Database, use: str = "worker") -> procrastinate.App:
    """The procrastinate App of this database (its `yagu.run_job` task runs `run`). Deferring
    uses its own App: once a worker thread of this process opened the worker's App
    asynchronously, that App can no longer be opened synchronously."""
    key = (db.url, use)
    if key not in _apps:
        # the same URL as a libpq URI (its query, e.g. a search_path option, is kept)
        conninfo = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

        @app.task(name="yagu.run_job", queue="yagu", pass_context=False)
        def run_job(job_id: str) -> None:
            run(db, job_id)

        _apps[key] = app
    return _apps[key]


def _pg_defer(db: Database, job_id: str, lock_key: str | None) -> None:
    app = pg_app(db, "defer")
    with app.open():
        task_ = app.tasks["yagu.run_job"]
        try:
            task_.configure(lock=lock_key).defer(job_id=job_id)
        except pexc.AlreadyEnqueued:  # pragma: no cover — our own check came first
            raise Conflict("该任务已在排队")


async def _reap(app: procrastinate.App) -> None:
    """Re-queue jobs whose worker stopped heart-beating (procrastinate only detects them)."""
    while True:
        try:
            for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER):
                try:
                    await app.job_manager.retry_job(job)
                    log.warning("re-queued stalled job %s", job.id)
                except pexc.ConnectorException:
                    pass        # another worker's reaper got there first
        except Exception:  # noqa: BLE001 — keep reaping
            log.exception("reaper")
        await asyncio.sleep(max(1.0, STALLED_AFTER / 3))


async def _worker(db: Database, concurrency: int, burst: bool) -> None:
    app = pg_app(db)
    async with app.open_async():
        reaper = asyncio.create_task(_reap(app))
        try:
            await app.run_worker_async(queues=["yagu"], concurrency=concurrency, wait=not burst,
                                       update_heartbeat_interval=HEARTBEAT, stalled_worker_timeout=STALLED_AFTER,
                                       fetch_job_polling_interval=POLL, delete_jobs="successful",
                                       install_signal_handlers=not burst and threading.current_thread() is threading.main_thread())
        finally:
            reaper.cancel()


def worker_main(db: Database, concurrency: int = 1, burst: bool = False) -> None:
    """`yagu worker`: take jobs from the PostgreSQL queue until stopped (or, burst, until none)."""
    asyncio.run(_worker(db, concurrency, burst))


def _pg_burst(db: Database) -> None:
    asyncio.run(_worker(db, 1, True))


class PgWorkerThread:
    """procrastinate's worker in a thread of `yagu serve` (one process serves and works)."""

    def __init__(self, db: Database):
        self.db = db
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="yagu-pg-worker", daemon=True)
        self._task: asyncio.Task | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(_worker(self.db, 1, False))
        try:
            self.loop.run_until_complete(self._task)
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 — stopped, or the database went away
            log.info("in-process worker stopped")

    def start(self) -> "PgWorkerThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)


def start_runner(db: Database):
    """The runner `yagu serve` starts for its database (None when workers are external)."""
    if db.is_postgres:
        if os.environ.get("YAGU_JOBS_WORKER", "inprocess") == "external":
            return None
        return PgWorkerThread(db).start()
    return LocalRunner(db).start()
