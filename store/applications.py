"""Applications: intake (one, or a file of many, or a registry of known enterprises), access
codes, and the staff's list and search.

Profiles are stored once per content hash (`profile_snapshots`); an application points at its
enterprise's snapshot. An access code is shown once and only its hash is kept.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import orjson
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from engine.profile import Profile, ProfileError, canonical_json, parse_profile, shanghai_today
from engine.vocabulary import APPLICATION_STATE
from store import audit, profiles, rulesets
from store import windows as W
from store.bulk import among, insert_rows, refresh_statistics
from store.collector import bulk_work
from store.db import Database
from store.evalworker import CheckWorker, WorkerFailed, resolve_workers
from store.errors import Conflict, RowProblem, ValidationFailed
from store.intake import parse_file
from store.spreadsheet import IntakeLimits
from store.models import (Application, Enterprise, Evaluation, Material, ProfileSnapshot, Review,
                          digest, utcnow)
from store.views import ApplicationRow, Submitted, state_text

CHANNELS = ("web", "import", "api")
CHUNK = 2000
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_DUMMY_HASH = hashlib.sha256(b"no-such-application").hexdigest()


def chunks(seq: list, n: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def move(s: Session, window_id: str, ids: list[str], action: str, to_state: str, now: datetime,
         actor: str | None, only_from: tuple[str, ...] | None = None, details: dict | None = None) -> None:
    """Applications of a window to a new state, a chunk at a time (a window moves 100,000 at
    once), with their history entries, stored as one batch per former state. `only_from`: move
    only those in one of these states (others, and those already there, are left alone)."""
    who, t = actor or audit.default_actor(), Application.__table__
    pg = s.get_bind().dialect.name == "postgresql"
    s.flush()       # states are read past the ORM (3–4 µs a row less): a pending change goes first
    conn = s.connection()
    entries: list[tuple] = []
    for chunk in chunks(ids):
        q = select(t.c.id, t.c.state).where(among(s, t.c.id, chunk))
        if only_from is not None:
            q = q.where(t.c.state.in_(only_from), t.c.state != to_state)
        change = dict(state=to_state, updated_at=now, revision=t.c.revision + 1)
        if pg:      # one statement: the rows locked, moved, and their former states returned
            old = q.with_for_update().subquery("old")
            moving = dict(conn.execute(update(t).where(t.c.id == old.c.id).values(**change)
                                       .returning(t.c.id, old.c.state)).all())
        else:       # SQLite cannot return a joined row; its writers are serialised anyway
            moving = dict(conn.execute(q).all())
            if moving:
                conn.execute(update(t).where(among(s, t.c.id, list(moving))).values(**change))
        entries += [(i, now, who, action, moving[i], to_state, details) for i in chunk if i in moving]
    audit.events(s, window_id, entries)


def code_hash(application_id: str, code: str) -> str:
    """The stored hash of an access code: 16 bytes of SHA-256 (a code has 60 bits; a longer
    hash protects nothing more and cost 32 bytes an application on PostgreSQL)."""
    return hashlib.sha256(f"{application_id}:{code}".encode()).hexdigest()[:32]


def code_matches(stored: str | None, application_id: str, code: str) -> bool:
    """Whether `code` is the one whose hash is stored, in constant time. Hashes stored before
    they were cut to 16 bytes hold all 32: their first 16 are compared."""
    return hmac.compare_digest((stored or _DUMMY_HASH)[:32], code_hash(application_id, code)) and stored is not None


def typed_code(text: str) -> str:
    """An access code as typed from a paper notice: spaces and dashes between its groups
    (LST6 XQDX 34B4), any case."""
    return "".join(text.split()).replace("-", "").upper()[:64]


def new_access_code(rand: bytes | None = None) -> str:
    # 12 characters from an unambiguous alphabet (32 symbols, 60 bits): typed from a paper
    # notice. 256 is a multiple of 32, so `b & 31` is uniform.
    return "".join([_CODE_ALPHABET[b & 31] for b in (rand[:12] if rand else secrets.token_bytes(12))])


def new_application_id(rand: bytes | None = None) -> str:
    return "A" + (rand[:8] if rand else secrets.token_bytes(8)).hex().upper()


def check_access_code(db: Database, application_id: str, access_code: str) -> bool:
    """True for the holder of the application's access code; an unknown id and a wrong code
    take the same time and give the same answer."""
    if not isinstance(application_id, str) or not isinstance(access_code, str):
        return False
    app_id = application_id.strip().upper()[:32]
    with db.read_session() as s:
        stored = s.scalar(select(Application.access_code_hash).where(Application.id == app_id)) \
            if "\x00" not in app_id else None
    return code_matches(stored, app_id, typed_code(access_code))


# --- storing profiles and applications -------------------------------------------------------
@dataclass(slots=True)
class Intake:
    """One validated record to store: the profile packed as it is stored, and its hash (a bulk
    import keeps 100,000 of these, so not the Profile itself) and, for applications, the claims."""
    uscc: str
    name: str
    data: bytes         # store.profiles.pack
    hash: str
    claims: Optional[list[str]] = None
    channel: str = "import"

    @classmethod
    def of(cls, profile: Profile, claims: Optional[list[str]] = None, channel: str = "import") -> "Intake":
        claims = stored_claims(claims, [r.certificate_no for r in profile.device_registrations or []])
        return cls(*_stored_form(profile, profiles.packing(rulesets.current().registry)), claims, channel)


def stored_claims(claims: Optional[list[str]], certificates: list) -> Optional[list[str]]:
    """Claims as an application keeps them: null (all of them) when they name every
    certificate of its profile (a list in each row cost 46 bytes an application on
    PostgreSQL, whose application pages stay half empty)."""
    if claims is not None and len(claims) == len(certificates) and set(claims) == set(certificates):
        return None
    return claims


def _stored_form(profile: Profile, packing: tuple[bytes, bytes]) -> tuple[str, str, bytes, str]:
    """(uscc, name, the profile packed, its hash)."""
    pj = profile.as_json()
    return (profile.uscc, profile.name, profiles.pack(orjson.dumps(pj), *packing),
            digest(canonical_json(pj).encode()))


def check_profile(data: Any, registry, today: date, packing: tuple[bytes, bytes]) -> tuple:
    """One import entry checked: ("ok", uscc, name, packed profile, hash), or ("bad",
    [(path, message), …]). Runs here or in an import's worker process (store.evalworker)."""
    try:
        p = parse_profile(data, registry, today)
    except ProfileError as err:
        return "bad", [(pr.path, pr.message) for pr in err.problems]
    return ("ok", *_stored_form(p, packing))


