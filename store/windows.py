"""The semiannual window's life cycle: open → (acceptance, judging, 一次告知, 补正, 复核) →
公示 → closed. Opening, reading and the acceptance-period check live here; publishing and
closing (the award list and the ledger) are store.awards.

Every function takes the `Database` first. Errors are `NotFound`, `Conflict` and
`ValidationFailed` (store.errors) with Chinese messages.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Collection, Optional

import orjson
from sqlalchemy import Text, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import WindowContext
from engine.profile import shanghai_today
from engine.vocabulary import cn_date
from engine.workdays import service_limits
from store import audit, rulesets
from store.decisions import unpack_grants
from store.db import Database
from store.errors import Conflict, NotFound, RowProblem, ValidationFailed
from store.models import Application, Award, Evaluation, Review, Window, utcnow
from store.views import WindowCounts, WindowView
from store.workdays import horizon_warning

# How far after its acceptance period a window's working-day deadlines reach (补正, 公示, 容缺):
# the holiday schedules must cover them.
DEADLINES_AFTER = 120

WINDOW_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def _as_date(v, name: str, problems: list) -> Optional[date]:
    if v is None or v == "":
        return None
    if isinstance(v, date):
        d = v
    else:
        try:
            d = date.fromisoformat(str(v))
        except ValueError:
            problems.append(RowProblem(f"不是有效的日期（应写成如 2026-03-31）：{str(v)[:20]}", path=name))
            return None
    if not EARLIEST <= d <= LATEST:
        problems.append(RowProblem("日期应在 2000-01-01 至 2100-12-31 之间", path=name))
        return None
    return d


def _workdays(v, name: str, default: int, problems: list) -> int:
    if v is None or v == "":
        return default
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 60:
        problems.append(RowProblem("应为 1 至 60 之间的工作日数", path=name))
        return default
    return v


def open_window(db: Database, window_id: str, *, opens_on=None, closes_on=None, as_of=None,
                coverage_from=None, coverage_to=None, amounts: dict | None = None,
                label: str | None = None, correction_workdays=None, publicity_workdays=None,
                actor: str | None = None) -> WindowView:
    """Create a window. Dates default from rules/windows.yaml for ids like 2026-H1; as_of
    defaults to closes_on; the 补正 and 公示 periods to rules/workdays/service-limits.yaml.
    Every problem is reported at once; a duplicate id is a Conflict."""
    problems: list[RowProblem] = []
    if not isinstance(window_id, str) or not WINDOW_ID_RE.match(window_id):
        problems.append(RowProblem("批次编号只能包含字母、数字、点、下划线和连字符，最长32位（例如 2026-H1）", path="id"))
        window_id = ""
    opens_on, closes_on = _as_date(opens_on, "opens_on", problems), _as_date(closes_on, "closes_on", problems)
    as_of = _as_date(as_of, "as_of", problems)
    coverage_from = _as_date(coverage_from, "coverage_from", problems)
    coverage_to = _as_date(coverage_to, "coverage_to", problems)
    if label is not None and (not isinstance(label, str) or not 1 <= len(label.strip()) <= 100
                              or "\x00" in label):
        problems.append(RowProblem("批次名称应为 1 至 100 个字符", path="label"))
        label = None
    limits = service_limits()
    correction_workdays = _workdays(correction_workdays, "correction_workdays",
                                    limits["correction"].workdays, problems)
    publicity_workdays = _workdays(publicity_workdays, "publicity_workdays",
                                   limits["publicity"].workdays, problems)
    book = rulesets.current().book
    defaults = book.calendar.by_id(window_id) if window_id else None
    if defaults:
        opens_on = opens_on or defaults.opens_on
        closes_on = closes_on or defaults.closes_on
        label = label or defaults.label
        if coverage_from is None and coverage_to is None:
            coverage_from, coverage_to = defaults.coverage_from, defaults.coverage_to
    for name, v, what in (("opens_on", opens_on, "缺少受理开始日期"), ("closes_on", closes_on, "缺少受理截止日期"),
                          ("coverage_from", coverage_from, "缺少覆盖期开始日期"),
                          ("coverage_to", coverage_to, "缺少覆盖期结束日期")):
        if v is None and not any(p.path == name for p in problems):
            problems.append(RowProblem(f"{what}（该批次编号没有默认日历）", path=name))
    if opens_on and closes_on and closes_on < opens_on:
        problems.append(RowProblem("受理截止日期不能早于开始日期", path="closes_on"))
    if coverage_from and coverage_to and coverage_to < coverage_from:
        problems.append(RowProblem("覆盖期结束日期不能早于开始日期", path="coverage_to"))
    if amounts is not None:
        problems += [RowProblem(msg, path=path) for path, msg in book.amount_override_problems(amounts)]
    if problems:
        raise ValidationFailed(problems)
    w = Window(id=window_id, label=(label or f"{window_id} 集中申报").strip(), opens_on=opens_on,
               closes_on=closes_on, as_of=as_of or closes_on, coverage_from=coverage_from,
               coverage_to=coverage_to, amounts=amounts or {}, state="open",
               correction_workdays=correction_workdays, publicity_workdays=publicity_workdays,
               created_at=utcnow())
    try:
        with db.session() as s:
            if s.get(Window, window_id) is not None:
                raise Conflict(f"申报批次 {window_id} 已存在")
            s.add(w)
            s.flush()
            audit.record(s, actor, "window.open", window_id, view(w).model_dump(mode="json"))
    except IntegrityError:
        raise Conflict(f"申报批次 {window_id} 已存在") from None
    return view(w)


def delete_window(db: Database, window_id: str, *, actor: str | None = None) -> None:
    """Remove a window opened by mistake: only while nothing was done in it (no application,
    no judgement, no notice, no award); the audit log keeps that it existed."""
    from store.models import Application, Award, Evaluation, Notice, Objection

    with db.session() as s:
        w = get(s, window_id, lock=True)
        used = [what for what, model in (("申报", Application), ("判定", Evaluation), ("告知书", Notice), ("异议", Objection), ("兑现", Award))
                if s.scalar(select(func.count()).select_from(model).where(model.window_id == window_id))]
        if used or w.evaluated_at is not None or w.state != "open":
            raise Conflict(f"“{w.label}”已有{'、'.join(used) or '办理记录'}，不能删除；"
                           "不再使用的批次可以保留，它不影响其他批次")
        before = view(w).model_dump(mode="json")
        s.delete(w)
        audit.record(s, actor, "window.delete", window_id, before)


def get(s: Session, window_id: str, *, lock: bool = False) -> Window:
    q = select(Window).where(Window.id == window_id)
    if lock:
        q = q.with_for_update()
    w = s.execute(q).scalar_one_or_none() if isinstance(window_id, str) and len(window_id) <= 32 else None
    if w is None:
        raise NotFound(f"申报批次 {window_id} 不存在")
    return w


def view(w: Window, counts: WindowCounts | None = None) -> WindowView:
    return WindowView.model_validate(w).model_copy(update={"counts": counts})


def counts(s: Session, w: Window) -> WindowCounts:
    by_state = dict(s.execute(select(Application.state, func.count())
                              .where(Application.window_id == w.id).group_by(Application.state)).all())
    grant = claimed_grant_counts(s, w.id)
    reviewed, overridden = reviewed_grant_counts(s, w.id, grant)
    n_awards, total = s.execute(select(func.count(), func.coalesce(func.sum(Award.amount_cny), 0))
                                .where(Award.window_id == w.id)).one()
    failed = s.scalar(select(func.count()).where(Evaluation.window_id == w.id,
                                                 Evaluation.error.is_not(None))) or 0
    overdue = s.scalar(select(func.count()).where(
        Application.window_id == w.id, Application.state == "correction",
        Application.correction_due < shanghai_today())) if by_state.get("correction") else 0
    return WindowCounts(applications=sum(by_state.values()), by_state=by_state, correction_overdue=overdue or 0,
                        grant_decisions=grant,
                        grant_decisions_reviewed=reviewed, overridden=overridden,
                        stale=stale_count(s, w), failed=failed, awards=n_awards,
                        awards_total_cny=float(total or 0))


def claims_of(claims_text: str | None) -> set[str] | None:
    """The certificates an application applied for, from its claims as stored (JSON text);
    None: all of them (claims null, or a JSON null)."""
    claims = None if claims_text is None else orjson.loads(claims_text)
    return None if claims is None else set(claims)


def applied_for(subject: str, claims: Collection[str] | None) -> bool:
    """Whether a grant decision is about what its application applied for: an enterprise-wide
    one always is, a certificate's when its application claims it (or claims all)."""
    return not subject or claims is None or subject in claims


