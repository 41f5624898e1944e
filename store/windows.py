"""Semiannual application windows: the domain functions the CLI and the HTTP layer call.

Every function takes the `Database` first. Errors are `NotFound`, `Conflict` and
`ValidationFailed` (store.errors) with Chinese messages.

Evaluation is resumable: each batch writes its decisions together with an *evaluation mark*
per enterprise (a hash of everything the result depends on: ruleset version, window
parameters, ledger entries of other windows, profile snapshot, application). A re-run
skips the enterprises whose mark still matches, so an interrupted run is finished, not
redone, and a second run over unchanged inputs changes nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store import audit
from store.bulk import RawJSON, insert_dicts, insert_rows
from store.db import Database
from store.errors import Conflict, NotFound, RowProblem, ValidationFailed
from store.models import (
    Application,
    Award,
    Decision,
    Enterprise,
    EvaluationMark,
    Notice,
    ProfileSnapshot,
    Window,
    utcnow,
)

CHANNELS = ("web", "import", "api", "proactive")
STATUSES = ("eligible", "ineligible", "needs_info", "not_in_force")
STATUS_NAMES = {"eligible": "符合", "ineligible": "不符合", "needs_info": "需补充信息",
                "not_in_force": "政策未生效"}
STATE_NAMES = {"open": "受理中", "evaluated": "已评估", "closed": "已关闭"}
WINDOW_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
CHUNK = 2000  # rows per IN (...) lookup / executemany batch
EVAL_BATCH = 500
LEASE_TTL = timedelta(minutes=5)

# --- engine ---------------------------------------------------------------------

_evaluator = None
_evaluator_lock = threading.Lock()


def get_evaluator():
    """The shared Evaluator (rules compiled once per process)."""
    global _evaluator
    if _evaluator is None:
        with _evaluator_lock:
            if _evaluator is None:
                from engine import Evaluator, load_rulebook

                _evaluator = Evaluator(load_rulebook())
    return _evaluator


def _parse_profile(data: dict):
    from engine.profile import parse_profile

    return parse_profile(data, get_evaluator().registry)


def _chunks(seq: list, n: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# --- windows --------------------------------------------------------------------


def window_to_dict(w: Window, counts: dict | None = None) -> dict:
    d = {
        "id": w.id,
        "label": w.label,
        "opens_on": w.opens_on.isoformat(),
        "closes_on": w.closes_on.isoformat(),
        "as_of": w.as_of.isoformat(),
        "coverage_from": w.coverage_from.isoformat() if w.coverage_from else None,
        "coverage_to": w.coverage_to.isoformat() if w.coverage_to else None,
        "amounts": w.amounts or {},
        "state": w.state,
        "ruleset_version": w.ruleset_version,
        "created_at": w.created_at.isoformat() if w.created_at else None,
        "evaluated_at": w.evaluated_at.isoformat() if w.evaluated_at else None,
        "closed_at": w.closed_at.isoformat() if w.closed_at else None,
    }
    if counts is not None:
        d.update(counts)
    return d


def _as_date(v, name: str, problems: list) -> Optional[date]:
    if v is None or isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        problems.append(RowProblem(f"不是有效的日期（YYYY-MM-DD）：{v}", path=name))
        return None


def open_window(
    db: Database,
    window_id: str,
    *,
    opens_on=None,
    closes_on=None,
    as_of=None,
    coverage_from=None,
    coverage_to=None,
    amounts: dict | None = None,
    label: str | None = None,
    actor: str | None = None,
) -> dict:
    """Create a window. Dates default from rules/windows.yaml for ids like 2026-H1;
    as_of defaults to closes_on. Duplicate id → Conflict."""
    problems: list[RowProblem] = []
    if not isinstance(window_id, str) or not WINDOW_ID_RE.match(window_id):
        problems.append(RowProblem("窗口编号只能包含字母、数字、点、下划线和连字符，最长32位（例如 2026-H1）", path="id"))
    opens_on = _as_date(opens_on, "opens_on", problems)
    closes_on = _as_date(closes_on, "closes_on", problems)
    as_of = _as_date(as_of, "as_of", problems)
    coverage_from = _as_date(coverage_from, "coverage_from", problems)
    coverage_to = _as_date(coverage_to, "coverage_to", problems)
    book = get_evaluator().book
    defaults = book.calendar.by_id(window_id) if isinstance(window_id, str) else None
    if defaults:
        opens_on = opens_on or defaults.opens_on
        closes_on = closes_on or defaults.closes_on
        label = label or defaults.label
        if coverage_from is None and coverage_to is None:
            coverage_from, coverage_to = defaults.coverage_from, defaults.coverage_to
    if opens_on is None and not any(p.path == "opens_on" for p in problems):
        problems.append(RowProblem("缺少受理开始日期（该窗口编号没有默认日历）", path="opens_on"))
    if closes_on is None and not any(p.path == "closes_on" for p in problems):
        problems.append(RowProblem("缺少受理截止日期（该窗口编号没有默认日历）", path="closes_on"))
    for name, v in (("coverage_from", coverage_from), ("coverage_to", coverage_to)):
        if v is None and not any(p.path == name for p in problems):
            problems.append(RowProblem("缺少覆盖期日期（证书取得日期的起止；该窗口编号没有默认日历）", path=name))
    if opens_on and closes_on and closes_on < opens_on:
        problems.append(RowProblem("受理截止日期不能早于开始日期", path="closes_on"))
    if coverage_from and coverage_to and coverage_to < coverage_from:
        problems.append(RowProblem("覆盖期结束日期不能早于开始日期", path="coverage_to"))
    if amounts is not None:
        problems += [RowProblem(msg, path=path) for path, msg in book.amount_override_problems(amounts)]
    if problems:
        raise ValidationFailed(problems)
    as_of = as_of or closes_on
    w = Window(
        id=window_id, label=label or f"{window_id} 集中申报", opens_on=opens_on,
        closes_on=closes_on, as_of=as_of, coverage_from=coverage_from,
        coverage_to=coverage_to, amounts=amounts or {}, state="open", created_at=utcnow(),
    )
    from sqlalchemy.exc import IntegrityError

    try:
        with db.session() as s:
            if s.get(Window, window_id) is not None:
                raise Conflict(f"申报窗口 {window_id} 已存在")
            s.add(w)
            s.flush()
            audit.record(s, actor, "window.open", window_id, window_to_dict(w))
    except IntegrityError:
        raise Conflict(f"申报窗口 {window_id} 已存在") from None
    return window_to_dict(w)


def _get_window(s: Session, window_id: str, *, lock: bool = False) -> Window:
    q = select(Window).where(Window.id == window_id)
    if lock:
        q = q.with_for_update()
    w = s.execute(q).scalar_one_or_none()
    if w is None:
        raise NotFound(f"申报窗口 {window_id} 不存在")
    return w


def _window_counts(s: Session, window_id: str) -> dict:
    apps = s.scalar(select(func.count()).where(Application.window_id == window_id))
    rows = s.execute(
        select(Decision.status, func.count())
        .where(Decision.window_id == window_id, Decision.application_id.is_not(None))
        .group_by(Decision.status)
    ).all()
    awards = s.execute(
        select(func.count(), func.coalesce(func.sum(Award.amount_cny), 0)).where(
            Award.window_id == window_id
        )
    ).one()
    return {
        "applications": apps,
        "decisions": {st: n for st, n in rows},
        "awards": awards[0],
        "awards_total_cny": float(awards[1] or 0),
    }


def list_windows(db: Database) -> list[dict]:
    with db.read_session() as s:
        ws = s.execute(select(Window).order_by(Window.opens_on, Window.id)).scalars().all()
        return [window_to_dict(w, _window_counts(s, w.id)) for w in ws]


def get_window(db: Database, window_id: str) -> dict:
    with db.read_session() as s:
        w = _get_window(s, window_id)
        return window_to_dict(w, _window_counts(s, window_id))


def window_context(w: Window):
    from engine import WindowContext

    return WindowContext(
        id=w.id, label=w.label, opens_on=w.opens_on, closes_on=w.closes_on, as_of=w.as_of,
        coverage_from=w.coverage_from, coverage_to=w.coverage_to, amounts=dict(w.amounts or {}),
    )


# --- intake ---------------------------------------------------------------------


def _code_hash(application_id: str, code: str) -> str:
    return hashlib.sha256(f"{application_id}:{code}".encode()).hexdigest()


_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_access_code(rand: bytes | None = None) -> str:
    # 12 characters from an unambiguous alphabet (32 symbols, 60 bits): typed from a paper
    # notice. 256 is a multiple of 32, so `b & 31` is uniform.
    return "".join([_CODE_ALPHABET[b & 31] for b in (rand[:12] if rand else secrets.token_bytes(12))])


def new_application_id(rand: bytes | None = None) -> str:
    return "A" + (rand[:8] if rand else secrets.token_bytes(8)).hex().upper()


@dataclass
class Intake:
    """One validated record to store: a Profile (or, from `compact`, only its stored JSON
    text and hash: a bulk import keeps 100,000 of these), and (for applications) claims."""

    profile: Any
    claims: Optional[list[str]] = None
    channel: str = "import"
    uscc: str = ""
    name: str = ""
    data: Optional[RawJSON] = None  # the profile's JSON as stored
    hash: str = ""  # == Profile.profile_hash()

    def __post_init__(self):
        if self.profile is not None:
            self.uscc, self.name = self.profile.uscc, self.profile.name

    def stored(self) -> tuple[RawJSON, str]:
        if self.data is None:
            from engine.profile import canonical_json

            pj = self.profile.model_dump(mode="json")
            self.data = RawJSON(orjson.dumps(pj).decode())
            self.hash = hashlib.sha256(canonical_json(pj).encode()).hexdigest()
        return self.data, self.hash

    @classmethod
    def compact(cls, profile, claims: Optional[list[str]] = None, channel: str = "import") -> "Intake":
        rec = cls(profile, claims, channel)
        rec.stored()
        rec.profile = None
        return rec


@dataclass
class IntakeResult:
    uscc: str
    name: str
    application_id: Optional[str] = None
    access_code: Optional[str] = None  # only for newly created applications: shown once
    created: bool = False
    changed: bool = False


def _store_enterprises(s: Session, records: list[Intake], source: str, now) -> dict[str, str]:
    """Upsert enterprises and snapshots; return uscc → snapshot hash."""
    by_uscc: dict[str, tuple[Intake, RawJSON, str]] = {}
    for r in records:
        by_uscc[r.uscc] = (r, *r.stored())
    usccs = list(by_uscc)
    existing: dict[str, Optional[str]] = {}
    for chunk in _chunks(usccs):
        for u, latest in s.execute(
            select(Enterprise.uscc, Enterprise.latest_snapshot).where(Enterprise.uscc.in_(chunk))
        ):
            existing[u] = latest
    hashes = [h for _, _, h in by_uscc.values()]
    known_snaps: set[str] = set()
    for chunk in _chunks(hashes):
        known_snaps.update(s.scalars(select(ProfileSnapshot.hash).where(ProfileSnapshot.hash.in_(chunk))))
    new_ents = [
        {"uscc": u, "name": r.name, "latest_snapshot": h, "source": source,
         "created_at": now, "updated_at": now}
        for u, (r, _, h) in by_uscc.items() if u not in existing
    ]
    insert_dicts(s.connection(), Enterprise.__table__, new_ents)
    changed = [u for u, (_, _, h) in by_uscc.items() if u in existing and existing[u] != h]
    versions: dict[str, int] = {}
    if changed:
        for chunk in _chunks(changed):
            for u, v in s.execute(
                select(ProfileSnapshot.uscc, func.max(ProfileSnapshot.version))
                .where(ProfileSnapshot.uscc.in_(chunk)).group_by(ProfileSnapshot.uscc)
            ):
                versions[u] = v or 0
        rows = [{"u": u, "n": by_uscc[u][0].name, "h": by_uscc[u][2], "t": now} for u in changed]
        from sqlalchemy import bindparam

        stmt = (
            update(Enterprise.__table__)
            .where(Enterprise.__table__.c.uscc == bindparam("u"))
            .values(name=bindparam("n"), latest_snapshot=bindparam("h"), updated_at=bindparam("t"))
        )
        for chunk in _chunks(rows):
            s.execute(stmt, chunk)
    new_snaps = [
        {"hash": h, "uscc": u, "version": versions.get(u, 0) + 1, "profile": pj, "created_at": now}
        for u, (_, pj, h) in by_uscc.items() if h not in known_snaps
    ]
    insert_dicts(s.connection(), ProfileSnapshot.__table__, new_snaps)
    return {u: h for u, (_, _, h) in by_uscc.items()}


def _store_applications(
    s: Session, window: Window, records: list[Intake], snaps: dict[str, str], now,
    *, new_codes_for_existing: bool = False,
) -> list[IntakeResult]:
    usccs = [r.uscc for r in records]
    existing: dict[str, tuple] = {}
    for chunk in _chunks(usccs):
        for row in s.execute(
            select(Application.uscc, Application.id, Application.snapshot_hash, Application.claims)
            .where(Application.window_id == window.id, Application.uscc.in_(chunk))
        ):
            existing[row.uscc] = (row.id, row.snapshot_hash, row.claims)
    results, inserts, updates = [], [], []
    rand = memoryview(b"")
    for r in records:
        u = r.uscc
        h = snaps[u]
        if u in existing:
            app_id, old_h, old_claims = existing[u]
            res = IntakeResult(u, r.name, app_id)
            if old_h != h or old_claims != r.claims or new_codes_for_existing:
                res.changed = True
                upd = {"i": app_id, "h": h, "c": r.claims}
                if new_codes_for_existing:
                    res.access_code = new_access_code()
                    upd["a"] = _code_hash(app_id, res.access_code)
                updates.append(upd)
        else:
            if len(rand) < 20:  # one urandom call per thousand applications, not two each
                rand = memoryview(secrets.token_bytes(20 * 1000))
            app_id = new_application_id(bytes(rand[:8]))
            code = new_access_code(bytes(rand[8:20]))
            rand = rand[20:]
            res = IntakeResult(u, r.name, app_id, code, created=True, changed=True)
            inserts.append({
                "id": app_id, "window_id": window.id, "uscc": u, "snapshot_hash": h,
                "claims": r.claims, "channel": r.channel, "submitted_at": now,
                "access_code_hash": _code_hash(app_id, code),
            })
        results.append(res)
    insert_dicts(s.connection(), Application.__table__, inserts)
    if updates:
        from sqlalchemy import bindparam

        t = Application.__table__
        with_code = [u for u in updates if "a" in u]
        plain = [u for u in updates if "a" not in u]
        if plain:
            s.execute(update(t).where(t.c.id == bindparam("i"))
                      .values(snapshot_hash=bindparam("h"), claims=bindparam("c")), plain)
        if with_code:
            s.execute(update(t).where(t.c.id == bindparam("i"))
                      .values(snapshot_hash=bindparam("h"), claims=bindparam("c"),
                              access_code_hash=bindparam("a")), with_code)
    if any(r.changed for r in results) and window.state == "evaluated":
        # New or changed applications make the evaluation stale: close needs a re-run.
        s.execute(update(Window).where(Window.id == window.id).values(state="open"))
    return results


def _check_claims(profile, claims, prefix: str = "claims") -> list[RowProblem]:
    if claims is None:
        return []
    if not isinstance(claims, list):
        return [RowProblem("申报的证书必须是注册证编号列表", path=prefix)]
    have = {r.certificate_no for r in (profile.device_registrations or [])}
    problems = []
    seen = set()
    for i, c in enumerate(claims):
        if not isinstance(c, str) or not c.strip():
            problems.append(RowProblem("注册证编号必须是非空字符串", path=f"{prefix}[{i}]"))
        elif c.strip() not in have:
            problems.append(RowProblem(f"企业画像中没有注册证 {c}", path=f"{prefix}[{i}]"))
        elif c.strip() in seen:
            problems.append(RowProblem(f"注册证 {c} 重复申报", path=f"{prefix}[{i}]"))
        else:
            seen.add(c.strip())
    return problems


def _writable_window(s: Session, window_id: str) -> Window:
    w = _get_window(s, window_id, lock=True)
    if w.state == "closed":
        raise Conflict(f"申报窗口 {window_id} 已关闭，不再受理申报")
    return w


def submit_application(
    db: Database, window_id: str, profile_dict: dict, claims: Optional[list[str]] = None,
    channel: str = "api", *, actor: str | None = None,
) -> tuple[str, str]:
    """Store one application; returns (application_id, access_code). The code is shown
    once: only its hash is kept. Submitting again for the same enterprise in the same
    window updates that application and issues a new code (the old one stops working)."""
    from engine.profile import ProfileError

    if channel not in CHANNELS:
        raise ValidationFailed([RowProblem(f"申报渠道必须是 {'、'.join(CHANNELS)} 之一", path="channel")])
    try:
        profile = _parse_profile(profile_dict)
    except ProfileError as e:
        problems = [RowProblem(p.message, path=f"profile.{p.path}" if p.path else "profile") for p in e.problems]
        if isinstance(profile_dict, dict):
            pass
        raise ValidationFailed(problems) from None
    problems = _check_claims(profile, claims)
    if problems:
        raise ValidationFailed(problems)
    claims = [c.strip() for c in claims] if claims is not None else None
    now = utcnow()
    with db.session() as s:
        w = _writable_window(s, window_id)
        rec = Intake(profile, claims, channel)
        snaps = _store_enterprises(s, [rec], "application", now)
        (res,) = _store_applications(s, w, [rec], snaps, now, new_codes_for_existing=True)
        audit.record(s, actor, "application.submit", res.application_id,
                     {"window_id": window_id, "uscc": res.uscc, "channel": channel,
                      "claims": claims, "updated": not res.created})
    return res.application_id, res.access_code


def ingest(
    db: Database, window_id: Optional[str], records: list[Intake], *, actor: str | None = None,
    action: str = "applications.import", details: dict | None = None,
) -> list[IntakeResult]:
    """Bulk store validated records in ONE transaction: applications to `window_id`, or a
    registry of enterprises (no application) when window_id is None."""
    now = utcnow()
    with db.session() as s:
        w = _writable_window(s, window_id) if window_id else None
        snaps = _store_enterprises(s, records, "application" if w else "registry", now)
        if w is None:
            results = [IntakeResult(r.uscc, r.name) for r in records]
        else:
            results = _store_applications(s, w, records, snaps, now)
        audit.record(s, actor, action, window_id or "registry",
                     {**(details or {}), "records": len(records),
                      "created": sum(r.created for r in results)})
    return results


# --- evaluation -------------------------------------------------------------------


@dataclass
class EvaluationResult:
    window_id: str
    counts: dict  # status → number of applicant decisions
    proactive_counts: dict  # status → number of decisions of non-applicants
    evaluated: int  # enterprises (re)evaluated by this run
    skipped: int  # enterprises whose decisions were already current
    ruleset_version: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _owner_alive(owner: str) -> bool:
    host, pid, _ = (owner.split(":") + ["", "", ""])[:3]
    if host != socket.gethostname():
        return True  # cannot tell: rely on the lease expiry
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _aware(dt: Optional[datetime]) -> Optional[datetime]:
    from datetime import timezone

    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)  # SQLite returns naive UTC
    return dt


def _acquire_lease(db: Database, window_id: str, owner: str) -> Window:
    with db.session() as s:
        w = _get_window(s, window_id, lock=True)
        if w.state == "closed":
            raise Conflict(f"申报窗口 {window_id} 已关闭，不能再评估")
        now = utcnow()
        holder, until = w.lease_owner, _aware(w.lease_until)
        if holder and until and until > now and _owner_alive(holder):
            host, pid = holder.split(":")[:2]
            raise Conflict(
                f"申报窗口 {window_id} 正由另一个评估进程处理（主机 {host}，进程 {pid}），"
                "为避免交错写入，本次评估未执行；请等待其完成后再试"
            )
        w.lease_owner, w.lease_until = owner, now + LEASE_TTL
    return w


def _renew_lease(s: Session, window_id: str, owner: str) -> None:
    n = s.execute(
        update(Window).where(Window.id == window_id, Window.lease_owner == owner)
        .values(lease_until=utcnow() + LEASE_TTL)
    ).rowcount
    if n != 1:
        raise Conflict(f"申报窗口 {window_id} 的评估租约已被其他进程接管，本次评估中止")


def _release_lease(db: Database, window_id: str, owner: str) -> None:
    with db.session() as s:
        s.execute(update(Window).where(Window.id == window_id, Window.lease_owner == owner)
                  .values(lease_owner=None, lease_until=None))


def _awarded_elsewhere(s: Session, window_id: str) -> set[str]:
    return {
        f"{b}|{sub}"
        for b, sub in s.execute(
            select(Award.benefit_id, Award.subject_id).where(Award.window_id != window_id)
        )
    }


def _base_key(ruleset_version: str, w: Window, awarded: set[str]) -> str:
    h = hashlib.sha256()
    h.update(ruleset_version.encode())
    h.update(json.dumps(
        [w.as_of.isoformat(), w.opens_on.isoformat(), w.closes_on.isoformat(),
         w.coverage_from and w.coverage_from.isoformat(),
         w.coverage_to and w.coverage_to.isoformat(), w.amounts or {}, w.label],
        sort_keys=True, ensure_ascii=False).encode())
    for a in sorted(awarded):
        h.update(a.encode() + b"\n")
    return h.hexdigest()


def _input_key(base: str, snapshot: str, application_id: Optional[str]) -> str:
    return hashlib.sha256(f"{base}|{snapshot}|{application_id or ''}".encode()).hexdigest()


def _subjects(s: Session, window_id: str) -> list[tuple[str, str, Optional[str]]]:
    """(uscc, snapshot hash, application id) for applicants and every other known enterprise."""
    out = {
        u: (u, h, a)
        for u, h, a in s.execute(
            select(Application.uscc, Application.snapshot_hash, Application.id)
            .where(Application.window_id == window_id)
        )
    }
    for u, h in s.execute(select(Enterprise.uscc, Enterprise.latest_snapshot)):
        if u not in out and h:
            out[u] = (u, h, None)
    return [out[u] for u in sorted(out)]


_DECISION_COLS = ("window_id", "uscc", "application_id", "benefit_id", "benefit_kind",
                  "subject_type", "subject_id", "status", "amount_cny", "amount_provisional",
                  "trace", "ruleset_version", "profile_hash", "evaluated_at")


def _rows_of(window_id: str, uscc: str, app_id, phash: str, version: str, rows: list[tuple],
             now) -> list[tuple]:
    """Decision rows (in _DECISION_COLS order) from a runner's compact per-enterprise rows."""
    return [(window_id, uscc, app_id, bid, kind, stype, sid, status,
             None if amount is None else Decimal(str(amount)), prov, trace, version, phash, now)
            for bid, kind, stype, sid, status, amount, prov, trace in rows]


