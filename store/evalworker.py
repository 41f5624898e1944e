"""Evaluation runners for `store.evaluation`: in this process, or a pool of worker processes.

The rule engine holds the GIL while it runs (PITFALLS 20), so a window is evaluated in
parallel by processes, each with its own Evaluator. Workers get batches of profile JSON (as
stored) and return, per enterprise, its compact record (store.decisions.pack) and its grant
decisions — or the reason it could not be evaluated, which never stops the others. The
parent only reads profiles and writes rows, one transaction per batch, in batch order (so an
interrupted run leaves a clean prefix).

An import checks every other part of its file in one such worker (`CheckWorker`): the
profiles' validation and packing are most of an import's CPU, and the second core was idle.

Workers are plain `python -m store.evalworker` subprocesses talking pickled frames over
their stdin/stdout: no re-import of the caller's __main__ (multiprocessing's spawn would),
and a worker whose parent dies (Ctrl-C, kill -9) reads EOF on stdin and exits.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from pydantic import ValidationError

from engine.adapter import EngineError
from engine.messages import pydantic_message
from engine.profile import _path, profile_model
from store.collector import tune_for_bulk
from store.decisions import PLAIN, Packing, grants_of, pack, pack_grants

log = logging.getLogger("yagu.evaluation")
ENV_WORKERS = "YAGU_EVAL_WORKERS"
# Below this many enterprises to evaluate, starting worker processes (about a second:
# imports and rule compilation) costs more than it saves.
POOL_MIN_SUBJECTS = 2000
# Batches queued per worker: with 2 a worker sat idle while the parent committed (a window of
# 100,000 took 18.4 s with 2, 17.1 s with 4; a batch of profiles is about 400 KB).
IN_FLIGHT_PER_WORKER = 4


class WorkerFailed(RuntimeError):
    pass


def resolve_workers(workers: Optional[int]) -> tuple[int, bool]:
    """(number of processes, explicitly requested?) from the argument, $YAGU_EVAL_WORKERS,
    or the CPU count."""
    if workers is not None:
        explicit = True
    elif os.environ.get(ENV_WORKERS, "").strip():
        raw = os.environ[ENV_WORKERS].strip()
        try:
            workers = int(raw)
        except ValueError:
            raise ValueError(f"环境变量 {ENV_WORKERS} 必须是正整数，不能是“{raw}”") from None
        explicit = True
    else:
        workers, explicit = os.cpu_count() or 1, False
    if workers < 1:
        raise ValueError(f"评估进程数必须是正整数，不能是 {workers}")
    return workers, explicit


# --- shared by both runners ----------------------------------------------------------------


def parse_stored_profile(text: str | bytes | dict, registry):
    """A snapshot as stored: validated on intake, so only rebuilt here. Re-validating
    against today would reject dates that were "today" then, hence today=date.max."""
    model = profile_model(registry)
    if isinstance(text, dict):
        return model.model_validate(text, context={"today": date.max})
    return model.model_validate_json(text, context={"today": date.max})


def record_of(verdicts: list, packing: Packing = PLAIN) -> tuple:
    """One enterprise's outcome: ("ok", compact record, grant rows) where a grant row is
    (benefit_id, subject_id, status, amount, provisional), packed (store.decisions.pack_grants)."""
    return "ok", pack(verdicts, packing), pack_grants(grants_of(verdicts), packing.grants)


def _failure(exc: BaseException, registry=None) -> tuple:
    """("error", the reason in Chinese as staff read it); the technical detail goes to the log."""
    if isinstance(exc, ValidationError) and registry is not None:
        problems = "；".join(f"{registry.label(_path(e['loc']))}：{pydantic_message(e)}" for e in exc.errors()[:5])
        return "error", f"该企业画像不符合现行字段规定（{problems}），请更正后重新提交"[:500]
    log.error("evaluation failed: %s: %s", type(exc).__name__, str(exc)[:500])
    if isinstance(exc, EngineError):
        return "error", "规则引擎未能判定该企业画像，已记入日志，请联系系统管理员"
    return "error", "该企业画像无法判定（程序出错），已记入日志，请联系系统管理员"


def evaluate_batch(ev, texts: list, as_of: date, window, awarded, packing: Packing = PLAIN
                   ) -> tuple[list[tuple], tuple]:
    """(one outcome per enterprise, (parse, engine, encode) seconds) for a batch of stored
    profiles. A profile that cannot be parsed or decided gets ("error", reason); the rest
    of the batch is decided as usual."""
    t0 = time.perf_counter()
    profiles: list = []
    for text in texts:
        try:
            profiles.append(parse_stored_profile(text, ev.registry))
        except Exception as exc:  # noqa: BLE001 — recorded against that application
            profiles.append(exc)
    t1 = time.perf_counter()
    good = [p for p in profiles if not isinstance(p, BaseException)]
    try:
        resps = iter(ev.decide_many(good, as_of=as_of, window=window, awarded=awarded))
    except Exception:  # noqa: BLE001 — find the profiles that fail, one by one
        resps = None
    t2 = time.perf_counter()
    out = []
    for p in profiles:
        if isinstance(p, BaseException):
            out.append(_failure(p, ev.registry))
            continue
        if resps is not None:
            out.append(record_of(next(resps), packing))
            continue
        try:
            out.append(record_of(ev.decide_many([p], as_of=as_of, window=window, awarded=awarded)[0], packing))
        except Exception as exc:  # noqa: BLE001
            out.append(_failure(exc, ev.registry))
    return out, (t1 - t0, t2 - t1, time.perf_counter() - t2)


class _Times:
    """Seconds spent in the workers (summed over them)."""

    def __init__(self):
        self.parse = self.engine = self.encode = 0.0

    def add(self, t: tuple) -> None:
        self.parse += t[0]
        self.engine += t[1]
        self.encode += t[2]


# --- runners -----------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike getrusage's maxrss it does not
    include the parent's image a subprocess had before exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class InProcessRunner:
    workers = 1
    worker_peak_rss_mb = 0.0

    def __init__(self, ev, as_of: date, window, awarded, packing: Packing = PLAIN):
        self.ev, self.as_of, self.window, self.awarded, self.packing = ev, as_of, window, awarded, packing
        self.times = _Times()

    def run(self, batches: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        for key, texts in batches:
            rows, t = evaluate_batch(self.ev, texts, self.as_of, self.window, self.awarded, self.packing)
            self.times.add(t)
            yield key, rows

    def close(self, abort: bool = False) -> None:
        pass


class _Worker:
    def __init__(self):
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env[ENV_WORKERS] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "store.evalworker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, cwd=root, close_fds=True,
            start_new_session=False)
        self.out = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self.inp = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.ready = False
        self.results: queue.Queue = queue.Queue()
        self.outbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._drain, daemon=True, name="yagu-eval-reader").start()
        self.feeder = threading.Thread(target=self._feed, daemon=True, name="yagu-eval-writer")
        self.feeder.start()

    def _drain(self) -> None:
        # Results are read as they come, so a worker never blocks writing them while the
        # parent blocks sending it the next batch (both pipes full).
        while True:
            try:
                msg = self.inp.recv()
            except (EOFError, OSError):
                self.results.put(None)
                return
            self.results.put(msg)
            if msg[0] == "error":
                return

    def _feed(self) -> None:
        # Batches are written by this thread: the parent goes on writing decisions while
        # a worker still finishes its previous batch.
        while True:
            msg = self.outbox.get()
            try:
                self.out.send(msg)
            except OSError:
                return  # the worker is gone; recv() reports it
            if msg is None:
                try:
                    self.out.close()
                except OSError:
                    pass
                return

    def send(self, msg) -> None:
        self.outbox.put(msg)

    def recv(self):
        while True:
            msg = self.results.get()
            if msg is None:
                self.results.put(None)
                try:
                    code = self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    code = None
                raise WorkerFailed(f"评估进程意外退出（退出码 {code}）")
            kind = msg[0]
            if kind == "ready":
                self.ready = True
                continue
            if kind == "error":
                self.results.put(msg)
                raise WorkerFailed("评估进程出错：\n" + msg[1])
            return msg

    def close(self, timeout: float = 5, abort: bool = False) -> None:
        if abort:
            self.proc.kill()
        self.outbox.put(None)
        self.feeder.join(timeout)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            self.inp.close()  # after the worker exited: the reader thread has seen EOF
        except OSError:
            pass


class PoolRunner:
    """N worker processes, each with its own Evaluator; results come back in batch order
    with at most IN_FLIGHT_PER_WORKER batches queued per worker (bounded memory)."""

    def __init__(self, ev, workers: int, as_of: date, window, awarded, packing: Packing = PLAIN):
        init = {"sources": ev.book.sources, "backend": ev.backend,
                "ruleset_version": ev.ruleset_version, "as_of": as_of, "window": window,
                "awarded": awarded, "packing": packing}
        self.workers = workers
        self.times = _Times()
        self.worker_peak_rss_mb = 0.0
        self._procs: list[_Worker] = []
        try:
            for _ in range(workers):
                self._procs.append(_Worker())
            for w in self._procs:  # after all have started: their start-up overlaps
                w.send(init)
        except BaseException:
            self.close()
            raise

    def run(self, batches: Iterable[tuple[Any, list]]) -> Iterator[tuple[Any, list]]:
        pending: deque = deque()  # (key, worker) in submission order
        n = len(self._procs)
        limit = n * IN_FLIGHT_PER_WORKER
        for i, (key, texts) in enumerate(batches):
            w = self._procs[i % n]
            w.send(("batch", texts))
            pending.append((key, w))
            if len(pending) >= limit:
                yield self._take(pending)
        while pending:
            yield self._take(pending)

    def _take(self, pending: deque) -> tuple[Any, list]:
        key, w = pending.popleft()
        _, rows, t, rss = w.recv()
        self.times.add(t)
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, rss)
        return key, rows

    def close(self, abort: bool = False) -> None:
        """Stop the workers: after their queued batches, or at once (abort)."""
        for w in self._procs:
            w.close(abort=abort)
        self._procs = []


class CheckWorker:
    """A worker process that checks profiles for an import (store.applications.check_profile),
    with the field registry of `book`. Started before the file is read, so that its start-up
    (about a second) overlaps the reading."""

    def __init__(self, book):
        self._w = _Worker()
        self._w.send({"check": True, "sources": book.sources})

    def submit(self, data: list, today: date, packing: tuple[bytes, bytes]) -> None:
        self._w.send(("check", data, today, packing))

    def result(self) -> list[tuple]:
        """The results of the oldest part submitted, in order."""
        return self._w.recv()[1]

    def close(self, abort: bool = False) -> None:
        self._w.close(abort=abort)


def make_runner(ev, workers: Optional[int], subjects: int, as_of: date, window, awarded,
                packing: Packing = PLAIN):
    """Evaluate here or in worker processes; records are packed as `packing` says, the one
    stored with the ruleset."""
    n, explicit = resolve_workers(workers)
    if n > 1 and not explicit and subjects < POOL_MIN_SUBJECTS:
        n = 1
    if n == 1:
        return InProcessRunner(ev, as_of, window, awarded, packing)
    return PoolRunner(ev, n, as_of, window, awarded, packing)


# --- the worker process ------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, even while busy evaluating (EOF on stdin
    covers the idle case and other systems)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    ppid = os.getppid()
    _die_with_parent()
    if os.getppid() != ppid:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and closes us
    # The protocol owns the original stdout; stray prints go to stderr.
    out = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    inp = Connection(os.dup(0), writable=False)
    try:
        init = inp.recv()
    except EOFError:
        return
    try:
        from engine import Evaluator
        from store.rulesets import load_files

        if init.get("check"):       # an import's profiles (store.applications.check_profile)
            from store.applications import check_profile

            registry = load_files(init["sources"]).fields
            _serve(inp, out, lambda msg: ("ok", [check_profile(d, registry, *msg[2:]) for d in msg[1]]))
            return
        ev = Evaluator(load_files(init["sources"]), backend=init["backend"])
        if ev.ruleset_version != init["ruleset_version"]:
            raise RuntimeError("规则文件在评估期间发生了变化（规则版本不一致），请重新执行评估")

        def evaluate(msg) -> tuple:
            rows, t = evaluate_batch(ev, msg[1], init["as_of"], init["window"], init["awarded"], init["packing"])
            return "ok", rows, t, peak_rss_mb()

        _serve(inp, out, evaluate)
    except BaseException:  # noqa: BLE001 — reported to the parent, which raises it
        try:
            out.send(("error", traceback.format_exc()))
        except OSError:
            pass


def _serve(inp: Connection, out: Connection, handle) -> None:
    """Answer each message with `handle(message)` until the parent closes the pipe."""
    tune_for_bulk()     # this process only does bulk work (store.collector)
    out.send(("ready",))
    while True:
        try:
            msg = inp.recv()
        except EOFError:
            return
        if msg is None:
            return
        out.send(handle(msg))


if __name__ == "__main__":
    main()