def claimed_grants(s: Session, window_id: str, *, usccs: list[str] | None = None, state: str | None = None):
    """The window's applicants' grant decisions, as (evaluation id, application id, benefit,
    subject, status, amount, provisional), only those about what the application applied for
    (a certificate it does not claim is not decided for it; claims null: all of them).
    `usccs`: only these applicants; `state`: only applications in this state. Read past the
    ORM, the claims as their JSON text."""
    q = (select(Evaluation.id, Evaluation.application_id, Evaluation.grants, cast(Application.claims, Text),
                Evaluation.ruleset_seq)
         .join(Application, Application.id == Evaluation.application_id)
         .where(Evaluation.window_id == window_id, Evaluation.grants.is_not(None)))
    if usccs is not None:
        q = q.where(Evaluation.uscc.in_(usccs))
    if state is not None:
        q = q.where(Application.state == state)
    ids = rulesets.GrantIds(s)
    for ev_id, app_id, packed, claims_text, seq in s.connection().execute(q.execution_options(yield_per=2000)):
        claims = claims_of(claims_text)
        for b, sub, st, amount, prov in unpack_grants(packed, ids[seq]):
            if applied_for(sub, claims):
                yield ev_id, app_id, b, sub, st, amount, prov


def claimed_grant_counts(s: Session, window_id: str, usccs: list[str] | None = None
                         ) -> dict[str, int] | dict[str, dict[str, int]]:
    """The window's grant decisions by verdict, counting only what was applied for. With
    `usccs` (the applicants of a page): per application, by its id."""
    if usccs is None:
        out: dict[str, int] = {}
        for *_, st, _, _ in claimed_grants(s, window_id):
            out[st] = out.get(st, 0) + 1
        return out
    per: dict[str, dict[str, int]] = {}
    for _, app_id, _, _, st, _, _ in claimed_grants(s, window_id, usccs=usccs):
        n = per.setdefault(app_id, {})
        n[st] = n.get(st, 0) + 1
    return per