def evaluate_window(
    db: Database, window_id: str, *, progress: Callable[[int, int], None] | None = None,
    evaluator=None, batch_size: int = EVAL_BATCH, actor: str | None = None,
    workers: int | None = None, stats: dict | None = None,
) -> EvaluationResult:
    """Evaluate every applicant and every other known enterprise of the window.

    Committed per batch, in order; safe to interrupt and re-run. A concurrent evaluation of
    the same window is refused (Conflict) rather than interleaved. `progress(done, total)`
    is called after each batch.

    `workers`: evaluation processes (default $YAGU_EVAL_WORKERS, else the CPU count; small
    windows are evaluated in this process unless a number is given). `stats`, if given, is
    filled with where the time went: parse/engine/encode seconds (summed over workers),
    read/write/wait seconds of this process, workers used and their peak RSS."""
    from sqlalchemy import Text, cast

    from store.evalworker import make_runner, resolve_workers

    if batch_size < 1:
        raise ValidationFailed([RowProblem("每批评估的企业数必须是正整数", path="batch_size")])
    resolve_workers(workers)  # a bad setting is reported before anything is locked
    owner = _owner()
    w = _acquire_lease(db, window_id, owner)
    runner = None
    try:
        ev = evaluator or get_evaluator()
        version = ev.ruleset_version
        ctx = window_context(w)
        with db.read_session() as s:
            awarded = _awarded_elsewhere(s, window_id)
            subjects = _subjects(s, window_id)
            marks = dict(s.execute(
                select(EvaluationMark.uscc, EvaluationMark.input_key)
                .where(EvaluationMark.window_id == window_id)
            ).all())
        base = _base_key(version, w, awarded)
        todo = [(u, h, a, k) for u, h, a in subjects
                if marks.get(u) != (k := _input_key(base, h, a))]
        total = len(todo)
        if progress:
            progress(0, total)
        runner = make_runner(ev, workers, total, w.as_of, ctx, awarded)
        profile_text = cast(ProfileSnapshot.profile, Text)

        clock = {"read": 0.0, "write": 0.0}

        def batches():
            # Profiles are read as JSON text and parsed where they are evaluated.
            for batch in _chunks(todo, batch_size):
                t0 = time.perf_counter()
                hashes = list({h for _, h, _, _ in batch})
                with db.read_session() as s:
                    texts = dict(s.execute(
                        select(ProfileSnapshot.hash, profile_text).where(ProfileSnapshot.hash.in_(hashes))
                    ).all())
                clock["read"] += time.perf_counter() - t0
                yield batch, [texts[h] for _, h, _, _ in batch]

        dec_t, mark_t = Decision.__table__, EvaluationMark.__table__
        done = 0
        t_start = time.perf_counter()
        for batch, results in runner.run(batches()):
            t0 = time.perf_counter()
            now = utcnow()
            rows, mark_rows, stale = [], [], []
            for (u, h, a, k), res in zip(batch, results):
                rows.extend(_rows_of(window_id, u, a, h, version, res, now))
                mark_rows.append((window_id, u, k))
                if u in marks:
                    stale.append(u)  # decisions exist only where a mark was written with them
            with db.session() as s:
                _renew_lease(s, window_id, owner)
                conn = s.connection()
                if stale:
                    conn.execute(delete(dec_t).where(dec_t.c.window_id == window_id,
                                                     dec_t.c.uscc.in_(stale)))
                    conn.execute(delete(mark_t).where(mark_t.c.window_id == window_id,
                                                      mark_t.c.uscc.in_(stale)))
                insert_rows(conn, dec_t, _DECISION_COLS, rows)
                insert_rows(conn, mark_t, ("window_id", "uscc", "input_key"), mark_rows)
            clock["write"] += time.perf_counter() - t0
            done += len(batch)
            if progress:
                progress(done, total)
        if stats is not None:
            t = runner.times
            loop = time.perf_counter() - t_start
            stats.update(workers=runner.workers, evaluated=total,
                         worker_peak_rss_mb=runner.worker_peak_rss_mb,
                         parse_seconds=t.parse, engine_seconds=t.engine, encode_seconds=t.encode,
                         read_seconds=clock["read"], write_seconds=clock["write"],
                         wait_seconds=loop - clock["read"] - clock["write"]
                         - (t.parse + t.engine + t.encode if runner.workers == 1 else 0))
        runner.close()
        runner = None
        with db.session() as s:
            _renew_lease(s, window_id, owner)
            w2 = _get_window(s, window_id, lock=True)
            # Enterprises no longer subjects (none today: nothing deletes them) keep no decisions.
            if w2.state == "closed":
                raise Conflict(f"申报窗口 {window_id} 已关闭")
            w2.state, w2.evaluated_at, w2.ruleset_version = "evaluated", utcnow(), version
            counts = _status_counts(s, window_id)
            audit.record(s, actor, "window.evaluate", window_id,
                         {"evaluated": total, "skipped": len(subjects) - total,
                          "ruleset_version": version, **counts})
    finally:
        if runner is not None:
            runner.close(abort=True)  # interrupted or failed: do not finish queued batches
        _release_lease(db, window_id, owner)
    return EvaluationResult(window_id, counts["applicants"], counts["proactive"], total,
                            len(subjects) - total, version)