@dataclass(slots=True)
class IntakeResult:
    uscc: str
    name: str
    application_id: Optional[str] = None
    access_code: Optional[str] = None   # only for new applications and resubmissions: shown once
    created: bool = False
    changed: bool = False
    previous_state: Optional[str] = None    # of an application this updated


def store_enterprises(s: Session, records: list[Intake], source: str, now: datetime) -> dict[str, str]:
    """Upsert enterprises and profile snapshots; return uscc → snapshot hash."""
    by_uscc = {r.uscc: r for r in records}
    existing: dict[str, Optional[str]] = {}
    conn = s.connection()       # bulk reads past the ORM (its row processing: 3–4 µs a row)
    for chunk in chunks(list(by_uscc)):
        existing.update(conn.execute(select(Enterprise.uscc, Enterprise.latest_snapshot)
                                     .where(among(s, Enterprise.uscc, chunk))).all())
    known: set[str] = set()
    for chunk in chunks([r.hash for r in by_uscc.values()]):
        known.update(conn.scalars(select(ProfileSnapshot.hash).where(among(s, ProfileSnapshot.hash, chunk))))
    # rows are streamed to the database, not held: an import of 100,000 made 200,000 dicts
    insert_rows(s.connection(), Enterprise.__table__,
                ("uscc", "name", "latest_snapshot", "source", "created_at", "updated_at"),
                ((u, r.name, r.hash, source, now, now) for u, r in by_uscc.items() if u not in existing))
    changed = [u for u, r in by_uscc.items() if u in existing and existing[u] != r.hash]
    if changed:
        t = Enterprise.__table__
        stmt = (update(t).where(t.c.uscc == bindparam("u"))
                .values(name=bindparam("n"), latest_snapshot=bindparam("h"), updated_at=bindparam("t")))
        rows = [{"u": u, "n": by_uscc[u].name, "h": by_uscc[u].hash, "t": now} for u in changed]
        for chunk in chunks(rows):
            s.execute(stmt, chunk)
    profiles.store_dictionaries(s, {r.data[1:9] for r in by_uscc.values()})
    insert_rows(s.connection(), ProfileSnapshot.__table__, ("hash", "uscc", "packed", "created_at"),
                ((r.hash, u, r.data, now) for u, r in by_uscc.items() if r.hash not in known))
    return {u: r.hash for u, r in by_uscc.items()}


