"""Judging: a whole window (a background job, resumable) or one application at once (after its
补正). Results are stored compactly (store.decisions) against the archived ruleset.

A window evaluation writes, per batch and in one transaction, each enterprise's evaluation
(with an *input key*: a hash of everything the result depends on — ruleset version, window
parameters, ledger entries of other windows, profile snapshot, application) and its grant
decisions. A re-run skips enterprises whose key still matches, so an interrupted run is
finished, not redone, and a second run over unchanged inputs changes nothing. An enterprise
that cannot be evaluated gets its failure recorded and the window carries on.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import Evaluator
from store import audit, profiles, rulesets
from store import windows as W
from store.applications import chunks, move
from store.bulk import among, insert_rows, refresh_statistics
from store.collector import bulk_work
from store.db import Database
from store.errors import Conflict, RowProblem, ValidationFailed
from store.evalworker import evaluate_batch, make_runner, resolve_workers
from store.models import (Application, Award, Enterprise, Evaluation, ProfileSnapshot,
                          Window, utcnow)

EVAL_BATCH = 500
_EVAL_COLS = ("window_id", "uscc", "application_id", "ruleset_seq", "profile_hash", "input_key",
              "results", "grants", "error")


@dataclass
class EvaluationResult:
    window_id: str
    evaluated: int          # enterprises (re)evaluated by this run
    skipped: int            # enterprises whose evaluation was already current
    failed: int             # enterprises that could not be evaluated (recorded, not fatal)
    ruleset_version: str
    # `evaluated` split: the window's applications, and known enterprises that did not apply
    # (judged for 免申即享, e.g. applicants of earlier windows)
    applications: int = 0
    known_enterprises: int = 0


def awarded_elsewhere(s: Session, window_id: str) -> set[str]:
    return {f"{b}|{sub}" for b, sub in s.connection().execute(select(Award.benefit_id, Award.subject_id)
                                                               .where(Award.window_id != window_id))}


def base_key(version: str, w: Window, awarded: set[str]) -> str:
    h = hashlib.sha256(version.encode())
    h.update(json.dumps([w.as_of.isoformat(), w.opens_on.isoformat(), w.closes_on.isoformat(),
                         w.coverage_from and w.coverage_from.isoformat(),
                         w.coverage_to and w.coverage_to.isoformat(), w.amounts or {}, w.label],
                        sort_keys=True, ensure_ascii=False).encode())
    for a in sorted(awarded):
        h.update(a.encode() + b"\n")
    return h.hexdigest()


def input_key(base: str, snapshot: str, application_id: Optional[str]) -> str:
    """What an evaluation was decided from, to tell whether it must be decided again: 8 bytes.
    It is only ever compared with the key of the same enterprise's next inputs, so a change
    goes unnoticed with a chance of 2^-64, not the square root of that."""
    return hashlib.sha256(f"{base}|{snapshot}|{application_id or ''}".encode()).hexdigest()[:16]


def _subjects(s: Session, window_id: str, proactive: bool) -> list[tuple[str, str, Optional[str]]]:
    """(uscc, snapshot hash, application id) for applicants and (proactive) every other
    known enterprise, in a stable order."""
    # Bulk reads go past the ORM (its row processing cost 3–4 µs a row, a second a window).
    conn = s.connection()
    out = {u: (u, h, a) for u, h, a in conn.execute(
        select(Application.uscc, Application.snapshot_hash, Application.id)
        .where(Application.window_id == window_id))}
    if proactive:
        for u, h in conn.execute(select(Enterprise.uscc, Enterprise.latest_snapshot)):
            if u not in out and h:
                out[u] = (u, h, None)
    return [out[u] for u in sorted(out)]


def write_outcomes(s: Session, w: Window, version: str, seq: int, batch: list[tuple], outcomes: list[tuple],
                   now, actor: str | None = None, fresh: frozenset[str] = frozenset()) -> int:
    """Replace the evaluations (with their grant decisions) of `batch` ((uscc, snapshot, application
    id, input key) each) with `outcomes` from the runner, decided by the ruleset `version`
    (numbered `seq` in this database: rulesets.archive); returns the number that failed.
    An application whose state this changes (received → judged, … → failed) gets its
    history entry in the same transaction. `fresh`: enterprises that had no evaluation in
    the window when the run began; nothing of theirs is deleted first (a first run of 100,000
    on PostgreSQL spent 5 s deleting nothing) unless one was judged meanwhile (a 补正): its
    evaluation then stops the insert, and the batch is written again with every delete."""
    usccs = [u for u, _, _, _ in batch]
    evals, failed, judged = [], 0, []
    for (u, h, a, k), out in zip(batch, outcomes):
        if out[0] == "ok":
            _, blob, grants = out
            evals.append((w.id, u, a, seq, h, k, blob, grants, None))
            if a:
                judged.append(a)
        else:
            failed += 1
            evals.append((w.id, u, a, seq, h, k, None, None, out[1][:500]))
    stale = [u for u in usccs if u not in fresh]
    if len(stale) == len(usccs):
        _replace(s.connection(), w.id, usccs, evals)
    else:
        try:
            with s.begin_nested():
                _replace(s.connection(), w.id, stale, evals)
        except IntegrityError:
            _replace(s.connection(), w.id, usccs, evals)
    failed_apps = [a for (u, h, a, k), out in zip(batch, outcomes) if a and out[0] != "ok"]
    detail = {"ruleset_version": version}
    for ids, state in ((judged, "judged"), (failed_apps, "failed")):
        move(s, w.id, ids, "judge", state, now, actor, only_from=("received", "failed", "judged"), details=detail)
    return failed


def _replace(conn, window_id: str, usccs: list[str], evals: list[tuple]) -> None:
    if usccs:
        conn.execute(delete(Evaluation.__table__).where(Evaluation.window_id == window_id,
                                                        among(conn, Evaluation.uscc, usccs)))
    insert_rows(conn, Evaluation.__table__, _EVAL_COLS, evals)


@bulk_work()
def evaluate_window(db: Database, window_id: str, *, progress: Callable[[int, int], None] | None = None,
                    check: Callable[[Session], None] | None = None, evaluator: Evaluator | None = None,
                    batch_size: int = EVAL_BATCH, actor: str | None = None, workers: int | None = None,
                    proactive: bool = True, stats: dict | None = None) -> EvaluationResult:
    """Evaluate every applicant and (proactive) every other known enterprise of the window.

    Committed per batch, in order; safe to interrupt and re-run. `check(session)` runs in
    every batch's transaction (the job queue's fencing and cancellation); `progress(done,
    total)` after each batch. `workers`: evaluation processes (default $YAGU_EVAL_WORKERS,
    else the CPU count; small windows are evaluated here). `stats`, if given, is filled with
    where the time went."""
    if batch_size < 1:
        raise ValidationFailed([RowProblem("每批判定的企业数必须是正整数", path="batch_size")])
    resolve_workers(workers)            # a bad setting is reported before anything starts
    ev = evaluator or rulesets.current()
    version = ev.ruleset_version
    with db.session() as s:
        w = W.get(s, window_id)
        if w.state == "closed":
            raise Conflict(f"申报批次 {window_id} 已关闭，不能再判定")
        seq, packing = rulesets.archive(s, ev)
    with db.read_session() as s:
        w = W.get(s, window_id)
        awarded = awarded_elsewhere(s, window_id)
        subjects = _subjects(s, window_id, proactive)
        keys = dict(s.connection().execute(select(Evaluation.uscc, Evaluation.input_key)
                                           .where(Evaluation.window_id == window_id)).all())
    base = base_key(version, w, awarded)
    todo = [(u, h, a, k) for u, h, a in subjects if keys.get(u) != (k := input_key(base, h, a))]
    fresh = frozenset(u for u, _, _, _ in todo if u not in keys)
    total = len(todo)
    if progress:
        progress(0, total)
    runner = make_runner(ev, workers, total, w.as_of, W.context(w), awarded, packing)
    clock = {"read": 0.0, "write": 0.0}

    def batches() -> Iterable[tuple[list, list]]:
        # Profiles are unpacked to JSON text here and parsed where they are evaluated.
        for batch in chunks(todo, batch_size):
            t0 = time.perf_counter()
            with db.read_session() as s:
                packed = dict(s.connection().execute(
                    select(ProfileSnapshot.hash, ProfileSnapshot.packed)
                    .where(among(s, ProfileSnapshot.hash, {h for _, h, _, _ in batch}))).all())
                texts = profiles.texts(s, [packed[h] for _, h, _, _ in batch])
            clock["read"] += time.perf_counter() - t0
            yield batch, texts

    done = failed = 0
    t_start = time.perf_counter()
    finished = False
    try:
        for batch, outcomes in runner.run(batches()):
            t0 = time.perf_counter()
            with db.session() as s:
                if check:
                    check(s)
                failed += write_outcomes(s, w, version, seq, batch, outcomes, utcnow(), actor, fresh)
            clock["write"] += time.perf_counter() - t0
            done += len(batch)
            if progress:
                progress(done, total)
        finished = True
    finally:
        runner.close(abort=not finished)   # interrupted or failed: do not finish queued batches
    if stats is not None:
        t = runner.times
        stats.update(workers=runner.workers, worker_peak_rss_mb=runner.worker_peak_rss_mb,
                     parse_seconds=t.parse, engine_seconds=t.engine, encode_seconds=t.encode)
    with db.session() as s:
        if check:
            check(s)
        w2 = W.get(s, window_id, lock=True)
        w2.evaluated_at, w2.ruleset_version = utcnow(), version
        audit.record(s, actor, "window.evaluate", window_id,
                     {"evaluated": total, "skipped": len(subjects) - total, "failed": failed,
                      "ruleset_version": version})
    refresh_statistics(db, total, Evaluation.__table__, Application.__table__)
    if stats is not None:
        loop = time.perf_counter() - t_start
        stats.update(evaluated=total, failed=failed, read_seconds=clock["read"],
                     write_seconds=clock["write"], loop_seconds=loop)
    applications = sum(1 for _, _, a, _ in todo if a)
    return EvaluationResult(window_id, total, len(subjects) - total, failed, version,
                            applications, total - applications)


def judge_now(s: Session, app: Application, w: Window, ev: Evaluator | None = None) -> tuple:
    """Evaluate one application at once, inside the caller's transaction (after a 补正):
    returns its outcome ("ok", record, packed grants) or ("error", reason)."""
    ev = ev or rulesets.current()
    seq, packing = rulesets.archive(s, ev)
    awarded = awarded_elsewhere(s, w.id)
    text = profiles.stored_text(s, app.snapshot_hash)
    (outcome,), _ = evaluate_batch(ev, [text], w.as_of, W.context(w), awarded, packing)
    key = input_key(base_key(ev.ruleset_version, w, awarded), app.snapshot_hash, app.id)
    write_outcomes(s, w, ev.ruleset_version, seq, [(app.uscc, app.snapshot_hash, app.id, key)], [outcome], utcnow())
    return outcome