def _status_counts(s: Session, window_id: str) -> dict:
    out = {"applicants": {st: 0 for st in STATUSES}, "proactive": {st: 0 for st in STATUSES}}
    for is_app, st, n in s.execute(
        select(Decision.application_id.is_not(None), Decision.status, func.count())
        .where(Decision.window_id == window_id)
        .group_by(Decision.application_id.is_not(None), Decision.status)
    ):
        out["applicants" if is_app else "proactive"][st] = out["applicants" if is_app else "proactive"].get(st, 0) + n
    return out


# --- reading decisions -------------------------------------------------------------


def _decision_dict(d: Decision, name: Optional[str] = None, with_trace: bool = False) -> dict:
    out = {
        "id": d.id, "window_id": d.window_id, "uscc": d.uscc, "enterprise_name": name,
        "application_id": d.application_id, "benefit_id": d.benefit_id,
        "benefit_kind": d.benefit_kind,
        "subject": {"type": d.subject_type, "id": d.subject_id} if d.subject_type else None,
        "status": d.status,
        "amount_cny": None if d.amount_cny is None else float(d.amount_cny),
        "amount_provisional": d.amount_provisional, "ruleset_version": d.ruleset_version,
        "profile_hash": d.profile_hash,
    }
    if with_trace:
        out["result"] = d.trace
    return out