_APP_COLS = ("id", "window_id", "uscc", "snapshot_hash", "claims", "channel", "submitted_at", "access_code_hash",
             "state", "revision", "updated_at")


def _store_applications(s: Session, w, records: list[Intake], snaps: dict[str, str], now: datetime,
                        *, resubmission: bool) -> list[IntakeResult]:
    """Insert new applications; an enterprise that applied before in this window gets its
    application updated (and, for a resubmission of one application, a new access code)."""
    existing: dict[str, tuple] = {}
    for chunk in chunks([r.uscc for r in records]):
        for row in s.connection().execute(select(Application.uscc, Application.id, Application.snapshot_hash,
                                                 Application.claims, Application.state)
                                          .where(Application.window_id == w.id, among(s, Application.uscc, chunk))):
            existing[row.uscc] = (row.id, row.snapshot_hash, row.claims, row.state)
    results, inserts, updates = [], [], []
    rand = memoryview(b"")
    for r in records:
        h = snaps[r.uscc]
        if r.uscc in existing:
            app_id, old_h, old_claims, state = existing[r.uscc]
            res = IntakeResult(r.uscc, r.name, app_id, previous_state=state)
            if old_h != h or old_claims != r.claims or resubmission:
                if state not in ("received", "judged"):
                    raise Conflict(f"企业 {r.name} 的申报已进入“{APPLICATION_STATE[state]}”阶段，"
                                   "不能再重新提交；请在申报页面补正")
                res.changed = True
                upd = {"i": app_id, "h": h, "c": r.claims, "t": now}
                if resubmission:
                    res.access_code = new_access_code()
                    upd["a"] = code_hash(app_id, res.access_code)
                updates.append(upd)
        else:
            if len(rand) < 20:          # one urandom call per thousand applications, not two each
                rand = memoryview(secrets.token_bytes(20 * 1000))
            app_id = new_application_id(bytes(rand[:8]))
            code = new_access_code(bytes(rand[8:20]))
            rand = rand[20:]
            res = IntakeResult(r.uscc, r.name, app_id, code, created=True, changed=True)
            inserts.append((app_id, w.id, r.uscc, h, r.claims, r.channel, now, code_hash(app_id, code),
                            "received", 0, now))
        results.append(res)
    insert_rows(s.connection(), Application.__table__, _APP_COLS, inserts)
    t = Application.__table__
    for with_code in (False, True):
        batch = [u for u in updates if ("a" in u) == with_code]
        if batch:
            values = dict(snapshot_hash=bindparam("h"), claims=bindparam("c"), state="received",
                          updated_at=bindparam("t"), revision=t.c.revision + 1)
            if with_code:
                values["access_code_hash"] = bindparam("a")
            s.execute(update(t).where(t.c.id == bindparam("i")).values(**values), batch)
    return results


def check_claims(profile: Profile, claims: Any, prefix: str = "claims") -> list[RowProblem]:
    if claims is None:
        return []
    if not isinstance(claims, list):
        return [RowProblem("申报的注册证必须是注册证编号列表", path=prefix)]
    have = {r.certificate_no for r in (profile.device_registrations or [])}
    problems, seen = [], set()
    for i, c in enumerate(claims):
        if not isinstance(c, str) or not c.strip() or "\x00" in c or len(c) > 100:
            problems.append(RowProblem("注册证编号必须是非空文本", path=f"{prefix}[{i}]"))
        elif c.strip() not in have:
            problems.append(RowProblem(f"企业画像中没有注册证 {c.strip()[:40]}", path=f"{prefix}[{i}]"))
        elif c.strip() in seen:
            problems.append(RowProblem(f"注册证 {c.strip()[:40]} 重复申报", path=f"{prefix}[{i}]"))
        else:
            seen.add(c.strip())
    return problems


