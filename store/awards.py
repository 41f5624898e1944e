"""公示 and 兑现: the proposed award list, publishing it, closing the window into the award
ledger (once per subject, across all windows), the refusals, and the 免申即享 list.

Only grant decisions enter any of these: tax preferences are the enterprise's own
self-assessment (自行判别、申报享受), never a park decision.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Optional

from sqlalchemy import Text, cast, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.profile import shanghai_today
from engine.vocabulary import CHANNEL, cn_date, ruleset_text
from store import audit, profiles, rulesets
from store import windows as W
from store.decisions import unpack_grants
from store.applications import chunks, move
from store.bulk import among, insert_rows
from store.cases import standing_rejections, supplied, to_be_told_quickly
from store.collector import bulk_work
from store.db import Database
from store.errors import Conflict, RowProblem, ValidationFailed
from store.models import (Application, Award, Commitment, Enterprise, Evaluation, Material,
                          Objection, ProfileSnapshot, Review, Window, utcnow)
from store.views import AwardList, AwardView, Totals
from store.workdays import add_workdays, next_workday


@dataclass(slots=True)
class Candidate:
    evaluation_id: int          # the evaluation whose grant decision this is
    uscc: str
    enterprise_name: str
    application_id: str
    benefit_id: str
    subject_id: str
    status: str                 # final: reviewed, else the engine's
    amount_cny: Optional[float]
    amount_provisional: bool
    device_class: Optional[str]
    origin: Optional[str]
    channel: str
    amount_reviewed: bool = False   # the amount a 复核 stated (the rules gave none)
    engine_status: str = ""         # the rules' verdict, before any 复核


def _final_statuses(s: Session, window_id: str) -> dict[tuple, tuple[str, Optional[float]]]:
    """(application, benefit, subject) → the latest reviewed verdict of the current decision,
    and the amount that review set (for a grant the rules gave none), else None."""
    current = select(Evaluation.id).where(Evaluation.window_id == window_id)
    out = {}
    for app, b, sub, st, amount in s.execute(
            select(Review.application_id, Review.benefit_id, Review.subject_id, Review.status, Review.amount_cny)
            .where(Review.evaluation_id.in_(current)).order_by(Review.id)):
        out[(app, b, sub)] = (st, None if amount is None else float(amount))
    return out


def grant_decisions(s: Session, window_id: str, *, eligible_only: bool = False,
                    decided_apps: set[str] | None = None, refused_apps: set[str] | None = None) -> list[Candidate]:
    """Every claimed grant decision of the window's applicants, with its final verdict, in
    submission order (earliest application first when two claim one certificate).
    `eligible_only`: only the eligible ones (a close of 100,000 applications held every
    other one too); `decided_apps`, if given, receives the application of every decision,
    and `refused_apps` that of every decision whose final verdict is not eligible."""
    reviewed = _final_statuses(s, window_id)
    # Read past the ORM (its row processing cost 3–4 µs a row, twice a second in a close); an
    # application's decisions in the order of benefit and subject.
    rows = s.connection().execute(
        select(Evaluation.id, Evaluation.uscc, Evaluation.application_id, Evaluation.grants, Evaluation.ruleset_seq,
               cast(Application.claims, Text), Application.snapshot_hash, Application.channel, Enterprise.name)
        .join(Application, Application.id == Evaluation.application_id)
        .join(Enterprise, Enterprise.uscc == Evaluation.uscc)
        .where(Evaluation.window_id == window_id, Evaluation.grants.is_not(None))
        .order_by(Application.submitted_at, Evaluation.uscc)
        .execution_options(yield_per=2000))
    # Read as they come (a window of 100,000 held every row and every candidate at once).
    out: list[Candidate] = []
    by_snapshot: dict[str, list[Candidate]] = {}
    wanted: set[str] = set()
    ids = rulesets.GrantIds(s)
    for ev_id, uscc, app_id, packed, seq, claims_text, snapshot, channel, name in rows:
        claims = W.claims_of(claims_text)
        for benefit_id, subject_id, status, amount, provisional in sorted(unpack_grants(packed, ids[seq])):
            if not W.applied_for(subject_id, claims):
                continue
            engine_status = status
            review = reviewed.get((app_id, benefit_id, subject_id))
            if review is not None:
                status = review[0]
                if review[1] is not None:           # set by the review: a stated amount, not a reference
                    amount, provisional = review[1], False
            if decided_apps is not None:
                decided_apps.add(app_id)
            if status != "eligible":
                if refused_apps is not None:
                    refused_apps.add(app_id)
                if eligible_only:
                    continue
            c = Candidate(ev_id, uscc, name, app_id, benefit_id, subject_id or uscc, status,
                          None if amount is None else float(amount), provisional, None, None, channel,
                          review is not None and review[1] is not None, engine_status)
            out.append(c)
            if subject_id:
                by_snapshot.setdefault(snapshot, []).append(c)
                # Only eligible subjects are listed with their class and origin (award lists, totals).
                if status == "eligible":
                    wanted.add(snapshot)
    # Class and origin of each certificate, read from the stored (validated) profiles a chunk
    # at a time: holding every profile of a 100,000-application window cost a gigabyte.
    registry = rulesets.current().registry
    for chunk in chunks(list(wanted)):
        for h, packed in s.connection().execute(select(ProfileSnapshot.hash, ProfileSnapshot.packed)
                                                .where(among(s, ProfileSnapshot.hash, chunk))):
            facts = _certificate_facts(registry, profiles.load(s, packed))
            for c in by_snapshot[h]:
                c.device_class, c.origin = facts.get(c.subject_id, (None, None))
    return out


class _Stored(dict):
    """A certificate of a stored profile, read as the registry reads a parsed one. Stored
    profiles hold canonical values (validated on the way in), so the two read alike."""
    __getattr__ = dict.get


def _certificate_facts(registry, profile: dict) -> dict[str, tuple[Optional[str], Optional[str]]]:
    """Class and origin of each certificate of a stored profile, by certificate number."""
    info = registry.list_of("certificate")
    cls = registry.facts["certificate.device_class"].read
    out: dict = {}
    for item in map(_Stored, profile.get(info.name) or []):
        out.setdefault(info.key_of(item), (cls(item), item.origin))
    return out


def _view(c: Candidate, titles: dict[str, str]) -> AwardView:
    return AwardView(uscc=c.uscc, enterprise_name=c.enterprise_name, application_id=c.application_id,
                     benefit_id=c.benefit_id, title=titles.get(c.benefit_id, ""), subject_id=c.subject_id,
                     amount_cny=c.amount_cny, amount_provisional=c.amount_provisional,
                     device_class=c.device_class, origin=c.origin, channel=c.channel,
                     amount_reviewed=c.amount_reviewed)


def totals_of(awards: list[AwardView]) -> Totals:
    def add(d: dict, k, a: AwardView) -> None:
        t = d.setdefault(k or "unknown", {"count": 0, "amount_cny": 0.0})
        t["count"] += 1
        t["amount_cny"] += a.amount_cny or 0

    by_class: dict = {}
    by_origin: dict = {}
    by_benefit: dict = {}
    for a in awards:
        add(by_class, a.device_class, a)
        add(by_origin, a.origin, a)
        add(by_benefit, a.benefit_id, a)
    return Totals(count=len(awards), amount_cny=sum(a.amount_cny or 0 for a in awards),
                  provisional_count=sum(1 for a in awards if a.amount_provisional),
                  by_class=by_class, by_origin=by_origin, by_benefit=by_benefit)


def _worded(awards: list[AwardView], db: Database, version: str | None) -> list[AwardView]:
    """The class, origin and channel of each award in words, as the rules that judged it
    (`version`) say them."""
    fields = rulesets.book_for(db, version).fields

    def words(name: str) -> dict:
        spec = fields.field_at(f"device_registrations[0].{name}")
        return dict(spec.values) if spec else {}
    classes, origins = words("device_class"), words("origin")
    for a in awards:
        a.device_class_text = classes.get(a.device_class, "") if a.device_class else ""
        a.origin_text = origins.get(a.origin, "") if a.origin else ""
        a.channel_text = CHANNEL.get(a.channel or "", "")
    return awards


def _titles(db: Database, w: Window) -> dict[str, str]:
    """Benefit titles as the rules that judged the window name them (not as today's rules do)."""
    return {b.id: b.spec.title for b in rulesets.book_for(db, w.ruleset_version).benefits.values()}


def proposed(s: Session, window_id: str, decided_apps: set[str] | None = None,
             refused_apps: set[str] | None = None) -> tuple[list[Candidate], list[dict]]:
    """(the awards closing would make, eligible subjects already awarded elsewhere);
    `decided_apps` receives every application with a grant decision, `refused_apps` every
    one with a grant decision that is not eligible."""
    taken = {(b, sub): wid for b, sub, wid in s.connection().execute(
        select(Award.benefit_id, Award.subject_id, Award.window_id))}
    out, refused, seen = [], [], set()
    for c in grant_decisions(s, window_id, eligible_only=True, decided_apps=decided_apps, refused_apps=refused_apps):
        key = (c.benefit_id, c.subject_id)
        if key in taken and taken[key] != window_id or key in seen:
            refused.append({"uscc": c.uscc, "enterprise_name": c.enterprise_name, "benefit_id": c.benefit_id,
                            "subject_id": c.subject_id,
                            "reason": f"该注册证已在申报批次 {taken.get(key, window_id)} 获得支持，不重复支持"})
            continue
        seen.add(key)
        out.append(c)
    return out, refused


def rejected_materials(s: Session, db: Database, w: Window, cands: list[Candidate]) -> list[dict]:
    """Proposed awards with a material whose file stands rejected: not paid, nor published,
    until staff accept a replacement or 复核 the decision to 不符合条件."""
    found = standing_rejections(s, w.id, [(c.application_id, c.benefit_id, c.subject_id) for c in cands])
    if not found:
        return []
    book = rulesets.book_for(db, w.ruleset_version)
    out = []
    for c in cands:
        bad = found.get((c.application_id, c.benefit_id, c.subject_id))
        if bad:
            names = {m.id: m.name for m in book.benefits[c.benefit_id].spec.materials} \
                if c.benefit_id in book.benefits else {}
            out.append({"application_id": c.application_id, "enterprise_name": c.enterprise_name,
                        "benefit_id": c.benefit_id, "subject_id": "" if c.subject_id == c.uscc else c.subject_id,
                        "materials": [names.get(m.material_id, m.material_id)
                                      + ("（补交的文件尚未审核）" if m.state == "pending" else "") for m in bad]})
    return out


def _held_by_rejections(blocked: list[dict], doing: str) -> Conflict:
    apps = list(dict.fromkeys(b["application_id"] for b in blocked))
    shown = "；".join(f"{b['application_id']}（{b['enterprise_name']}"
                     + (f"，注册证 {b['subject_id']}" if b["subject_id"] else "")
                     + f"：{'、'.join(b['materials'])}）" for b in blocked[:5])
    more = f"；等共 {len(blocked)} 项" if len(blocked) > 5 else ""
    return Conflict(f"有 {len(apps)} 份申报的拟支持事项仍有未通过审核（或补交后尚未审核）的材料，不能{doing}：{shown}{more}。"
                    "请先审核补交的材料，或复核将该事项改为不符合条件")


def _refuse_unpriced(cands: list[Candidate], doing: str) -> None:
    """Nothing is published or paid without an amount: a grant eligible without one (the rules
    could not compute it) needs a 复核 that states it."""
    unpriced = [c for c in cands if c.amount_cny is None]
    if unpriced:
        shown = "；".join(f"{c.application_id}（{c.enterprise_name}"
                         + (f"，注册证 {c.subject_id}" if c.subject_id != c.uscc else "") + "）" for c in unpriced[:5])
        more = f"；等共 {len(unpriced)} 项" if len(unpriced) > 5 else ""
        raise Conflict(f"有 {len(unpriced)} 项拟支持事项没有金额，不能{doing}：{shown}{more}。"
                       "请在复核中确定支持金额")


def corrections_running(s: Session, window_id: str, today: date) -> tuple[int, Optional[date]]:
    """(applications whose 补正 deadline has not passed, the latest such deadline)."""
    n, last = s.execute(select(func.count(), func.max(Application.correction_due)).where(
        Application.window_id == window_id, Application.state == "correction",
        Application.correction_due >= today)).one()
    return n or 0, last


def list_awards(db: Database, window_id: str) -> AwardList:
    """The ledger entries of a closed window; before closing, the proposed list (拟支持名单)."""
    with db.read_session() as s:
        w = W.get(s, window_id)
        titles = _titles(db, w)
        if w.state == "closed":
            rows = s.execute(select(Award, Enterprise.name, Application.channel)
                             .join(Enterprise, Enterprise.uscc == Award.uscc)
                             .join(Application, Application.id == Award.application_id)
                             .where(Award.window_id == window_id).order_by(Award.id)).all()
            reviewed = _final_statuses(s, window_id)

            def by_review(a: Award) -> bool:
                got = reviewed.get((a.application_id, a.benefit_id, "" if a.subject_id == a.uscc else a.subject_id))
                return got is not None and got[1] is not None

            awards = [AwardView(uscc=a.uscc, enterprise_name=name, application_id=a.application_id,
                                benefit_id=a.benefit_id, title=titles.get(a.benefit_id, ""), subject_id=a.subject_id,
                                amount_cny=None if a.amount_cny is None else float(a.amount_cny),
                                amount_provisional=a.amount_provisional, device_class=a.device_class,
                                origin=a.origin, channel=channel, amount_reviewed=by_review(a))
                      for a, name, channel in rows]
            return AwardList(window=W.view(w), final=True, awards=_worded(awards, db, w.ruleset_version),
                             totals=totals_of(awards))
        if w.evaluated_at is None:
            raise Conflict(f"申报批次 {window_id} 尚未判定，请先执行批量判定")
        cands, refused = proposed(s, window_id)
        awards = _worded([_view(c, titles) for c in cands], db, w.ruleset_version)
        return AwardList(window=W.view(w), final=False, awards=awards, already_awarded=refused,
                         totals=totals_of(awards))


def publish_preview(db: Database, window_id: str, today: date | None = None) -> dict:
    """What 公示 would publish, for the confirmation step: the awards on the list, their total,
    the period it would run, and what stops it now (the reasons `publish` would refuse)."""
    today = today or shanghai_today()
    with db.read_session() as s:
        w = W.get(s, window_id)
        cands, refused = proposed(s, window_id) if w.evaluated_at else ([], [])
        blocked = []
        for check in (lambda: _publishable(s, w, today), lambda: _refuse_unpriced(cands, "公示")):
            try:
                check()
            except Conflict as e:
                blocked.append(e.message)
        rejected = rejected_materials(s, db, w, cands) if w.evaluated_at else []
        if rejected:
            blocked.append(_held_by_rejections(rejected, "公示").message)
        start = until = None
        if not blocked:
            try:
                doing = "公示拟支持名单（计算公示期）"
                start, until = next_workday(today, doing), add_workdays(today, w.publicity_workdays, doing)
            except Conflict as e:
                blocked.append(e.message)
        return {"awards": len(cands), "amount_cny": sum(c.amount_cny or 0 for c in cands),
                "provisional_awards": sum(1 for c in cands if c.amount_provisional),
                "provisional_amount_cny": sum(c.amount_cny or 0 for c in cands if c.amount_provisional),
                "applications": len({c.application_id for c in cands}), "already_awarded": len(refused),
                "publicity_from": start, "publicity_until": until, "workdays": w.publicity_workdays,
                "blocked": blocked,
                # 一次告知 not given yet: these applicants would be refused without having been told
                "untold": len(to_be_told_quickly(s, window_id)) if w.evaluated_at and w.state == "open" else 0}


def _publishable(s: Session, w: Window, today: date) -> None:
    """Conflict unless the window can be published today (before its list is read)."""
    if w.state != "open":
        raise Conflict(f"“{w.label}”当前为“{W.view(w).state_text}”，不能公示")
    if today <= w.closes_on:
        raise Conflict(f"“{w.label}”受理期至 {cn_date(w.closes_on)}，受理期结束后才能公示")
    stale = W.stale_count(s, w)
    if stale:
        raise Conflict(f"还有 {stale} 份申报未按现行规则判定，请先执行批量判定")
    if w.evaluated_at is None and s.scalar(select(func.count()).where(Application.window_id == w.id)):
        raise Conflict(f"“{w.label}”尚未判定（或设定金额后尚未重新判定），请先执行批量判定")
    # 补正 is promised until its deadline: a list published before then would miss the
    # applications still being corrected.
    pending, last = corrections_running(s, w.id, today)
    if pending:
        raise Conflict(f"还有 {pending} 份申报在补正期限内（最晚至 {cn_date(last)}），补正期限届满后才能公示")


@bulk_work()
def publish(db: Database, window_id: str, *, actor: str | None = None, today: date | None = None):
    """公示: publish the proposed award list for the window's publicity period. Needs the
    acceptance period over and every applicant judged under the rules in force."""
    today = today or shanghai_today()
    with db.session() as s:
        w = W.get(s, window_id, lock=True)
        _publishable(s, w, today)
        cands, _ = proposed(s, window_id)
        blocked = rejected_materials(s, db, w, cands)
        if blocked:
            raise _held_by_rejections(blocked, "公示")
        _refuse_unpriced(cands, "公示")
        # 出具当日不计入: the period runs from the next working day, as 补正 deadlines count.
        doing = "公示拟支持名单（计算公示期）"
        start, until = next_workday(today, doing), add_workdays(today, w.publicity_workdays, doing)
        on_list = sorted({c.application_id for c in cands})
        move(s, window_id, on_list, "publicize", "publicized", utcnow(), actor)
        w.state, w.published_at = "publicity", utcnow()
        w.publicity_from, w.publicity_until = start, until
        audit.record(s, actor, "window.publish", window_id,
                     {"from": start.isoformat(), "until": until.isoformat(), "listed": len(on_list)})
        return W.view(w)


def _paid_elsewhere(s: Session, window_id: str, cands: list[Candidate]) -> list[str]:
    """Subjects of these candidates that the ledger holds for another window."""
    keys = {(c.benefit_id, c.subject_id) for c in cands}
    out = []
    for chunk in chunks(sorted({sub for _, sub in keys})):
        out += [sub for b, sub in s.connection().execute(select(Award.benefit_id, Award.subject_id).where(
            among(s, Award.subject_id, chunk), Award.window_id != window_id)) if (b, sub) in keys]
    return sorted(out)


@dataclass
class CloseResult:
    window_id: str
    awards: list[AwardView]
    already_awarded: list[dict]
    refused: list[str]          # applications refused: each received a 不予支持告知书
    partly_refused: list[str]   # applications paid for some grants and refused others: one too
    totals: Totals

    @property
    def non_support_notices(self) -> int:
        return len(self.refused) + len(self.partly_refused)


def close_preview(db: Database, window_id: str, today: date | None = None) -> dict:
    """What closing would do, for the confirmation step: how many awards, how much, how many
    不予支持 notices (as close counts them), and whether an early close (with a reason) is needed;
    what stops it (`rejected_materials`: awards held by a rejected material, close refuses
    until each is resolved) and what an early close cuts short (`corrections_running`: 补正
    deadlines not yet passed, the latest `corrections_until`) and what nobody looked at
    (`unreviewed_refusals`: applications that would be refused without any 复核; and
    `pending_materials`: uploaded files nobody has reviewed, with their applications; and
    `unsupplied_commitments`: materials promised by 容缺承诺 and not supplied yet; and
    `provisional_awards`: awards whose amount is a 参考金额 no official text sets, which the
    兑现通知书 will say). `blocked`:
    the reasons `close_window` would refuse now, each a sentence (`open_objections` among them)."""
    today = today or shanghai_today()
    with db.read_session() as s:
        w = W.get(s, window_id)
        blocked = _unclosable(s, w)
        decided: set[str] = set()
        not_eligible: set[str] = set()
        cands, refused = proposed(s, window_id, decided, not_eligible)
        apps_awarded = {c.application_id for c in cands}
        refusals = decided - apps_awarded
        early = w.state != "publicity" or w.publicity_until is None or today <= w.publicity_until
        running, until = corrections_running(s, window_id, today)
        reviewed = set(s.scalars(select(Review.application_id).join(Application, Application.id == Review.application_id)
                                 .where(Application.window_id == window_id)))
        names = {(b.id, m.id): m.name for b in rulesets.book_for(db, w.ruleset_version or
                                                                 rulesets.current().ruleset_version).benefits.values()
                 for m in b.spec.materials} if w.evaluated_at else {}
        unchecked: dict[str, dict] = {}
        for app_id, ent, b, m in s.execute(
                select(Material.application_id, Enterprise.name, Material.benefit_id, Material.material_id)
                .join(Application, Application.id == Material.application_id)
                .join(Enterprise, Enterprise.uscc == Application.uscc)
                .where(Application.window_id == window_id, Material.state == "pending")
                .order_by(Material.application_id, Material.id)):
            u = unchecked.setdefault(app_id, {"application_id": app_id, "enterprise_name": ent, "materials": []})
            u["materials"].append(names.get((b, m), "材料"))
        promised = _unsupplied_commitments(s, window_id, names)
        objections = open_objections(s, window_id)
        if w.evaluated_at:
            blocked += _close_blockers(s, db, w, cands, objections)
        return {"blocked": blocked, "open_objections": objections,
                "awards": len(cands), "amount_cny": sum(c.amount_cny or 0 for c in cands),
                "provisional_awards": sum(1 for c in cands if c.amount_provisional),
                "provisional_amount_cny": sum(c.amount_cny or 0 for c in cands if c.amount_provisional),
                "already_awarded": len(refused), "non_support_notices": len(refusals) + len(not_eligible & apps_awarded),
                "early": early, "stale": W.stale_count(s, w), "state": w.state,
                "rejected_materials": rejected_materials(s, db, w, cands) if w.evaluated_at else [],
                "corrections_running": running, "corrections_until": until,
                "unreviewed_refusals": len(refusals - reviewed),
                "provisional_criteria": _provisional_criteria(db, w),
                "pending_materials": sum(len(u["materials"]) for u in unchecked.values()),
                "pending_material_applications": list(unchecked.values()),
                "unsupplied_commitments": promised}


def _provisional_criteria(db: Database, w: Window) -> list[str]:
    """The grant conditions of the window's rules that no official text sets (暂定条件), with
    where they come from: a refusal resting on one should rest on the round's notice."""
    book = rulesets.book_for(db, w.ruleset_version or rulesets.current().ruleset_version)
    return list(dict.fromkeys(f"{c.text}（{c.provisional_note}）" if c.provisional_note else c.text
                              for b in book.benefits.values() if b.spec.kind == "grant"
                              for c in b.criteria if c.provisional))


def _unclosable(s: Session, w: Window) -> list[str]:
    """What in the window's own state stops its close, each in a sentence: closed already, not
    publicized, not judged, or judged under other rules than those in force."""
    if w.state == "closed":
        return [f"“{w.label}”已关闭"]
    out = []
    if w.state == "open":       # 公示 before 兑现: nothing is paid on a list nobody could object to
        out.append(f"“{w.label}”尚未公示：拟支持名单须先公示（受理期结束后），才能关闭批次并兑现")
    if w.evaluated_at is None:
        out.append(f"“{w.label}”尚未判定，请先执行批量判定")
    stale = W.stale_count(s, w)
    if stale:
        out.append(f"还有 {stale} 份申报未按现行规则（{ruleset_text(rulesets.current().ruleset_version)}）"
                   "判定，请先执行批量判定再关闭")
    return out


def _close_blockers(s: Session, db: Database, w: Window, cands: list[Candidate],
                    objections: list[dict] | None = None) -> list[str]:
    """What stops closing, each in a sentence: awards held by a rejected file, awards without
    an amount and objections of the 公示 nobody has answered (an award contested in 公示 is
    paid only once staff have recorded how the objection was handled)."""
    out = []
    rejected = rejected_materials(s, db, w, cands)
    if rejected:
        out.append(_held_by_rejections(rejected, "关闭批次").message)
    try:
        _refuse_unpriced(cands, "关闭批次")
    except Conflict as e:
        out.append(e.message)
    open_ = open_objections(s, w.id) if objections is None else objections
    if open_:
        shown = "；".join(f"{o['enterprise_name']}（{o['application_id']}）" for o in open_[:5])
        more = f"等共 {len(open_)} 项" if len(open_) > 5 else ""
        out.append(f"有 {len(open_)} 项公示期异议尚未处理：{shown}{more}。请先在申报页面写明处理意见"
                   "（需要改变结论的，先复核），再关闭批次")
    return out


def open_objections(s: Session, window_id: str) -> list[dict]:
    """Objections raised in the window's 公示 and not answered yet, oldest first."""
    return [{"id": o.id, "application_id": o.application_id, "enterprise_name": name, "text": o.text,
             "raised_at": o.raised_at}
            for o, name in s.execute(select(Objection, Enterprise.name)
                                     .join(Application, Application.id == Objection.application_id)
                                     .join(Enterprise, Enterprise.uscc == Application.uscc)
                                     .where(Objection.window_id == window_id, Objection.resolved_at.is_(None))
                                     .order_by(Objection.id))]


def _unsupplied_commitments(s: Session, window_id: str, names: dict) -> list[dict]:
    """容缺承诺 of the window whose material has not been supplied yet (a case may close and pay
    before the promise's deadline; staff should know which promises are still open)."""
    rows = s.execute(select(Commitment, Enterprise.name).join(Application, Application.id == Commitment.application_id)
                     .join(Enterprise, Enterprise.uscc == Application.uscc)
                     .where(Application.window_id == window_id).order_by(Commitment.due_on, Commitment.id)).all()
    if not rows:
        return []
    apps = sorted({c.application_id for c, _ in rows})
    mats: dict[str, list] = {}
    for chunk in chunks(apps):
        for m in s.execute(select(Material).where(Material.application_id.in_(chunk))).scalars():
            mats.setdefault(m.application_id, []).append(m)
    return [{"application_id": c.application_id, "enterprise_name": ent,
             "material": names.get((c.benefit_id, c.material_id), "材料"), "due_on": c.due_on}
            for c, ent in rows if not supplied(c, mats.get(c.application_id, []))]


@bulk_work()
def close_window(db: Database, window_id: str, *, actor: str | None = None, reason: str | None = None,
                 today: date | None = None) -> CloseResult:
    """Close the window: its awards go into the ledger, exactly once per subject (the ledger's
    unique key decides races), and every applicant whose grant subjects failed or stayed
    unknown receives a 不予支持告知书. Only after the 公示 period — or earlier with a written
    reason — and only on decisions made under the rules in force."""
    today = today or shanghai_today()
    reason = (reason or "").strip() or None
    with db.session() as s:
        w = W.get(s, window_id, lock=True)
        titles, version = _titles(db, w), w.ruleset_version
        unclosable = _unclosable(s, w)
        if unclosable:              # the first reason; the confirmation page lists them all
            raise Conflict(unclosable[0])
        early = w.state != "publicity" or w.publicity_until is None or today <= w.publicity_until
        if early and not reason:
            until = f"公示期至 {cn_date(w.publicity_until)}" if w.publicity_until else "尚未公示"
            raise ValidationFailed([RowProblem(f"{until}；提前关闭须写明理由", path="reason")])
        decided_apps: set[str] = set()
        refused_apps: set[str] = set()
        cands = grant_decisions(s, window_id, eligible_only=True, decided_apps=decided_apps,
                                refused_apps=refused_apps)
        for problem in _close_blockers(s, db, w, cands):
            raise Conflict(problem)
        # Paid by another window after this one was judged: judging again gives them their
        # reason (not_awarded_before fails), which their 不予支持告知书 must state.
        paid = _paid_elsewhere(s, window_id, cands)
        if paid:
            raise Conflict(f"有 {len(paid)} 项拟支持的注册证在本批次判定后已在其他批次兑现（如 {paid[0]}），"
                           "请先重新执行批量判定，再关闭")
        now = utcnow()
        # the ledger's unique key decides a race with another window's close
        insert_rows(s.connection(), Award.__table__,
                    ("benefit_id", "subject_id", "window_id", "uscc", "application_id", "evaluation_id", "amount_cny",
                     "amount_provisional", "device_class", "origin", "awarded_at"),
                    ((c.benefit_id, c.subject_id, window_id, c.uscc, c.application_id, c.evaluation_id,
                      None if c.amount_cny is None else Decimal(str(c.amount_cny)), c.amount_provisional,
                      c.device_class, c.origin, now) for c in cands),
                    skip_conflicts_on=("benefit_id", "subject_id"))
        held: dict[tuple, tuple] = {}
        for chunk in chunks(list({c.subject_id for c in cands})):
            for b, sub, wid, dec in s.connection().execute(
                    select(Award.benefit_id, Award.subject_id, Award.window_id, Award.evaluation_id)
                    .where(among(s, Award.subject_id, chunk))):
                held[(b, sub)] = (wid, dec)
        awards, already = [], []
        for c in cands:
            wid, dec = held[(c.benefit_id, c.subject_id)]
            if dec == c.evaluation_id and wid == window_id:
                awards.append(_view(c, titles))
            else:
                already.append({"uscc": c.uscc, "benefit_id": c.benefit_id, "subject_id": c.subject_id,
                                "awarded_in_window": wid,
                                "reason": f"该注册证已在申报批次 {wid} 获得支持，不重复支持"})
        awarded_apps = {a.application_id for a in awards}
        refused = sorted(decided_apps - awarded_apps)
        # A refused application, and one paid for one certificate and refused another, is told
        # of the refusal, its reasons and the route of review in a 不予支持告知书 (of the refused
        # items only), numbered when first issued, as a 兑现通知书 is: when the enterprise or
        # staff first open it or bundle the window's notices. A close of 100,000 applications
        # writes no row it does not need (a numbered notice each was 179 bytes on PostgreSQL).
        partly = sorted(refused_apps & awarded_apps)
        move(s, window_id, sorted(awarded_apps), "award", "awarded", now, actor)
        move(s, window_id, refused, "refuse", "refused", now, actor)
        w.state, w.closed_at, w.close_reason = "closed", now, reason
        totals = totals_of(awards)
        audit.record(s, actor, "window.close", window_id,
                     {"awards": len(awards), "already_awarded": len(already), "refused": len(refused),
                      "amount_cny": totals.amount_cny, "early_reason": reason})
    return CloseResult(window_id, _worded(awards, db, version), already, refused, partly, totals)


def proactive(db: Database, window_id: str) -> list[dict]:
    """免申即享 / 政策找企业: known enterprises that did not apply in this window but are
    eligible for a grant, with what each would receive (tax preferences never appear)."""
    with db.read_session() as s:
        w = W.get(s, window_id)
        if w.evaluated_at is None:
            raise Conflict(f"申报批次 {window_id} 尚未判定，请先执行批量判定")
        titles = _titles(db, w)
        out: dict[str, dict] = {}
        rows = s.connection().execute(
            select(Evaluation.uscc, Evaluation.grants, Evaluation.ruleset_seq, Enterprise.name)
            .join(Enterprise, Enterprise.uscc == Evaluation.uscc)
            .where(Evaluation.window_id == window_id, Evaluation.application_id.is_(None),
                   Evaluation.grants.is_not(None))
            .order_by(Evaluation.uscc))
        ids = rulesets.GrantIds(s)
        for uscc, packed, seq, name in rows:
            for benefit_id, subject_id, status, amount, provisional in sorted(unpack_grants(packed, ids[seq])):
                if status != "eligible":
                    continue
                e = out.setdefault(uscc, {"uscc": uscc, "name": name, "benefits": [], "total_amount_cny": 0.0,
                                          "amount_provisional": False})
                amount = None if amount is None else float(amount)
                e["benefits"].append({"benefit_id": benefit_id, "title": titles.get(benefit_id, ""),
                                      "subject_id": subject_id, "amount_cny": amount,
                                      "amount_provisional": provisional})
                e["total_amount_cny"] += amount or 0
                e["amount_provisional"] |= provisional
        return list(out.values())


def awarded_among(db: Database, subject_ids: list[str]) -> set[str] | None:
    """The ledger entries (`benefit_id|subject_id`) of these subjects — what a self-check of
    one profile needs; None when the store cannot answer (the criterion is then unknown)."""
    if not subject_ids:
        return set()
    try:
        with db.read_session() as s:
            rows = s.execute(select(Award.benefit_id, Award.subject_id)
                             .where(Award.subject_id.in_(sorted(set(subject_ids)))))
            return {f"{b}|{sub}" for b, sub in rows}
    except SQLAlchemyError:
        return None