def list_decisions(
    db: Database, window_id: str, *, status: str | None = None, uscc: str | None = None,
    applicants_only: bool = True, with_trace: bool = False, limit: int | None = None,
    offset: int = 0,
) -> list[dict]:
    """Decisions of a window, ordered by enterprise, benefit, subject. `with_trace` adds
    `result`: the full eligibility result (criteria, missing facts, materials)."""
    with db.read_session() as s:
        _get_window(s, window_id)
        cols = [Decision, Enterprise.name]
        q = (select(*cols).join(Enterprise, Enterprise.uscc == Decision.uscc)
             .where(Decision.window_id == window_id))
        if not with_trace:
            from sqlalchemy.orm import defer

            q = q.options(defer(Decision.trace))
        if status:
            q = q.where(Decision.status == status)
        if uscc:
            q = q.where(Decision.uscc == uscc.upper())
        if applicants_only:
            q = q.where(Decision.application_id.is_not(None))
        q = q.order_by(Decision.uscc, Decision.benefit_id, Decision.subject_id).offset(offset)
        if limit:
            q = q.limit(limit)
        return [_decision_dict(d, n, with_trace) for d, n in s.execute(q)]


def _require_evaluated(w: Window) -> None:
    if w.evaluated_at is None:
        raise Conflict(f"申报窗口 {w.id} 尚未评估，请先执行评估")