def submit_application(db: Database, window_id: str, profile_data: Any, claims: Any = None,
                       channel: str = "api", *, actor: str | None = None,
                       today: date | None = None, prior_code: str | None = None) -> Submitted:
    """Store one application and return its id and access code (shown once). Submitting again
    for the same enterprise in the same window, before judging, updates the application and
    issues a new code (the old one stops working). On the public web form (channel "web"),
    where anyone may type a credit code, that needs the application's current code
    (`prior_code`): otherwise a stranger could replace an enterprise's application."""
    if channel not in CHANNELS:
        raise ValidationFailed([RowProblem(f"申报渠道必须是 {'、'.join(CHANNELS)} 之一", path="channel")])
    registry = rulesets.current().registry
    try:
        profile = parse_profile(profile_data, registry)
    except ProfileError as e:
        raise ValidationFailed([RowProblem(p.message, path=f"profile.{p.path}" if p.path else "profile")
                                for p in e.problems]) from None
    problems = check_claims(profile, claims)
    if problems:
        raise ValidationFailed(problems)
    claims = [c.strip() for c in claims] if claims is not None else None
    now = utcnow()
    with db.session() as s:
        w = W.get(s, window_id, lock=True)
        W.require_accepting(w, today)
        if channel == "web":
            prior = s.execute(select(Application.id, Application.access_code_hash).where(
                Application.window_id == window_id, Application.uscc == profile.uscc)).first()
            if prior is not None and not code_matches(prior.access_code_hash, prior.id, typed_code(prior_code or "")):
                raise ValidationFailed([RowProblem(
                    "该企业已在本批次提交过申报；如需修改后重新提交，请填写上次取得的查询码（遗失的，请联系受理窗口）"
                    if not prior_code else "与本企业本批次申报的查询码不符", path="prior_code")])
        rec = Intake.of(profile, claims, channel)
        snaps = store_enterprises(s, [rec], "application", now)
        (res,) = _store_applications(s, w, [rec], snaps, now, resubmission=True)
        audit.event(s, res.application_id, actor, "submit" if res.created else "resubmit",
                    res.previous_state, "received", {"channel": channel, "claims": claims})
    return Submitted(application_id=res.application_id, access_code=res.access_code,
                     window_id=window_id, state="received", replaced=not res.created)


class Ingest:
    """Validated records stored in ONE transaction, as they come: applications to `window_id`,
    or a registry of enterprises (no application) when window_id is None. An import stores
    what is checked while the rest is being checked (a file of 100,000 took 3 s to store after
    its 7 s of checks), and rolls everything back if the file turns out to have a problem.
    `finish` commits; `abort` (or any error) leaves nothing."""

    FLUSH = 1000

    def __init__(self, db: Database, window_id: Optional[str], today: date | None = None):
        self.db, self.window_id, self.today = db, window_id, today
        self.s: Session | None = None
        self.w = None
        self.now = utcnow()
        self.pending: list[Intake] = []
        self.results: list[IntakeResult] = []
        self.stored = 0
        self.refused: Conflict | None = None    # raised at the end: a bad file is reported first

    def add(self, record: Intake) -> None:
        self.pending.append(record)
        if len(self.pending) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        records, self.pending = self.pending, []
        if not records or self.refused is not None:
            return
        s = self._begin()
        snaps = store_enterprises(s, records, "application" if self.w else "registry", self.now)
        try:
            self.results += ([IntakeResult(r.uscc, r.name) for r in records] if self.w is None
                             else _store_applications(s, self.w, records, snaps, self.now, resubmission=False))
        except Conflict as e:
            self.refused = e
        self.stored += len(records)

    def _begin(self) -> Session:
        """The write transaction, from the first records on (not while the file is read)."""
        if self.s is None:
            self.s = self.db.Session()
            self.s.begin()
            if self.window_id is not None:
                self.w = W.get(self.s, self.window_id, lock=True)
                W.require_accepting(self.w, self.today)
        return self.s

    def finish(self, actor: str | None, action: str, details: dict | None) -> list[IntakeResult]:
        try:
            self.flush()
            if self.refused is not None:
                raise self.refused
            s, results = self._begin(), self.results
            if self.w is not None:           # each new or updated application's history entry
                who, detail = actor or audit.default_actor(), {"channel": "import"}
                audit.events(s, self.window_id, [
                    (r.application_id, self.now, who, "submit" if r.created else "resubmit",
                     r.previous_state, "received", detail) for r in results if r.changed])
            audit.record(s, actor, action, self.window_id or "registry",
                         {**(details or {}), "records": self.stored,
                          "created": sum(r.created for r in results)})
            s.commit()
        except BaseException:
            self.abort()
            raise
        self._close()
        refresh_statistics(self.db, self.stored, Enterprise.__table__, ProfileSnapshot.__table__,
                           Application.__table__)
        return results

    def abort(self) -> None:
        if self.s is not None:
            self.s.rollback()
            self._close()

    def _close(self) -> None:
        if self.s is not None:
            self.s.close()
            self.s = None