def reviewed_grant_counts(s: Session, window_id: str, engine_counts: dict[str, int]
                          ) -> tuple[dict[str, int], int]:
    """(the claimed grant decisions by their final verdict — the latest review of the current
    decision where there is one, else the engine's —, how many a review changed)."""
    latest: dict[tuple, tuple] = {}
    for app_id, b, sub, engine, st, claims in s.execute(
            select(Review.application_id, Review.benefit_id, Review.subject_id, Review.engine_status,
                   Review.status, Application.claims)
            .join(Evaluation, Evaluation.id == Review.evaluation_id)
            .join(Application, Application.id == Review.application_id)
            .where(Evaluation.window_id == window_id).order_by(Review.id)):
        if applied_for(sub, claims):
            latest[(app_id, b, sub)] = (engine, st)
    out = dict(engine_counts)
    changed = 0
    for engine, st in latest.values():
        if engine != st:
            changed += 1
            out[engine] = out.get(engine, 0) - 1
            out[st] = out.get(st, 0) + 1
    return {k: v for k, v in out.items() if v}, changed


def stale_count(s: Session, w: Window) -> int:
    """Applicants whose judgement is missing or was made under other rules or another
    profile than the ones in force now (none once closed: its decisions are final)."""
    if w.state == "closed":
        return 0
    version = rulesets.current().ruleset_version
    q = (select(func.count()).select_from(Application)
         .outerjoin(Evaluation, (Evaluation.window_id == Application.window_id)
                    & (Evaluation.uscc == Application.uscc))
         .where(Application.window_id == w.id,
                (Evaluation.id.is_(None)) | (Evaluation.ruleset_version != version)
                | (Evaluation.profile_hash != Application.snapshot_hash)))
    return s.scalar(q) or 0


def list_windows(db: Database) -> list[WindowView]:
    with db.read_session() as s:
        ws = s.execute(select(Window).order_by(Window.opens_on.desc(), Window.id)).scalars().all()
        return [view(w, counts(s, w)) for w in ws]


def get_window(db: Database, window_id: str) -> WindowView:
    with db.read_session() as s:
        w = get(s, window_id)
        return view(w, counts(s, w)).model_copy(update={"overlaps": overlapping(s, w),
                                                         "calendar_gap": calendar_gap(w)})


def calendar_gap(w: Window, today: date | None = None) -> str | None:
    """Staff's warning that a step of this window still to come (one-time notices, 公示, their
    deadlines) may need a year whose holiday schedule is not entered. None once publicized: its
    deadlines are counted then, and the close needs none."""
    if w.state in ("publicity", "closed"):
        return None
    today = today or shanghai_today()
    start = max(today, w.opens_on)
    # steps still ahead: from the close's usual horizon, or from today for a late one (its
    # notices' 补正 and then 公示, in calendar days with room for a holiday)
    until = max(w.closes_on + timedelta(days=DEADLINES_AFTER),
                today + timedelta(days=2 * (w.correction_workdays + w.publicity_workdays) + 14))
    return horizon_warning(start, (until - start).days, for_staff=True)