def proactive(db: Database, window_id: str) -> list[dict]:
    """免申即享 / 政策找企业: known enterprises that did not apply in this window but are
    eligible for at least one benefit, with what each would receive."""
    with db.read_session() as s:
        w = _get_window(s, window_id)
        _require_evaluated(w)
        q = (select(Decision, Enterprise.name)
             .join(Enterprise, Enterprise.uscc == Decision.uscc)
             .where(Decision.window_id == window_id, Decision.application_id.is_(None),
                    Decision.status == "eligible")
             .order_by(Decision.uscc, Decision.benefit_id, Decision.subject_id))
        out: dict[str, dict] = {}
        for d, name in s.execute(q):
            e = out.setdefault(d.uscc, {"uscc": d.uscc, "name": name, "benefits": [],
                                        "total_amount_cny": 0.0, "amount_provisional": False})
            tr = d.trace or {}
            e["benefits"].append({
                "benefit_id": d.benefit_id, "title": tr.get("title"), "kind": d.benefit_kind,
                "subject": {"type": d.subject_type, "id": d.subject_id} if d.subject_type else None,
                "amount_cny": None if d.amount_cny is None else float(d.amount_cny),
                "amount_provisional": d.amount_provisional,
                "required_materials": tr.get("required_materials", []),
            })
            if d.amount_cny is not None:
                e["total_amount_cny"] += float(d.amount_cny)
            e["amount_provisional"] |= d.amount_provisional
        return list(out.values())