def ingest(db: Database, window_id: Optional[str], records: list[Intake], *, actor: str | None = None,
           action: str = "applications.import", details: dict | None = None,
           today: date | None = None) -> list[IntakeResult]:
    """Bulk store validated records in ONE transaction (Ingest)."""
    ing = Ingest(db, window_id, today)
    try:
        for r in records:
            ing.add(r)
    except BaseException:
        ing.abort()
        raise
    return ing.finish(actor, action, details)


# --- files of applications -------------------------------------------------------------------
@dataclass
class ImportReport:
    filename: str
    window_id: Optional[str]
    rows: int
    enterprises: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)     # USCCs not imported because of errors
    problems: list[RowProblem] = field(default_factory=list)
    access_codes: list[dict] = field(default_factory=list)  # {uscc, name, application_id, access_code}
    committed: bool = False

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["problems"] = [p.to_dict() for p in self.problems]
        return d


class ImportRejected(ValidationFailed):
    """The file has errors and nothing was imported; `.report` has every problem."""

    def __init__(self, report: ImportReport, total: int | None = None):
        self.report = report
        super().__init__(report.problems, f"文件“{report.filename}”有 {total or len(report.problems)} 处问题，"
                                          "未导入任何数据")


log = logging.getLogger("yagu.import")
# An import file of at least this size has every other part of it checked in a worker process
# (about 25,000 applications; 100,000 are 32 MB of CSV). The worker takes about a second to
# start: measured, 10,000 applications took 1.1 s alone and 1.6 s with it, 30,000 3.3 and 2.8 s.
PARALLEL_CHECK_BYTES = 8_000_000
CHECK_PART = 1000
# This process also stores what is checked (Ingest): about 31 µs a record against 84 to check
# one, so it checks 450 while the worker checks 1,000, and neither waits for the other.
OWN_SHARE = 0.45


def _parallel_check(size: int) -> bool:
    try:
        return size >= PARALLEL_CHECK_BYTES and resolve_workers(None)[0] > 1
    except ValueError:          # a bad $YAGU_EVAL_WORKERS is reported by the evaluation
        return False


def _checked(ents: deque, wanted: Callable, registry, checker: CheckWorker | None) -> Iterator[tuple]:
    """(entry, check_profile's result, or None where `wanted(entry)` is false) for each entry,
    in order, taken off `ents` as it goes (an entry is released once checked). With a
    checker, parts alternate between this process and the worker; the worker's next part is
    queued before this process checks its own, so neither waits for the other."""
    today, packing = shanghai_today(), profiles.packing(registry)

    def check(part: list) -> list:
        return [check_profile(e.profile, registry, today, packing) if wanted(e) else None for e in part]

    def take(n: int = CHECK_PART) -> list:
        return [ents.popleft() for _ in range(min(n, len(ents)))]

    if checker is None:
        while ents:
            part = take()
            yield from zip(part, check(part))
        return

    def send() -> Optional[list]:
        part = take()
        if not part:
            return None
        checker.submit([e.profile if wanted(e) else None for e in part], today, packing)
        return part

    theirs = None           # the part before `mine`, at the worker
    while ents or theirs:
        mine = take(max(1, int(CHECK_PART * OWN_SHARE)))
        nxt = send() if checker is not None else None
        done = check(mine)
        if theirs is not None:
            try:
                results = [r if wanted(e) else None for e, r in zip(theirs, checker.result())]
            except WorkerFailed:
                # The worker died (killed, out of memory): its parts are checked here instead,
                # and so is the rest of the file; the import does not fail for it.
                log.warning("import check worker failed; checking the rest in this process", exc_info=True)
                checker.close(abort=True)
                checker, results = None, check(theirs)
                if nxt is not None:
                    ents.extendleft(reversed(nxt))
                    nxt = None
            yield from zip(theirs, results)
        yield from zip(mine, done)
        theirs = nxt