def overlapping(s: Session, w: Window) -> list[str]:
    """The other windows whose coverage shares a day with `w`'s, in words. Each certificate
    should belong to exactly one window (docs/rules.md): an overlap lists it in both."""
    if w.coverage_from is None or w.coverage_to is None:
        return []
    return [f"“{o.label}”（支持 {cn_date(o.coverage_from)}至{cn_date(o.coverage_to)} 取得的注册证）"
            for o in s.scalars(select(Window).where(Window.id != w.id, Window.coverage_from.is_not(None),
                                                    Window.coverage_from <= w.coverage_to,
                                                    Window.coverage_to >= w.coverage_from)
                               .order_by(Window.opens_on))]


def context(w: Window) -> WindowContext:
    return WindowContext(id=w.id, label=w.label, opens_on=w.opens_on, closes_on=w.closes_on,
                         as_of=w.as_of, coverage_from=w.coverage_from, coverage_to=w.coverage_to,
                         amounts=dict(w.amounts or {}))


def require_accepting(w: Window, today: date | None = None) -> None:
    """Applications only within the acceptance period of an open window."""
    today = today or shanghai_today()
    if w.state != "open":
        raise Conflict(f"“{w.label}”{'已关闭' if w.state == 'closed' else '正在公示'}，不再受理申报")
    if not w.opens_on <= today <= w.closes_on:
        when = "尚未开始" if today < w.opens_on else "已结束"
        raise Conflict(f"“{w.label}”的受理期为 {cn_date(w.opens_on)}至{cn_date(w.closes_on)}，"
                       f"受理{when}")


def set_amounts(db: Database, window_id: str, amounts: dict, *, actor: str | None = None) -> WindowView:
    """The round's notice amounts (当期申报通知), set on a window before its 公示: they replace
    the rules' reference amounts (参考金额). The window must be judged again (批量判定) before it
    is publicized or closed, and every decision is then priced with them."""
    book = rulesets.current().book
    problems = [RowProblem(msg, path=path) for path, msg in book.amount_override_problems(amounts)] \
        if isinstance(amounts, dict) else [RowProblem("金额应为对象（参数名 → 金额表）", path="amounts")]
    if problems:
        raise ValidationFailed(problems)
    with db.session() as s:
        w = get(s, window_id, lock=True)
        if w.state != "open":
            raise Conflict(f"“{w.label}”已{'公示' if w.state == 'publicity' else '关闭'}，金额只能在公示前设定")
        w.amounts, w.evaluated_at = dict(amounts), None     # judged again before 公示 and close
        audit.record(s, actor, "window.amounts", window_id, {"amounts": amounts})
    return get_window(db, window_id)


def require_startable(db: Database, kind: str, window_id: str | None) -> None:
    """Refuse, before it is queued, a background job its window cannot take any more (a page
    opened before the window closed once queued a job that only failed later)."""
    if window_id is None or kind not in ("window.evaluate", "applications.import"):
        return
    with db.read_session() as s:
        w = get(s, window_id)
        if kind == "applications.import":
            require_accepting(w)
        elif w.state == "closed":
            raise Conflict(f"“{w.label}”已关闭，不能再判定")


class StoreCalendar:
    """The windows a self-check judges certificates in: the windows staff opened, with their
    real dates, and the default calendar (rules/windows.yaml) for the rest. A window opened
    under a default id (2027-H1) replaces the default one, whatever dates it was given."""

    def __init__(self, default, opened: list[tuple[WindowContext, str]]):
        self.default = default
        self.opened = opened                      # (context, state), newest first
        self.ids = {w.id for w, _ in opened}

    @classmethod
    def of(cls, db: Database, default) -> "StoreCalendar":
        with db.read_session() as s:
            ws = s.execute(select(Window).order_by(Window.opens_on.desc(), Window.id)).scalars().all()
            return cls(default, [(context(w), w.state) for w in ws])

    def covering(self, d: date) -> Optional[WindowContext]:
        for w, _ in self.opened:
            if w.coverage_from <= d <= w.coverage_to:
                return w
        w = self.default.covering(d)
        return None if w is None or w.id in self.ids else w

    def next_window(self, as_of: date) -> WindowContext:
        """The window whose acceptance ends first on or after `as_of`: an open one staff
        opened, or a default one they did not replace."""
        found = [w for w, state in self.opened if state == "open" and w.closes_on >= as_of]
        for year in (as_of.year, as_of.year + 1, as_of.year + 2):
            found += [w for w in self.default.windows_of_year(year)
                      if w.closes_on >= as_of and w.id not in self.ids]
            if found:
                break
        return min(found, key=lambda w: w.closes_on) if found else self.default.next_window(as_of)

    def by_id(self, window_id: str) -> Optional[WindowContext]:
        return next((w for w, _ in self.opened if w.id == window_id), None) or self.default.by_id(window_id)