# --- close and the award ledger ----------------------------------------------------


@dataclass
class CloseResult:
    window_id: str
    awards: list[dict]
    already_awarded: list[dict]  # eligible, but the subject is already in the ledger
    totals: dict

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _cert_facts(profile: dict, cert_no: str) -> tuple[Optional[str], Optional[str]]:
    from engine.certno import parse_certificate_no

    for r in profile.get("device_registrations") or []:
        if r.get("certificate_no") == cert_no:
            cls = r.get("device_class")
            if cls is None:
                p = parse_certificate_no(cert_no)
                cls = p.device_class if p else None
            return cls, r.get("origin")
    return None, None


def award_candidates(s: Session, window_id: str) -> list[dict]:
    """Eligible grant decisions of applicants, restricted to the certificates they claimed,
    in submission order (earliest application first when two claim one certificate)."""
    q = (select(Decision.id, Decision.uscc, Decision.application_id, Decision.benefit_id,
                Decision.subject_type, Decision.subject_id, Decision.amount_cny,
                Decision.amount_provisional, Application.claims, Application.submitted_at,
                Application.snapshot_hash, Application.channel, Enterprise.name)
         .join(Application, Application.id == Decision.application_id)
         .join(Enterprise, Enterprise.uscc == Decision.uscc)
         .where(Decision.window_id == window_id, Decision.status == "eligible",
                Decision.benefit_kind == "grant")
         .order_by(Application.submitted_at, Decision.uscc, Decision.benefit_id, Decision.subject_id))
    rows = s.execute(q).all()
    snaps = {}
    need = list({r.snapshot_hash for r in rows if r.subject_type == "certificate"})
    for chunk in _chunks(need):
        snaps.update(s.execute(select(ProfileSnapshot.hash, ProfileSnapshot.profile)
                               .where(ProfileSnapshot.hash.in_(chunk))).all())
    out = []
    for r in rows:
        if r.subject_type == "certificate" and r.claims is not None and r.subject_id not in r.claims:
            continue
        subject = r.subject_id or r.uscc
        cls, origin = (_cert_facts(snaps[r.snapshot_hash], r.subject_id)
                       if r.subject_type == "certificate" else (None, None))
        out.append({
            "decision_id": r.id, "uscc": r.uscc, "enterprise_name": r.name,
            "application_id": r.application_id, "benefit_id": r.benefit_id,
            "subject_type": r.subject_type, "subject_id": subject,
            "amount_cny": r.amount_cny, "amount_provisional": bool(r.amount_provisional),
            "device_class": cls, "origin": origin, "channel": r.channel,
        })
    return out