@bulk_work()
def import_applications(db: Database, window_id: Optional[str], source: bytes | str | Path,
                        filename: str | None = None, *, skip_invalid: bool = False,
                        actor: str | None = None, channel: str = "import", today: date | None = None,
                        limits: IntakeLimits | None = None) -> ImportReport:
    """Import applications of a window from an .xlsx or .csv file (or, with window_id None, a
    registry of enterprises without applications). Idempotent on window + USCC. A file with
    errors imports nothing (ImportRejected) unless skip_invalid."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        filename, data = filename or path.name, path.read_bytes()
    else:
        data, filename = source, filename or "upload.xlsx"
    if window_id is not None:
        with db.read_session() as s:
            W.require_accepting(W.get(s, window_id), today)
    book = rulesets.current().book
    registry = book.fields
    checker = CheckWorker(book) if _parallel_check(len(data)) else None
    ing = Ingest(db, window_id, today)
    try:
        pf = parse_file(data, filename, registry, limits or IntakeLimits.from_env())
        skipped: list[str] = []
        n_ents = len(pf.enterprises)
        ents, pf.enterprises = deque(pf.enterprises), []
        # Rows with unreadable cells are still checked as a profile, so that one report lists
        # every problem (a bound broken elsewhere in the row too); cells already reported are
        # not reported again. An incomplete file's unreadable rows are not checked.
        for e, result in _checked(ents, lambda e: e.ok or pf.complete, registry, checker):
            if result is None:
                skipped.append(e.uscc)
            elif result[0] == "bad":
                for path, msg in result[1]:
                    sheet, row, column = e.locate(path)
                    if not e.ok and (sheet, row, column) in pf.log.cells:
                        continue
                    message = msg if column else f"{registry.label(path, e.profile)}：{msg}"
                    pf.log.add(RowProblem(message, sheet=sheet, row=row, column=column))
                skipped.append(e.uscc)
            elif not e.ok:
                skipped.append(e.uscc)
            elif not pf.log.total or skip_invalid:      # a file with a problem stores nothing
                claims = stored_claims(e.claims, [c.get("certificate_no") for c in
                                                  e.profile.get("device_registrations") or ()]) if window_id else None
                ing.add(Intake(*result[1:], claims, channel))
        report = ImportReport(filename, window_id, pf.rows, n_ents, skipped=skipped, problems=pf.problems)
        if report.problems and not skip_invalid:
            raise ImportRejected(report, pf.log.total)
        if not ing.stored and not ing.pending:
            ing.abort()
            return report
    except BaseException:
        ing.abort()
        raise
    finally:
        if checker is not None:
            checker.close()
    results = ing.finish(actor, "applications.import" if window_id else "registry.import",
                         {"filename": filename, "problems": pf.log.total, "skip_invalid": skip_invalid})
    report.committed = True
    report.created = sum(1 for r in results if r.created)
    report.updated = sum(1 for r in results if r.changed and not r.created)
    report.unchanged = len(results) - report.created - report.updated
    report.access_codes = [{"uscc": r.uscc, "name": r.name, "application_id": r.application_id,
                            "access_code": r.access_code} for r in results if r.access_code]
    return report


# --- the staff's list ------------------------------------------------------------------------
def list_applications(db: Database, window_id: str, *, q: str | None = None, state: str | None = None,
                      status: str | None = None, device_class: str | None = None,
                      correction_pending: bool | None = None, reviewed: bool | None = None,
                      limit: int = 50, offset: int = 0, today: date | None = None) -> tuple[int, list[ApplicationRow]]:
    """(total, one page) of a window's applications, searched by name, USCC or application
    id, filtered by state, grant verdict, device class, 补正 pending and review. `today`
    decides whether a 补正 deadline has passed (the state then reads 补正期限已过)."""
    if state and state not in APPLICATION_STATE:
        raise ValidationFailed([RowProblem("没有这种办理状态", path="state")])
    with db.read_session() as s:
        W.get(s, window_id)
        query = (select(Application, Enterprise.name).join(Enterprise, Enterprise.uscc == Application.uscc)
                 .where(Application.window_id == window_id))
        if q:
            # the words as typed: % and _ are characters to find, not wildcards
            text = q.strip()[:60].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{text}%"
            query = query.where(or_(Enterprise.name.like(like, escape="\\"),
                                    Application.uscc.like(like.upper(), escape="\\"),
                                    Application.id.like(like.upper(), escape="\\")))
        if state:
            query = query.where(Application.state == state)
        if correction_pending is not None:
            query = query.where((Application.state == "correction") if correction_pending
                                else (Application.state != "correction"))
        if status:              # a grant decision with this verdict on what it applied for
            with_status = {a for _, a, _, _, st, _, _ in W.claimed_grants(s, window_id) if st == status}
            query = query.where(among(s, Application.id, sorted(with_status)))
        if device_class:
            query = query.where(Application.id.in_(_apps_with_class(s, window_id, device_class)))
        if reviewed is not None:
            sub = select(Review.application_id)
            query = query.where(Application.id.in_(sub) if reviewed else Application.id.not_in(sub))
        total = s.scalar(select(func.count()).select_from(query.subquery()))
        page = s.execute(query.order_by(Application.submitted_at, Enterprise.name, Application.id)   # an import: by name
                         .limit(min(max(limit, 1), 500)).offset(max(offset, 0))).all()
        ids = [a.id for a, _ in page]
        statuses = W.claimed_grant_counts(s, window_id, [a.uscc for a, _ in page])
        reviewed_ids = set(s.scalars(select(Review.application_id).where(Review.application_id.in_(ids))))
        # what 复核 changed on the current decisions: the latest review of each subject, if it
        # differs from the rules' verdict
        latest: dict[tuple, tuple[str, str]] = {}
        for app_id, b, sub, engine, final in s.execute(
                select(Review.application_id, Review.benefit_id, Review.subject_id, Review.engine_status, Review.status)
                .join(Evaluation, Evaluation.id == Review.evaluation_id)
                .where(Review.application_id.in_(ids), Evaluation.window_id == window_id).order_by(Review.id)):
            latest[(app_id, b, sub)] = (engine, final)
        changes: dict[str, dict[str, int]] = {}
        for (app_id, _, _), (engine, final) in latest.items():
            if final != engine:
                changes.setdefault(app_id, {}).setdefault(final, 0)
                changes[app_id][final] += 1
        pending = dict(s.execute(select(Material.application_id, func.count())
                                 .where(Material.application_id.in_(ids), Material.state == "pending")
                                 .group_by(Material.application_id)).all())
        today = today or shanghai_today()
        rows = [ApplicationRow(application_id=a.id, uscc=a.uscc, enterprise_name=name, channel=a.channel,
                               state=a.state, state_text=state_text(a.state, a.correction_due, today),
                               submitted_at=a.submitted_at, correction_due=a.correction_due,
                               grant_statuses=statuses.get(a.id, {}), reviewed=a.id in reviewed_ids,
                               review_changes=changes.get(a.id, {}),
                               pending_materials=pending.get(a.id, 0))
                for a, name in page]
        return total, rows


def _apps_with_class(s: Session, window_id: str, device_class: str) -> list[str]:
    """Applications with a certificate of this class (read from their profiles)."""
    registry = rulesets.current().registry
    cls = registry.facts.get("certificate.device_class")
    out = []
    for app_id, packed in s.execute(select(Application.id, ProfileSnapshot.packed)
                                    .join(ProfileSnapshot, ProfileSnapshot.hash == Application.snapshot_hash)
                                    .where(Application.window_id == window_id)):
        p = parse_profile(profiles.load(s, packed), registry, date.max)
        if cls and any(cls.read(r) == device_class for r in (p.device_registrations or [])):
            out.append(app_id)
    return out