def totals_of(awards: list[dict]) -> dict:
    def add(d, k, a):
        t = d.setdefault(k or "unknown", {"count": 0, "amount_cny": 0.0})
        t["count"] += 1
        t["amount_cny"] += float(a["amount_cny"] or 0)

    by_class, by_origin, by_benefit = {}, {}, {}
    for a in awards:
        add(by_class, a.get("device_class"), a)
        add(by_origin, a.get("origin"), a)
        add(by_benefit, a.get("benefit_id"), a)
    return {
        "count": len(awards),
        "amount_cny": sum(float(a["amount_cny"] or 0) for a in awards),
        "provisional_count": sum(1 for a in awards if a["amount_provisional"]),
        "by_class": by_class, "by_origin": by_origin, "by_benefit": by_benefit,
    }


def _award_public(a: dict) -> dict:
    out = {k: v for k, v in a.items() if k != "decision_id"}
    out["amount_cny"] = None if a["amount_cny"] is None else float(a["amount_cny"])
    return out


def close_window(db: Database, window_id: str, actor: str | None = None) -> CloseResult:
    """Freeze the awards of an evaluated window into the ledger, in one transaction.

    The ledger's unique (benefit, subject) constraint decides races: rows are inserted with
    ON CONFLICT DO NOTHING, then read back; a subject held by another window (or another
    applicant of this one) is reported in `already_awarded` and never paid twice."""
    with db.session() as s:
        w = _get_window(s, window_id, lock=True)
        if w.state == "closed":
            raise Conflict(f"申报窗口 {window_id} 已关闭")
        if w.state != "evaluated":
            raise Conflict(f"申报窗口 {window_id} 尚未评估或评估后有新的申报，请先执行评估再关闭")
        if w.lease_owner and _aware(w.lease_until) and _aware(w.lease_until) > utcnow() and _owner_alive(w.lease_owner):
            raise Conflict(f"申报窗口 {window_id} 正在评估中，请等待评估完成后再关闭")
        cands = award_candidates(s, window_id)
        now = utcnow()
        rows = [{
            "benefit_id": c["benefit_id"], "subject_id": c["subject_id"], "window_id": window_id,
            "uscc": c["uscc"], "application_id": c["application_id"],
            "decision_id": c["decision_id"], "amount_cny": c["amount_cny"],
            "amount_provisional": c["amount_provisional"], "device_class": c["device_class"],
            "origin": c["origin"], "awarded_at": now,
        } for c in cands]
        if db.is_postgres:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(Award).on_conflict_do_nothing(index_elements=["benefit_id", "subject_id"])
        for chunk in _chunks(rows):
            s.execute(stmt, chunk)
        held: dict[tuple, tuple] = {}
        keys = [(c["benefit_id"], c["subject_id"]) for c in cands]
        for chunk in _chunks(list({k[1] for k in keys})):
            for b, sub, wid, u, dec in s.execute(
                select(Award.benefit_id, Award.subject_id, Award.window_id, Award.uscc,
                       Award.decision_id).where(Award.subject_id.in_(chunk))
            ):
                held[(b, sub)] = (wid, u, dec)
        awards, refused = [], []
        for c in cands:
            wid, u, dec = held[(c["benefit_id"], c["subject_id"])]
            if dec == c["decision_id"]:
                awards.append(_award_public(c))
            else:
                r = _award_public(c)
                r["awarded_in_window"] = wid
                r["awarded_to"] = u
                r["reason"] = (f"该{'证书' if c['subject_type'] == 'certificate' else '主体'}已在"
                               f"{'本窗口由' + u if wid == window_id else '申报窗口 ' + wid}获得兑现，不重复兑现")
                refused.append(r)
        w.state, w.closed_at = "closed", now
        totals = totals_of(awards)
        audit.record(s, actor, "window.close", window_id,
                     {"awards": len(awards), "already_awarded": len(refused),
                      "amount_cny": totals["amount_cny"]})
    return CloseResult(window_id, awards, refused, totals)


def list_awards(db: Database, window_id: str) -> tuple[dict, list[dict], bool]:
    """(window, awards, final): the ledger entries of a closed window, or for an evaluated
    window not yet closed the awards closing it would make (final=False, a preview)."""
    with db.read_session() as s:
        w = _get_window(s, window_id)
        wd = window_to_dict(w)
        if w.state == "closed":
            q = (select(Award, Enterprise.name, Application.channel)
                 .join(Enterprise, Enterprise.uscc == Award.uscc)
                 .join(Application, Application.id == Award.application_id)
                 .where(Award.window_id == window_id)
                 .order_by(Award.id))
            out = []
            for a, name, channel in s.execute(q):
                out.append({
                    "uscc": a.uscc, "enterprise_name": name, "application_id": a.application_id,
                    "benefit_id": a.benefit_id,
                    "subject_type": "certificate" if a.subject_id != a.uscc else None,
                    "subject_id": a.subject_id,
                    "amount_cny": None if a.amount_cny is None else float(a.amount_cny),
                    "amount_provisional": a.amount_provisional, "device_class": a.device_class,
                    "origin": a.origin, "channel": channel,
                })
            return wd, out, True
        _require_evaluated(w)
        taken = {(b, sub) for b, sub in s.execute(select(Award.benefit_id, Award.subject_id))}
        out, seen = [], set()
        for c in award_candidates(s, window_id):
            k = (c["benefit_id"], c["subject_id"])
            if k in taken or k in seen:
                continue
            seen.add(k)
            out.append(_award_public(c))
        return wd, out, False


# --- the enterprise's view ----------------------------------------------------------

_DUMMY_HASH = hashlib.sha256(b"no-such-application").hexdigest()


def get_application(db: Database, application_id: str, access_code: str) -> Optional[dict]:
    """The application and its decisions for the holder of its access code; None for an
    unknown id and for a wrong code alike (compared in constant time)."""
    if not isinstance(application_id, str) or not isinstance(access_code, str):
        return None
    with db.read_session() as s:
        app = s.get(Application, application_id) if len(application_id) <= 32 else None
        stored = app.access_code_hash if app else _DUMMY_HASH
        given = _code_hash(application_id, access_code.strip().upper())
        ok = hmac.compare_digest(stored, given)
        if not ok or app is None:
            return None
        ent = s.get(Enterprise, app.uscc)
        decs = s.execute(
            select(Decision).where(Decision.application_id == app.id)
            .order_by(Decision.benefit_id, Decision.subject_id)
        ).scalars().all()
        notices = s.execute(
            select(Notice).where(Notice.application_id == app.id).order_by(Notice.kind)
        ).scalars().all()
        awards = s.execute(select(Award).where(Award.application_id == app.id)).scalars().all()
        w = s.get(Window, app.window_id)
        return {
            "application_id": app.id,
            "window_id": app.window_id,
            "window": window_to_dict(w),
            "enterprise": {"uscc": ent.uscc, "name": ent.name},
            "channel": app.channel,
            "submitted_at": app.submitted_at.isoformat(),
            "claims": app.claims,
            "decisions": [
                {**(d.trace or {}), "decision_id": d.id, "status": d.status,
                 "amount_cny": None if d.amount_cny is None else float(d.amount_cny),
                 "amount_provisional": d.amount_provisional,
                 "ruleset_version": d.ruleset_version}
                for d in decs
            ],
            "awards": [
                {"benefit_id": a.benefit_id, "subject_id": a.subject_id,
                 "amount_cny": None if a.amount_cny is None else float(a.amount_cny),
                 "amount_provisional": a.amount_provisional}
                for a in awards
            ],
            "notices": [
                {"kind": n.kind, "number": n.number, "issued_on": n.issued_on.isoformat()}
                for n in notices
            ],
        }


def application_record(db: Database, application_id: str) -> Optional[dict]:
    """Staff view (no access code): the application, enterprise, profile and decisions."""
    with db.read_session() as s:
        app = s.get(Application, application_id)
        if app is None:
            return None
        snap = s.get(ProfileSnapshot, app.snapshot_hash)
        ent = s.get(Enterprise, app.uscc)
        decs = s.execute(select(Decision).where(Decision.application_id == app.id)
                         .order_by(Decision.benefit_id, Decision.subject_id)).scalars().all()
        return {
            "application_id": app.id, "window_id": app.window_id,
            "enterprise": {"uscc": ent.uscc, "name": ent.name}, "profile": snap.profile,
            "profile_hash": snap.hash, "claims": app.claims, "channel": app.channel,
            "submitted_at": app.submitted_at.isoformat(),
            "decisions": [_decision_dict(d, ent.name, True) for d in decs],
        }
