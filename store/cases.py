"""The window as a case process: 受理 → 判定 → 一次告知 → 补正 → 复核 → 公示 → 兑现.

Each action here is one transaction with its history entry (store.audit.event): a crash leaves
an application in its previous state or the next, never in between. Staff actions carry the
revision of the application they were made on; a concurrent action that changed it first
wins, and the other gets a Conflict naming the current state.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterator, Optional, Sequence

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import Evaluator
from engine.profile import ProfileError, parse_profile, shanghai_today
from engine.results import BenefitResult, Conflict as TaxConflict, TaxItem
from engine.vocabulary import APPLICATION_STATE, STATUS, cn_date, cn_time, money
from engine.workdays import service_limits
from store import applications as A, audit, files, profiles, rulesets, sessions
from store import decisions as D
from store import windows as W
from store.applications import Intake, chunks, store_enterprises
from store.db import Database
from store.errors import Conflict, NotFound, RowProblem, ValidationFailed
from store.evaluation import judge_now
from store.models import (Application, ApplicationEvent, Commitment, Enterprise, Evaluation, Material,
                          Notice, Objection, Review, Window, utcnow)
from store.notices import KINDS, assign_number
from store.views import (CommitmentView, EventView, MaterialView, NoticeRef, ReviewView, WindowView,
                         correction_expired, state_text)
from store.workdays import add_workdays

MATERIAL_STATE = {"pending": "待审核", "accepted": "已通过", "rejected": "未通过"}
# Where the 补正 deadline is still worth showing; once 公示, 兑现 or 不予支持 it is history.
DEADLINE_STATES = ("correction", "corrected", "failed")
ACTION_TEXT = {
    "submit": "提交申报", "resubmit": "重新提交申报", "judge": "判定", "notice.one_time": "发出一次性告知书",
    "correction": "补正", "material.upload": "上传材料", "material.accept": "材料审核通过",
    "material.reject": "材料审核未通过", "commitment": "签署容缺承诺", "commitment.supply": "补交承诺的材料", "review.confirm": "复核：维持判定",
    "review.override": "复核：改变判定", "publicize": "列入拟支持名单公示", "objection": "公示期异议",
    "objection.resolve": "异议处理", "award": "兑现", "refuse": "不予支持", "notice.non_support": "发出不予支持告知书",
    "migrate": "系统升级时迁入（0.1.0 版的申报）", "access_code.reissue": "重新生成查询码",
}


# --- reading an application ------------------------------------------------------------------
class GrantView(BaseModel):
    """One grant decision as the application page shows it."""
    result: BenefitResult
    final_status: str
    final_status_text: str
    review: Optional[ReviewView] = None
    materials: list[MaterialView] = Field(default_factory=list, description="为该注册证（事项）上传的材料")
    commitments: list[str] = Field(default_factory=list, description="已签署容缺承诺的材料（材料编号）")
    promised: list[CommitmentView] = Field(default_factory=list, description="已签署的容缺承诺：材料、承诺人、期限")


class CorrectionAsk(BaseModel):
    """What a 补正 asks for: every missing fact (profile path), every missing material and
    every material whose file was rejected (to be uploaded again), per subject."""
    facts: list[str]
    fact_labels: list[str] = Field(default_factory=list, description="facts 各项的名称，与 facts 一一对应")
    # {benefit_id, subject_id, material_id, name, deferrable, rejected, reason}
    materials: list[dict]
    due: Optional[date]
    open: bool                     # the enterprise may submit its correction now


class ApplicationDetail(BaseModel):
    application_id: str
    window: WindowView
    enterprise: dict
    channel: str
    state: str
    state_text: str = Field(description="办理状态；待补正而期限已过时为“补正期限已过”")
    revision: int
    submitted_at: datetime = Field(description="提交时间")
    correction_due: Optional[date] = Field(None, description="一次性告知书起算的补正期限（出具后不变）")
    correction_deadline: Optional[date] = Field(
        None, description="页面应显示的补正期限：待补正、已补正时同 correction_due；公示、兑现、不予支持后为空")
    correction_open: bool = Field(False, description="企业现在可以提交补正")
    correction_expired: bool = Field(False, description="待补正而补正期限已过（不能再补正）")
    claims: Optional[list[str]] = None
    profile: dict
    ruleset_version: Optional[str] = None
    evaluation_error: Optional[str] = None
    stale: bool = Field(False, description="结果是按此前提交的内容判定的：重新提交的内容尚待判定")
    no_longer_needed: list[str] = Field(default_factory=list, description=(
        "一次性告知书要求、补正未提供，而按补正后的内容重新判定已不再需要的材料"))
    judged_profile: Optional[dict] = Field(None, description="stale 时：结果所依据的（此前提交的）画像")
    grants: list[GrantView] = Field(default_factory=list)
    tax: list[TaxItem] = Field(default_factory=list, description="税收优惠：企业自行判别，不是园区的决定")
    tax_conflicts: list[TaxConflict] = Field(default_factory=list, description="只能选择其一的税收优惠")
    notices: list[NoticeRef] = Field(default_factory=list, description="已出具（已编号）的告知书")
    events: list[EventView] = Field(default_factory=list)
    objections: list[dict] = Field(default_factory=list, description="公示期异议（企业查看时不提供）")
    correction: Optional[CorrectionAsk] = None

    @computed_field(description="现在可以查看或下载的告知书种类（kind，用于 …/notices/{kind}）：one_time 一次性告知书、"
                                "award 兑现通知书、non_support 不予支持告知书、tax_self_assessment 税收优惠自行判别结果。"
                                "含已出具的（notices）和第一次查看或打包时编号出具的")
    @property
    def available_notices(self) -> list[str]:
        out = {n.kind for n in self.notices}
        if self.tax:
            out.add("tax_self_assessment")
        if self.state == "awarded":
            out.add("award")
        # refused, or paid for some grants and refused others: a 不予支持告知书 is due
        if self.state == "refused" or (self.state == "awarded" and any(g.final_status != "eligible"
                                                                       for g in self.grants)):
            out.add("non_support")
        return [k for k in KINDS if k in out]

    def for_enterprise(self) -> "ApplicationDetail":
        """What the enterprise itself may read (its access code): not the objections raised
        against it in 公示 (who raised them, and how to reach them), nor who at the park did
        each step and the details staff recorded."""
        def grant(g: GrantView) -> GrantView:
            return g.model_copy(update={
                "review": g.review and g.review.model_copy(update={"actor": ""}),
                "materials": [m.model_copy(update={"uploaded_by": ""}) for m in g.materials]})
        return self.model_copy(update={
            "objections": [], "grants": [grant(g) for g in self.grants],
            "events": [e.model_copy(update={"actor": "", "details": None}) for e in self.events]})


@dataclass
class Loaded:
    app: Application
    window: Window
    enterprise: Enterprise
    profile: dict
    evaluation: Optional[Evaluation]
    ev: Optional[Evaluator]
    results: list[BenefitResult]
    judged: Optional[dict] = None       # the profile the results were decided on


def _load(s: Session, db: Database, application_id: str, *, lock: bool = False, suggest: bool = False,
          basis: Optional[Notice] = None) -> Loaded:
    """The application and its results: of its current evaluation, or (`basis`) of the
    evaluation a notice was issued on."""
    q = select(Application).where(Application.id == application_id)
    if lock:
        q = q.with_for_update()
    app = s.execute(q).scalar_one_or_none() if isinstance(application_id, str) and \
        len(application_id) <= 32 and "\x00" not in application_id else None
    if app is None:
        raise NotFound(f"申报 {application_id} 不存在")
    w = s.get(Window, app.window_id)
    ent = s.get(Enterprise, app.uscc)
    profile = profiles.read(s, app.snapshot_hash)
    evaluation = s.execute(select(Evaluation).where(Evaluation.window_id == app.window_id,
                                                    Evaluation.uscc == app.uscc)).scalar_one_or_none()
    if basis is not None:
        evaluation = Evaluation(id=basis.basis_evaluation_id, window_id=app.window_id, uscc=app.uscc,
                                application_id=app.id, ruleset_version=basis.basis_ruleset_version,
                                profile_hash=basis.basis_profile_hash, results=basis.basis_results, error=None)
    ev, results, stored = None, [], None
    if evaluation is not None and evaluation.results is not None:
        ev = rulesets.evaluator_for(db, evaluation.ruleset_version)
        stored = profiles.read(s, evaluation.profile_hash)
        if basis is not None:       # the notice as issued: what the enterprise had given then
            profile = stored
        decided = rulesets.decisions_of(db, evaluation.ruleset_version, evaluation.results, s)
        resp = D.explain(ev, stored, w.as_of, W.context(w), decided)
        if suggest:          # what would change each verdict, for the pages and the one-time notice
            resp = ev.with_suggestions(stored, resp, W.context(w))
        results = resp.results
    return Loaded(app, w, ent, profile, evaluation, ev, results, stored)


def _reviews(s: Session, app: Application, evaluation: Optional[Evaluation],
             until: datetime | None = None) -> dict[tuple, Review]:
    """The latest review of each grant decision of the evaluation (made by `until`)."""
    if evaluation is None:
        return {}
    out: dict[tuple, Review] = {}
    q = select(Review).where(Review.application_id == app.id, Review.evaluation_id == evaluation.id)
    if until is not None:
        q = q.where(Review.at <= until)
    for r in s.execute(q.order_by(Review.id)).scalars():
        out[(r.benefit_id, r.subject_id)] = r
    return out


def final_status(result: BenefitResult, review: Optional[Review]) -> str:
    return review.status if review is not None else result.status


def subject_of(r: BenefitResult) -> str:
    return r.subject.id if r.subject else ""


def counts_for(row, benefit_id: str, subject_id: str) -> bool:
    """A material or commitment row counts for this grant decision: same benefit and subject
    ("" from before materials had a subject counts for every subject of the benefit)."""
    return row.benefit_id == benefit_id and row.subject_id in (subject_id, "")


def latest_files(mats: list[Material], benefit_id: str, subject_id: str) -> dict[str, Material]:
    """material id → its newest upload for this decision: a rejected file stands until a
    newer one is uploaded."""
    out: dict[str, Material] = {}
    for m in sorted(mats, key=lambda m: m.id):
        if counts_for(m, benefit_id, subject_id):
            out[m.material_id] = m
    return out


def standing_rejections(s: Session, window_id: str, decisions: list[tuple[str, str, str]]
                        ) -> dict[tuple[str, str, str], list[Material]]:
    """For (application, benefit, subject) decisions of a window: the materials whose newest
    file stands rejected (no newer upload), or replaces a rejected one and is not reviewed yet
    (a file once refused is paid on only when its replacement has passed)."""
    by_benefit: dict[tuple, list[Material]] = {}
    for m in s.execute(select(Material).join(Application, Application.id == Material.application_id)
                       .where(Application.window_id == window_id, Material.state == "rejected")).scalars():
        by_benefit.setdefault((m.application_id, m.benefit_id), [])
    if not by_benefit:
        return {}
    for chunk in chunks(sorted({a for a, _ in by_benefit})):
        for m in s.execute(select(Material).where(Material.application_id.in_(chunk))).scalars():
            if (m.application_id, m.benefit_id) in by_benefit:
                by_benefit[(m.application_id, m.benefit_id)].append(m)
    out = {}
    for app_id, b, sub in decisions:
        mats = by_benefit.get((app_id, b))
        refused = {m.material_id for m in mats if m.state == "rejected" and counts_for(m, b, sub)} if mats else ()
        bad = [m for m in latest_files(mats, b, sub).values()
               if m.state == "rejected" or (m.state == "pending" and m.material_id in refused)] if mats else []
        if bad:
            out[(app_id, b, sub)] = bad
    return out


def detail(db: Database, application_id: str, *, today: date | None = None,
           as_issued: str | None = None) -> ApplicationDetail:
    """The application as its page shows it; with `as_issued` (a notice kind), its results and
    reviews as they stood when that notice was issued (one-time notices keep that basis)."""
    with db.read_session() as s:
        notice = None
        if as_issued:
            notice = s.execute(select(Notice).where(Notice.application_id == application_id,
                                                    Notice.kind == as_issued)).scalar_one_or_none()
            if notice is not None and notice.basis_results is None:
                notice = None
        L = _load(s, db, application_id, suggest=True, basis=notice)
        return _detail(s, L, today or shanghai_today(), until=notice.created_at if notice else None)


def _detail(s: Session, L: Loaded, today: date, until: datetime | None = None) -> ApplicationDetail:
    app = L.app
    reviews = _reviews(s, app, L.evaluation, until)
    mats = s.execute(select(Material).where(Material.application_id == app.id).order_by(Material.id)).scalars().all()
    commits = s.execute(select(Commitment).where(Commitment.application_id == app.id)).scalars().all()
    grants = []
    for r in L.results:
        if r.kind != "grant" or not _claimed(app, r):
            continue
        sid = subject_of(r)
        rv = reviews.get((r.benefit_id, sid))
        # every material of the benefit by name: a file uploaded for one no longer required
        # (a change document once the product is stated self-developed) is still named
        names = {**({m.id: m.name for m in L.ev.book.benefits[r.benefit_id].spec.materials}
                    if L.ev is not None and r.benefit_id in L.ev.book.benefits else {}),
                 **{m.id: m.name for m in r.required_materials}}
        st = final_status(r, rv)
        mine = [c for c in commits if counts_for(c, r.benefit_id, sid)]
        grants.append(GrantView(
            result=r, final_status=st, final_status_text=STATUS.get(st, st),
            review=ReviewView.model_validate(rv) if rv else None,
            materials=[_material_view(m, names, L.window.state == "closed")
                       for m in mats if counts_for(m, r.benefit_id, sid)],
            commitments=[c.material_id for c in mine],
            promised=[CommitmentView(material_id=c.material_id, name=names.get(c.material_id, c.material_id),
                                     subject_id=c.subject_id, signer=c.signer, signed_at=c.signed_at,
                                     due_on=c.due_on, supplied=supplied(c, mats)) for c in mine]))
    notices = s.execute(select(Notice).where(Notice.application_id == app.id).order_by(Notice.id)).scalars().all()
    events = audit.history(s, app.id)
    objections = s.execute(select(Objection).where(Objection.application_id == app.id)
                           .order_by(Objection.id)).scalars().all()
    tax_results = [r for r in L.results if r.kind == "tax"]
    tax, conflicts = [], []
    if L.ev is not None and tax_results:
        year = next((r.tax_year for r in tax_results if r.tax_year), L.ev.tax_year_of(L.window.as_of))
        tax, conflicts = L.ev.tax_view(tax_results, year)
    ask = _ask(L, grants, commits, mats, today)
    return ApplicationDetail(
        application_id=app.id, window=W.view(L.window), enterprise={"uscc": L.enterprise.uscc, "name": L.enterprise.name},
        channel=app.channel, state=app.state, state_text=state_text(app.state, app.correction_due, today),
        revision=app.revision, submitted_at=app.submitted_at, correction_due=app.correction_due,
        # 补正 ends with the acceptance's window: once publicized or closed, the date is history
        correction_deadline=app.correction_due if app.state in DEADLINE_STATES and L.window.state == "open" else None,
        correction_open=ask.open,
        correction_expired=correction_expired(app.state, app.correction_due, today),
        claims=app.claims, profile=L.profile,
        ruleset_version=L.evaluation.ruleset_version if L.evaluation else None,
        evaluation_error=L.evaluation.error if L.evaluation else None,
        stale=(stale := L.evaluation is not None and L.evaluation.profile_hash != app.snapshot_hash),
        no_longer_needed=next((list(e.details.get("no_longer_needed") or []) for e in reversed(events)
                               if e.action == "correction" and isinstance(e.details, dict)), []),
        judged_profile=L.judged if stale else None,
        grants=grants, tax=tax, tax_conflicts=conflicts,
        notices=[NoticeRef(kind=n.kind, title=KINDS[n.kind].title, number=n.number, issued_on=n.issued_on)
                 for n in notices],
        events=[EventView(at=e.at, actor=e.actor, action=e.action, action_text=_event_text(e, L.ev),
                          from_state=e.from_state, to_state=e.to_state, details=e.details) for e in events],
        objections=[{"id": o.id, "text": o.text, "raised_by": o.raised_by, "raised_at": o.raised_at,
                     "resolution": o.resolution, "resolved_at": o.resolved_at} for o in objections],
        correction=ask)


def _event_text(e, ev: Optional[Evaluator]) -> str:
    """An entry of the history as staff read it: the step, and the material it concerns by name
    (签署容缺承诺：企业信用报告), never its code."""
    text = ACTION_TEXT.get(e.action, e.action)
    details = e.details if isinstance(e.details, dict) else {}
    if details.get("undo"):
        text = "复核：撤销此前的改判，恢复规则判定"
    mid = details.get("material_id")
    if mid and ev is not None:
        name = next((m.name for b in ev.book.benefits.values() for m in b.spec.materials if m.id == mid), None)
        if name:
            text += f"：{name}"
    if e.action.startswith("review.") and details.get("status") in STATUS:     # what the review decided
        said = [f"注册证 {details['subject_id']}"] if details.get("subject_id") else []
        if details.get("engine_status") in STATUS and details["engine_status"] != details["status"]:
            said.append(f"{STATUS[details['engine_status']]} → {STATUS[details['status']]}")
        else:
            said.append(STATUS[details["status"]])
        if details.get("amount_cny"):
            said.append(f"支持金额 {money(float(details['amount_cny']))}")
        text += "（" + "，".join(said) + "）"
    return text


def _claimed(app: Application, r: BenefitResult) -> bool:
    return r.subject is None or app.claims is None or r.subject.id in app.claims


def _material_view(m: Material, names: dict[str, str], closed: bool = False) -> MaterialView:
    # a file nobody reviewed before the case closed is no longer awaiting review
    text = "未审核（已办结）" if closed and m.state == "pending" else MATERIAL_STATE[m.state]
    return MaterialView(id=m.id, material_id=m.material_id, benefit_id=m.benefit_id, subject_id=m.subject_id,
                        name=names.get(m.material_id, m.material_id), filename=m.filename, size=m.size,
                        content_type=m.content_type, uploaded_at=m.uploaded_at, uploaded_by=m.uploaded_by,
                        state=m.state, state_text=text, reason=m.reason)


def _ask(L: Loaded, grants: list[GrantView], commits: list[Commitment], mats: list[Material],
         today: date) -> CorrectionAsk:
    """What the correction asks for: for a decision not (finally) eligible, its missing facts
    and the materials of its unmet criteria that were neither uploaded nor promised; for
    every decision, eligible or not, each material whose newest file was rejected."""
    facts: dict[str, None] = {}
    materials, asked = [], set()
    for g in grants:
        r = g.result
        sid = subject_of(r)
        latest = latest_files(mats, r.benefit_id, sid)
        promised = {c.material_id for c in commits if counts_for(c, r.benefit_id, sid)}
        open_ask = g.final_status != "eligible"
        if open_ask:
            for p in r.missing_facts:
                facts[p] = None
        # 容缺 defers a missing proof; a condition the facts already contradict stays unmet
        # whatever is promised, so its materials are asked for but cannot be promised
        deferrable = _deferrable(L.ev, r.benefit_id) - {
            mid for c in r.criteria if c.outcome == "fail" for mid in c.materials}
        shared = _enterprise_materials(L.ev, r.benefit_id)
        for m in r.required_materials:
            last = latest.get(m.id)
            rejected = last is not None and last.state == "rejected"
            missing = open_ask and m.id in r.missing_materials and last is None and m.id not in promised
            # a file about the enterprise is asked once, for all of its certificates ("" subject)
            msid = "" if m.id in shared else sid
            if (rejected or missing) and (r.benefit_id, msid, m.id) not in asked:
                asked.add((r.benefit_id, msid, m.id))
                materials.append({"benefit_id": r.benefit_id, "subject_id": msid, "material_id": m.id,
                                  "name": m.name, "deferrable": m.id in deferrable and m.id not in promised,
                                  "rejected": rejected, "reason": last.reason if rejected else None})
    due = L.app.correction_due
    labels = [L.ev.registry.label(p, L.profile) for p in facts] if L.ev else list(facts)
    return CorrectionAsk(facts=list(facts), fact_labels=labels, materials=materials, due=due,
                         open=L.app.state == "correction" and due is not None and today <= due)


def _enterprise_materials(ev: Optional[Evaluator], benefit_id: str) -> set[str]:
    if ev is None or benefit_id not in ev.book.benefits:
        return set()
    return {m.id for m in ev.book.benefits[benefit_id].spec.materials if m.scope == "enterprise"}


def _deferrable(ev: Optional[Evaluator], benefit_id: str) -> set[str]:
    if ev is None:
        return set()
    return {m.id for m in ev.book.benefits[benefit_id].spec.materials if m.deferrable}


# --- staff: issuing one-time notices -----------------------------------------------------------
def needs_correction(results: list[BenefitResult], app: Application, reviews: dict[tuple, Review]) -> bool:
    """Some claimed grant subject failed a criterion, lacks a fact or lacks a material, by its
    final verdict: a 复核 that turned a verdict to 不符合条件 is told to the enterprise too, which
    may answer it in the 补正."""
    return any(r.kind == "grant" and _claimed(app, r)
               and final_status(r, reviews.get((r.benefit_id, subject_of(r)))) in ("ineligible", "needs_info")
               for r in results)


def issue_one_time_notices(db: Database, window_id: str, *, actor: str | None = None,
                           today: date | None = None) -> int:
    """一次告知: every judged application whose grant subjects are not all eligible gets its
    one-time notice (numbered) and its 补正 deadline. Returns how many were issued."""
    today = today or shanghai_today()
    with db.session() as s:
        w = W.get(s, window_id, lock=True)
        due = _notices_issuable(s, w, today)
        issued = 0
        for L in _to_be_told(s, db, window_id, lock=True):
            n = assign_number(s, window_id, L.app.id, "one_time", today)
            e = L.evaluation                      # the notice reads as issued, whatever follows
            n.basis_evaluation_id, n.basis_ruleset_version = e.id, e.ruleset_version
            n.basis_profile_hash, n.basis_results = e.profile_hash, e.results
            _move(s, L.app, "correction", actor, "notice.one_time", {"due": due.isoformat()})
            L.app.correction_due = due
            issued += 1
        audit.record(s, actor, "window.one_time_notices", window_id, {"issued": issued, "due": due.isoformat()})
    return issued


def one_time_preview(db: Database, window_id: str, today: date | None = None) -> dict:
    """What 发出一次性告知书 would do, for its confirmation step: how many applications get one,
    the 补正 deadline it starts, and what stops it now (`blocked`)."""
    today = today or shanghai_today()
    with db.read_session() as s:
        w = W.get(s, window_id)
        try:
            due = _notices_issuable(s, w, today)
        except Conflict as e:
            return {"blocked": [e.message], "notices": 0, "due": None, "workdays": w.correction_workdays}
        told = to_be_told_quickly(s, window_id)
        return {"blocked": [], "notices": len(told), "due": due, "workdays": w.correction_workdays,
                "applications": [{"application_id": a, "enterprise_name": n} for a, n in told]}


def to_be_told_quickly(s: Session, window_id: str) -> list[tuple[str, str]]:
    """(application, enterprise name) of _to_be_told, read from the stored grant verdicts and
    the reviews instead of explaining every application (a confirmation page of a window of
    100,000 must not judge it again): the same rule, needs_correction's."""
    final: dict[tuple, str] = {}
    for _, app_id, b, sub, status, _, _ in W.claimed_grants(s, window_id, state="judged"):
        final[(app_id, b, sub)] = status
    for app_id, b, sub, status in s.execute(
            select(Review.application_id, Review.benefit_id, Review.subject_id, Review.status)
            .join(Evaluation, Evaluation.id == Review.evaluation_id)
            .where(Evaluation.window_id == window_id).order_by(Review.id)):
        if (app_id, b, sub) in final:
            final[(app_id, b, sub)] = status
    due = {app_id for (app_id, _, _), st in final.items() if st in ("ineligible", "needs_info")}
    rows = s.execute(select(Application.id, Enterprise.name).join(Enterprise, Enterprise.uscc == Application.uscc)
                     .where(Application.window_id == window_id, Application.state == "judged")
                     .order_by(Application.submitted_at)).all()
    return [(a, n) for a, n in rows if a in due]


def _notices_issuable(s: Session, w: Window, today: date) -> date:
    """The 补正 deadline notices issued today would give; Conflict when none can be issued."""
    if w.state != "open":
        raise Conflict(f"“{w.label}”当前为“{W.view(w).state_text}”，不能再发出一次性告知书")
    return add_workdays(today, w.correction_workdays, "发出一次性告知书（计算补正期限）")


def _to_be_told(s: Session, db: Database, window_id: str, lock: bool = False) -> Iterator[Loaded]:
    """The judged applications of the window whose one-time notice is due."""
    ids = s.scalars(select(Application.id).where(Application.window_id == window_id,
                                                 Application.state == "judged").order_by(Application.submitted_at)).all()
    for app_id in ids:
        L = _load(s, db, app_id, lock=lock)
        if needs_correction(L.results, L.app, _reviews(s, L.app, L.evaluation)):
            yield L


def _move(s: Session, app: Application, to: str | None, actor: str | None, action: str,
          details: dict | None = None) -> None:
    frm = app.state
    if to is not None:
        app.state = to
    app.revision += 1
    app.updated_at = utcnow()
    audit.event(s, app.id, actor, action, frm, to or frm, details)


def _expect(app: Application, revision: int | None) -> None:
    if revision is not None and revision != app.revision:
        raise Conflict(f"该申报已被他人更新（当前状态：{APPLICATION_STATE.get(app.state, app.state)}），"
                       "请刷新后重试")


# --- the enterprise: 补正 -------------------------------------------------------------------------
_PATH = re.compile(r"^([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+))?$")


def apply_facts(profile: dict, facts: dict[str, Any]) -> dict:
    """A copy of `profile` with the given paths set (`in_park`, `hnte_certificate.issued_on`,
    `device_registrations[1].origin`)."""
    out = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
           for k, v in profile.items()}
    for path, value in facts.items():
        m = _PATH.match(path)
        if m is None:
            raise ValidationFailed([RowProblem("无法识别的补正项", path=path[:60])])
        head, index, field = m.group(1), m.group(2), m.group(3)
        if index is not None:
            items = out.get(head)
            if not isinstance(items, list) or int(index) >= len(items):
                raise ValidationFailed([RowProblem("补正项指向不存在的记录", path=path)])
            items[int(index)] = {**items[int(index)], field: value} if field else value
        elif field is not None:
            obj = out.get(head)
            out[head] = {**(obj if isinstance(obj, dict) else {}), field: value}
        else:
            out[head] = value
    return out


def upload_path(benefit_id: str, subject_id: str | None, material_id: str) -> str:
    """The path naming an upload in errors: `files.{benefit}|{subject}|{material}` (the form
    field `file:{benefit}|{subject}|{material}`); `files.{material}` for an upload given
    without its subject."""
    return f"files.{material_id}" if subject_id is None else f"files.{benefit_id}|{subject_id}|{material_id}"


def _current_ask(s: Session, L: Loaded, today: date) -> CorrectionAsk:
    reviews = _reviews(s, L.app, L.evaluation)
    mats = s.execute(select(Material).where(Material.application_id == L.app.id)).scalars().all()
    commits = s.execute(select(Commitment).where(Commitment.application_id == L.app.id)).scalars().all()
    grants = [GrantView(result=r, final_status=final_status(r, reviews.get((r.benefit_id, subject_of(r)))),
                        final_status_text="") for r in L.results if r.kind == "grant" and _claimed(L.app, r)]
    return _ask(L, grants, commits, mats, today)


def _resolve_subject(asked: list[dict], benefit_id: str, material_id: str, path: str) -> tuple[str | None, list]:
    """The subject of an upload given without one: the only subject whose ask lists it."""
    subjects = {m["subject_id"] for m in asked if (m["benefit_id"], m["material_id"]) == (benefit_id, material_id)}
    if len(subjects) == 1:
        return subjects.pop(), []
    if not subjects:
        return None, [RowProblem("该材料不在一次性告知书的补正范围内", path=path)]
    return None, [RowProblem("该材料对多个注册证都需补正，请分别在对应注册证下上传", path=path)]


# What a 补正 left out, when the enterprise has not said it cannot provide it (`complete`).
LEFT_OUT_FACT, LEFT_OUT_FILE = "尚未填写", "尚未上传"


def submit_correction(db: Database, application_id: str, facts: dict[str, Any],
                      uploads: list[tuple], *, actor: str,
                      revision: int | None = None, today: date | None = None,
                      found: Sequence[RowProblem] = (), promises: dict[tuple, str] | None = None,
                      complete: bool = False, statement: str | None = None) -> ApplicationDetail:
    """The 补正 (`_submit_correction`). The same 补正 sent again after it was accepted (a retry
    after a timeout, a second tap on a phone) gets the application as that one left it, not an
    error: the enterprise cannot tell whether the first one arrived."""
    sent = _sent_digest(facts, uploads, promises, complete, statement)
    try:
        return _submit_correction(db, application_id, facts, uploads, actor=actor, revision=revision,
                                  today=today, found=found, promises=promises, complete=complete,
                                  statement=statement, sent=sent)
    except Conflict:
        with db.session() as s:
            last = s.scalar(select(ApplicationEvent.details).where(
                ApplicationEvent.application_id == application_id.strip().upper(),
                ApplicationEvent.action == "correction").order_by(ApplicationEvent.id.desc()).limit(1))
        if not found and isinstance(last, dict) and last.get("sent") == sent:
            return detail(db, application_id, today=today)
        raise


def _sent_digest(facts: dict[str, Any], uploads: list[tuple], promises: dict[tuple, str] | None,
                 complete: bool, statement: str | None) -> str:
    """What identifies one 补正 as sent: its facts, files (by content), promises, choice and 说明."""
    files_sent = sorted([*u[:-1], hashlib.sha256(u[-1]).hexdigest()] for u in uploads)
    said = json.dumps([facts, files_sent, sorted(map(list, (promises or {}).items())), bool(complete),
                       (statement or "").strip()], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(said.encode()).hexdigest()[:32]


def _submit_correction(db: Database, application_id: str, facts: dict[str, Any],
                       uploads: list[tuple], *, actor: str, revision: int | None, today: date | None,
                       found: Sequence[RowProblem], promises: dict[tuple, str] | None,
                       complete: bool, statement: str | None, sent: str) -> ApplicationDetail:
    """The enterprise's 补正 (one per opening: a rejected file reopens it): the missing facts
    it now states and the files for the materials asked, each
    (benefit_id, subject_id, material_id, filename, bytes) — the subject is the certificate
    the material was asked for ("" for the enterprise). The older
    (benefit_id, material_id, filename, bytes) is accepted while only one subject asks for
    that material. Judged again at once. `found`: problems the caller already found in the
    same form (a value that did not read); every problem is reported at once, and nothing is
    stored while there is one. `promises`: 容缺承诺 signed with this 补正, (benefit_id, subject_id,
    material_id) → signer, stored with it or not at all. `complete`: every fact and material
    asked must be given (or promised); each one left out is a problem (LEFT_OUT_FACT,
    LEFT_OUT_FILE) — the web form asks it until the enterprise ticks that it cannot provide the
    rest, since the 补正 is not opened again. Whatever `complete` says, a fact stated needs the
    proof the notice asked for it (`_unproven`). `statement`: the enterprise's 说明 (why it
    disagrees with a condition found not met, what its files show), kept with the 补正 for staff."""
    today = today or shanghai_today()
    problems: list[RowProblem] = list(found)
    statement = (statement or "").strip() or None
    if statement is not None and (len(statement) > 2000 or "\x00" in statement):
        problems.append(RowProblem("说明不能超过 2000 个字符，也不能含有控制字符", path="statement"))
    checked = []
    for u in uploads:
        b, sub, m, name, data = u if len(u) == 5 else (u[0], None, *u[1:])
        try:
            checked.append((b, sub, m, name, data, files.check(name, data, upload_path(b, sub, m))))
        except ValidationFailed as e:
            problems += e.problems
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        app = L.app
        if app.state == "corrected":        # sent already (a retry after a timeout, too): said so
            at = s.scalar(select(ApplicationEvent.at).where(ApplicationEvent.application_id == app.id,
                                                            ApplicationEvent.action == "correction")
                          .order_by(ApplicationEvent.id.desc()).limit(1))
            raise Conflict(f"补正已于 {cn_time(at)} 提交，一次性告知的补正只能提交一次；结果见申报详情"
                           if at else "补正已经提交，一次性告知的补正只能提交一次；结果见申报详情")
        _expect(app, revision)
        if app.state != "correction":
            raise Conflict(f"该申报当前为“{APPLICATION_STATE.get(app.state, app.state)}”，没有待补正的内容")
        if app.correction_due is None or today > app.correction_due:
            raise Conflict(f"补正期限已于 {cn_date(app.correction_due)} 截止")
        ask = _current_ask(s, L, today)
        unknown = [p for p in facts if p not in ask.facts]
        problems += [RowProblem("该项不在一次性告知书的补正范围内", path=p) for p in unknown]
        allowed = {(m["benefit_id"], m["subject_id"], m["material_id"]) for m in ask.materials}
        resolved = []
        for b, sub, m, name, data, media in checked:
            path = upload_path(b, sub, m)
            if sub is None:
                sub, wrong = _resolve_subject(ask.materials, b, m, path)
                problems += wrong
            elif (b, sub, m) not in allowed:
                problems.append(RowProblem("该材料不在一次性告知书的补正范围内", path=path))
            resolved.append((b, sub, m, name, data, media))
        given = {(b, sub, m) for b, sub, m, *_ in resolved}
        signed = {}
        for (b, sub, m), signer in (promises or {}).items():
            path = "signer:" + upload_path(b, sub, m)
            if (b, sub, m) in given:
                problems.append(RowProblem("已选择文件，无需再签署容缺承诺（二者选一）", path=path))
                continue
            if not any((x["benefit_id"], x["subject_id"], x["material_id"]) == (b, sub, m) and x["deferrable"]
                       for x in ask.materials):
                problems.append(RowProblem("该材料不能容缺后补", path=path))
                continue
            try:
                signed[(b, sub, m)] = _signer(signer, path)
            except ValidationFailed as e:
                problems += e.problems
        registry = rulesets.current().registry
        new_profile = apply_facts(L.profile, {p: v for p, v in facts.items() if p not in unknown})
        parsed = None
        try:
            parsed = parse_profile(new_profile, registry)
        except ProfileError as e:
            problems += [RowProblem(p.message, path=p.path) for p in e.problems]
        if parsed is None:
            raise ValidationFailed(problems)
        # With the facts readable, the 补正 is judged even when a file or a promise has a problem,
        # so that what it leaves out is said in the same answer (then all of it is rolled back).
        resolved = [r for r in resolved if r[1] is not None]
        for (b, sub, m), signer in signed.items():
            _promise(s, L, ask, b, sub, m, signer, actor, today)
        for b, sub, m, name, data, media in resolved:
            s.add(Material(application_id=app.id, material_id=m, benefit_id=b, subject_id=sub, filename=name[:200],
                           sha256=hashlib.sha256(data).hexdigest(), size=len(data), content_type=media,
                           uploaded_at=utcnow(), uploaded_by=actor, state="pending"))
        now = utcnow()
        snaps = store_enterprises(s, [Intake.of(parsed, app.claims, app.channel)], "application", now)
        app.snapshot_hash = snaps[app.uscc]
        s.flush()
        outcome = judge_now(s, app, L.window)
        moot: list[str] = []
        if outcome[0] == "ok":
            # What the notice asked and this 补正 still leaves open, judged with what it gives (a
            # fact can make another, or a material, moot): refused, and rolled back, until the
            # enterprise says it cannot provide it. A material asked, not given and no longer
            # asked is named, so that the enterprise knows it is not needed.
            s.flush()
            s.expire_all()          # the evaluation row was rewritten past the ORM
            judged = _load(s, db, app.id)
            after = _current_ask(s, judged, today)
            said = {p.path for p in problems}
            needed = _needed(judged)
            still = {(m["benefit_id"], m["subject_id"], m["material_id"]) for m in after.materials}
            later = [p for p in _unproven(ask, still, needed, given | set(signed))
                     + (_left_out(ask, after, needed) if complete else []) if p.path not in said]
            if problems or later:
                raise ValidationFailed(problems + later)
            moot = [m["name"] + (f"（注册证 {m['subject_id']}）" if m["subject_id"] else "") for m in ask.materials
                    if (key := (m["benefit_id"], m["subject_id"], m["material_id"])) not in still
                    and key not in given and key not in signed]
        elif problems:
            raise ValidationFailed(problems)
        for *_, data, _media in resolved:
            files.put(data)
        _move(s, app, "corrected" if outcome[0] == "ok" else "failed", actor, "correction",
              {"facts": sorted(facts), "files": [name[:100] for _, _, _, name, _, _ in resolved], "sent": sent,
               **({"no_longer_needed": moot} if moot else {}),
               **({"statement": statement[:2000]} if statement else {})})
    return detail(db, application_id, today=today)


def _needed(judged: Loaded) -> set[tuple]:
    """(benefit, subject, material) of every material a claimed grant still needs: not of a
    grant a condition has failed (its proofs are moot), nor one whose case no longer applies."""
    needed = set()
    for r in judged.results:
        if r.kind == "grant" and _claimed(judged.app, r) and r.status != "ineligible":
            shared = _enterprise_materials(judged.ev, r.benefit_id)
            needed |= {(r.benefit_id, "" if m.id in shared else subject_of(r), m.id) for m in r.required_materials}
    return needed


def _unproven(before: CorrectionAsk, still: set[tuple], needed: set[tuple], supplied: set[tuple]) -> list[RowProblem]:
    """The materials the one-time notice asked as the proof of a condition that the facts
    stated in this 补正 now meet, neither uploaded nor promised: a stated fact needs the proof
    the notice asked for (or, for a deferrable one, a 容缺承诺). A material is moot only where
    the decision no longer needs it: its case no longer applies (a 注册变更文件 once the product
    is stated to be self-developed), or a condition has failed. `still`: what the 补正 still asks."""
    out = []
    for m in before.materials:
        key = (m["benefit_id"], m["subject_id"], m["material_id"])
        if key in needed and key not in still and key not in supplied and not m["rejected"]:
            out.append(RowProblem(
                f"填写的情况须有证明材料：请上传“{m['name']}”" + ("，或签署容缺承诺后补" if m["deferrable"] else ""),
                path=upload_path(*key)))
    return out


def _left_out(before: CorrectionAsk, after: CorrectionAsk, needed: set[tuple]) -> list[RowProblem]:
    """The facts and materials the one-time notice asked (`before`) that are still asked `after`,
    but a proof the decision no longer needs (a condition the 补正 made fail)."""
    asked = {(m["benefit_id"], m["subject_id"], m["material_id"]) for m in before.materials}
    return [RowProblem(LEFT_OUT_FACT, path=p) for p in after.facts if p in before.facts] + [
        RowProblem(LEFT_OUT_FILE, path=upload_path(*key))
        for m in after.materials if (key := (m["benefit_id"], m["subject_id"], m["material_id"])) in asked
        and (key in needed or m["rejected"])]


def commit_material(db: Database, application_id: str, benefit_id: str, material_id: str, signer: str,
                    *, actor: str, subject_id: str | None = None, today: date | None = None) -> None:
    """容缺受理、告知承诺: promise a deferrable material of one subject (the certificate it was
    asked for; "" for the enterprise) with a signed commitment. Without `subject_id` the
    promise covers every subject whose 补正 asks for that material."""
    today = today or shanghai_today()
    signer = _signer(signer)
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        if L.app.state not in ("correction", "judged", "corrected"):
            raise Conflict(f"该申报当前为“{APPLICATION_STATE.get(L.app.state, L.app.state)}”，不能签署承诺")
        _promise(s, L, _current_ask(s, L, today), benefit_id, subject_id, material_id, signer, actor, today)


def _signer(signer: str, path: str = "signer") -> str:
    signer = (signer or "").strip()
    if not 1 <= len(signer) <= 50 or "\x00" in signer:
        raise ValidationFailed([RowProblem("请填写承诺人姓名（1 至 50 个字符）", path=path)])
    return signer


def _promise(s: Session, L: Loaded, ask: CorrectionAsk, benefit_id: str, subject_id: str | None,
             material_id: str, signer: str, actor: str, today: date) -> None:
    """The commitment rows of one promise (see commit_material), in the caller's transaction."""
    if material_id not in _deferrable(L.ev, benefit_id):
        raise ValidationFailed([RowProblem("该材料不能容缺后补", path="material_id")])
    asked = [m for m in ask.materials
             if (m["benefit_id"], m["material_id"]) == (benefit_id, material_id)
             and (subject_id is None or m["subject_id"] == subject_id)]
    subjects = sorted({m["subject_id"] for m in asked if m["deferrable"]})
    if not subjects and asked and not any(m["rejected"] for m in asked):
        raise Conflict("该材料所证明的条件已判定为不满足，签署承诺不能改变结论，不能容缺后补；"
                       "如判定有误，请在补正中更正信息或上传材料")
    if not subjects:
        raise Conflict("该材料不在待补正的材料之中，或已签署过容缺承诺")
    due = add_workdays(today, service_limits()["commitment"].workdays, "签署容缺承诺（计算承诺期限）")
    for sub in subjects:
        s.add(Commitment(application_id=L.app.id, benefit_id=benefit_id, subject_id=sub,
                         material_id=material_id, signer=signer, signed_at=utcnow(), due_on=due))
    _move(s, L.app, None, actor, "commitment",
          {"material_id": material_id, "subjects": subjects, "due": due.isoformat()})


def supplied(c: Commitment, mats: Sequence[Material]) -> bool:
    """A promised material counts as supplied once a file for it is uploaded after the promise
    and not rejected."""
    latest = latest_files(list(mats), c.benefit_id, c.subject_id).get(c.material_id)
    return latest is not None and latest.uploaded_at >= c.signed_at and latest.state != "rejected"


def supply_promised(db: Database, application_id: str, benefit_id: str, subject_id: str, material_id: str,
                    filename: str, data: bytes, *, actor: str, today: date | None = None) -> None:
    """The file of a material promised by 容缺承诺, uploaded by the enterprise until the promise's
    deadline, whatever the case's stage (the case went on without it); staff review it as
    any other file."""
    today = today or shanghai_today()
    media = files.check(filename, data, upload_path(benefit_id, subject_id, material_id))
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        c = s.execute(select(Commitment).where(
            Commitment.application_id == application_id, Commitment.benefit_id == benefit_id,
            Commitment.subject_id == subject_id, Commitment.material_id == material_id)).scalar_one_or_none()
        if c is None:
            raise NotFound("没有这项容缺承诺")
        if L.app.state == "refused":
            raise Conflict("该申报已不予支持，无需再补交承诺的材料")
        if today > c.due_on:
            raise Conflict(f"承诺期限已于 {cn_date(c.due_on)} 截止，请联系受理窗口")
        mats = s.execute(select(Material).where(Material.application_id == application_id)).scalars().all()
        if supplied(c, mats):
            raise Conflict("该材料已补交，正在审核或已通过")
        s.add(Material(application_id=application_id, material_id=material_id, benefit_id=benefit_id,
                       subject_id=subject_id, filename=filename[:200], sha256=files.put(data), size=len(data),
                       content_type=media, uploaded_at=utcnow(), uploaded_by=actor, state="pending"))
        _move(s, L.app, None, actor, "commitment.supply", {"material_id": material_id, "subject_id": subject_id,
                                                           "file": filename[:100]})


# --- staff: materials, 复核, objections -----------------------------------------------------------
def upload_material(db: Database, application_id: str, benefit_id: str, material_id: str,
                    filename: str, data: bytes, *, actor: str, subject_id: str | None = None) -> tuple[int, bool]:
    """A material file added by staff (e.g. scanned from paper) for one subject of the
    application: the certificate it belongs to ("" for a benefit decided per enterprise).
    Without `subject_id` the application must have only one subject of that benefit.
    Returns (the material's id, whether this call recorded it: false for a retried upload).
    Every problem of the request is said at once: the file's, and what it is filed under."""
    problems: list[RowProblem] = []
    try:
        media = files.check(filename, data)
    except ValidationFailed as e:
        problems += e.problems
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        if L.app.state in ("awarded", "refused"):
            raise Conflict(f"该申报当前为“{APPLICATION_STATE[L.app.state]}”，已办结，不能再上传材料")
        book = L.ev.book.benefits if L.ev else {}
        if benefit_id not in book:
            raise ValidationFailed(problems + [RowProblem("规则中没有这一事项", path="benefit_id")])
        if material_id not in {m.id for m in book[benefit_id].spec.materials}:
            raise ValidationFailed(problems + [RowProblem("该事项没有这项材料", path="material_id")])
        subjects = [subject_of(r) for r in L.results
                    if r.kind == "grant" and r.benefit_id == benefit_id and _claimed(L.app, r)]
        if material_id in _enterprise_materials(L.ev, benefit_id) and subject_id in (None, ""):
            subjects, subject_id = [""], ""         # about the enterprise: one file for all its certificates
        if subject_id is None and len(subjects) == 1:
            subject_id = subjects[0]
        if subject_id not in subjects:
            problems.append(RowProblem(
                "请选择该材料所属的注册证" if subject_id is None else "该申报没有申请这个注册证的这项资金支持",
                path="subject_id"))
        if problems:
            raise ValidationFailed(problems)
        digest = files.put(data)
        same = s.scalar(select(Material.id).where(      # the same file again, still to review: a retried upload
            Material.application_id == application_id, Material.benefit_id == benefit_id,
            Material.subject_id == subject_id, Material.material_id == material_id,
            Material.sha256 == digest, Material.state == "pending").limit(1))
        if same is not None:
            return same, False
        m = Material(application_id=application_id, material_id=material_id, benefit_id=benefit_id,
                     subject_id=subject_id, filename=filename[:200], sha256=digest, size=len(data),
                     content_type=media, uploaded_at=utcnow(), uploaded_by=actor, state="pending")
        s.add(m)
        _move(s, L.app, None, actor, "material.upload",
              {"material_id": material_id, "subject_id": subject_id, "filename": filename[:100]})
        s.flush()
        return m.id, True


def material_file(db: Database, application_id: str, material_pk: int) -> tuple[Material, bytes]:
    with db.read_session() as s:
        m = s.get(Material, material_pk)
        if m is None or m.application_id != application_id:
            raise NotFound("材料不存在")
        return m, files.get(m.sha256)


def review_material(db: Database, application_id: str, material_pk: int, accept: bool, reason: str | None,
                    *, actor: str, revision: int | None = None, today: date | None = None) -> None:
    """Accept or reject an uploaded file (a rejection needs a reason, and reopens 补正 while
    the deadline allows)."""
    today = today or shanghai_today()
    reason = (reason or "").strip()
    if not accept and not reason:
        raise ValidationFailed([RowProblem("不通过时必须写明理由", path="reason")])
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        _expect(L.app, revision)
        m = s.get(Material, material_pk)
        if m is None or m.application_id != application_id:
            raise NotFound("材料不存在")
        if L.window.state == "closed" or L.app.state in ("awarded", "refused"):
            raise Conflict(f"该申报当前为“{APPLICATION_STATE.get(L.app.state, L.app.state)}”，已办结，不能再审核材料")
        if m.state != "pending":
            raise Conflict(f"该材料已审核（{MATERIAL_STATE[m.state]}）")
        m.state, m.reason = ("accepted" if accept else "rejected"), reason[:1000] or None
        m.reviewed_by, m.reviewed_at = actor, utcnow()
        # The correction's ask then lists the rejected material for its subject, whatever the
        # verdict, so the enterprise can upload a replacement until the deadline.
        reopen = (not accept and L.app.state == "corrected" and L.app.correction_due is not None
                  and today <= L.app.correction_due)
        _move(s, L.app, "correction" if reopen else None, actor,
              "material.accept" if accept else "material.reject",
              {"material_id": m.material_id, "subject_id": m.subject_id, "reason": reason or None,
               "reopened": reopen})


MAX_REVIEW_AMOUNT = Decimal("1000000000")     # 10亿元: above any grant, below Numeric(14, 2)


def review(db: Database, application_id: str, benefit_id: str, subject_id: str, action: str,
           status: str | None, reason: str | None, *, actor: str, revision: int | None = None,
           amount: Decimal | float | None = None, found: Sequence[RowProblem] = ()) -> tuple[int, bool]:
    """复核 one grant decision: confirm the engine's verdict, or override it with a reason.
    Returns (the review's id, whether this call recorded it): the same review again by the
    same reviewer, on the same decision with nothing since (a retried request sent without
    `revision`), is recorded once.
    A grant that ends eligible without an amount from the rules (it was 不符合条件, or a fact
    the amount needs is missing) needs the reviewer's `amount`; no other review takes one.
    `found`: problems the caller already found in the same form, reported with the others."""
    reason = (reason or "").strip()
    problems = list(found)
    if action not in ("confirm", "override"):
        problems.append(RowProblem("复核操作应为 confirm（维持）或 override（改变）", path="action"))
    if action == "override" and status not in ("eligible", "ineligible"):
        problems.append(RowProblem("请选择改变后的结论（符合条件或不符合条件）", path="status"))
    if action == "override" and not reason:
        problems.append(RowProblem("改变规则判定须写明理由", path="reason"))
    if amount is not None:
        amount = Decimal(str(amount))
        if not (0 < amount <= MAX_REVIEW_AMOUNT) or amount != amount.quantize(Decimal("0.01")):
            problems.append(RowProblem("支持金额须大于 0、不超过 10亿元，最多保留两位小数", path="amount_cny"))
    if action not in ("confirm", "override"):
        raise ValidationFailed(problems)
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        _expect(L.app, revision)
        if L.window.state == "closed" or L.app.state in ("awarded", "refused"):
            raise Conflict(f"该申报当前为“{APPLICATION_STATE.get(L.app.state, L.app.state)}”，已办结，不能再复核")
        r = next((r for r in L.results if r.benefit_id == benefit_id and r.kind == "grant"
                  and (r.subject.id if r.subject else "") == subject_id), None)
        if r is None and not subject_id and any(x.benefit_id == benefit_id and x.kind == "grant" and x.subject
                                                for x in L.results):     # judged per certificate
            problems.append(RowProblem("该事项按注册证逐项判定，请写明复核哪一份注册证（注册证编号）",
                                       path="subject_id"))
            raise ValidationFailed(problems)
        if L.evaluation is None:
            raise Conflict(f"该申报当前为“{APPLICATION_STATE.get(L.app.state, L.app.state)}”，尚未判定，没有可复核的判定")
        if r is None:       # a field of the request names no decision: said with its other problems
            known = any(x.benefit_id == benefit_id and x.kind == "grant" for x in L.results)
            problems.append(RowProblem("该事项没有这份注册证的判定", path="subject_id") if known else
                            RowProblem("该申报没有这一资金支持事项的判定", path="benefit_id"))
            raise ValidationFailed(problems)
        st = r.status if action == "confirm" else status
        unpriced = st == "eligible" and r.amount_cny is None
        if unpriced and amount is None and not any(p.path == "amount_cny" for p in problems):
            problems.append(RowProblem(
                "规则未能计算该项的支持金额，复核结论为符合条件时须填写支持金额（元）", path="amount_cny"))
        if amount is not None and not unpriced and not any(p.path == "amount_cny" for p in problems):
            problems.append(RowProblem(
                "该项的支持金额已由规则计算，复核不能改动" if r.amount_cny is not None
                else "复核结论不是符合条件，不填写支持金额", path="amount_cny"))
        if problems:        # every problem of the form at once
            raise ValidationFailed(problems)
        last = s.scalars(select(Review).where(
            Review.application_id == application_id, Review.benefit_id == benefit_id,
            Review.subject_id == subject_id).order_by(Review.id.desc()).limit(1)).first()
        if (last is not None and revision is None and last.evaluation_id == L.evaluation.id
                and (last.status, last.reason, last.actor) == (st, reason[:2000] or None, actor)
                and (last.amount_cny is None) == (amount is None)
                and (amount is None or Decimal(str(last.amount_cny)) == amount)):
            return last.id, False
        rv = Review(application_id=application_id, benefit_id=benefit_id, subject_id=subject_id,
                    engine_status=r.status, status=st, reason=reason[:2000] or None, actor=actor, at=utcnow(),
                    evaluation_id=L.evaluation.id, amount_cny=amount)
        s.add(rv)
        # a confirmation after a review that changed the verdict of this decision takes it back
        undo = action == "confirm" and last is not None and last.evaluation_id == L.evaluation.id \
            and last.status != st
        _move(s, L.app, None, actor, f"review.{action}",
              {"benefit_id": benefit_id, "subject_id": subject_id, "engine_status": r.status, "status": st,
               "reason": reason or None, **({"amount_cny": str(amount)} if amount is not None else {}),
               **({"undo": True} if undo else {})})
        s.flush()
        return rv.id, True


def raise_objection(db: Database, application_id: str, text: str, *, actor: str,
                    today: date | None = None) -> tuple[int, bool]:
    """An objection raised during the 公示 (until its last day): (its id, whether this call
    recorded it)."""
    today = today or shanghai_today()
    text = (text or "").strip()
    if not 1 <= len(text) <= 2000 or "\x00" in text:
        raise ValidationFailed([RowProblem("请填写异议内容（1 至 2000 个字符）", path="text")])
    with db.session() as s:
        L = _load(s, db, application_id, lock=True)
        if L.window.state != "publicity":
            raise Conflict(f"申报批次当前为“{W.view(L.window).state_text}”，只有公示期内才能登记异议")
        if L.window.publicity_until is not None and today > L.window.publicity_until:
            raise Conflict(f"公示期（{cn_date(L.window.publicity_from)}至{cn_date(L.window.publicity_until)}）"
                           "已经结束，不再登记异议")
        same = s.scalar(select(Objection.id).where(     # the same objection, still open: a retried request
            Objection.application_id == application_id, Objection.text == text,
            Objection.resolved_at.is_(None)).limit(1))
        if same is not None:
            return same, False
        o = Objection(window_id=L.window.id, application_id=application_id, text=text, raised_by=actor,
                      raised_at=utcnow())
        s.add(o)
        _move(s, L.app, None, actor, "objection", {"text": text[:200]})
        s.flush()
        return o.id, True


def reissue_access_code(db: Database, application_id: str, reason: str, *, actor: str) -> str:
    """A new access code for an enterprise that lost its own, given by staff after checking who
    asks (the reason says how). The old code stops working at once and every page opened with
    it is logged out; the history and the audit log keep who, when and why, never the code.
    Returns the code, to be shown once."""
    reason = (reason or "").strip()
    if not 2 <= len(reason) <= 500 or "\x00" in reason:
        raise ValidationFailed([RowProblem("请填写重新生成的原因和核验身份的方式（2 至 500 个字符），"
                                           "例如“企业遗失查询码，已核验营业执照和经办人身份证”", path="reason")])
    code = A.new_access_code()
    with db.session() as s:
        app = s.execute(select(Application).where(Application.id == application_id).with_for_update()
                        ).scalar_one_or_none() if len(application_id) <= 32 else None
        if app is None:
            raise NotFound(f"申报 {application_id} 不存在")
        app.access_code_hash = A.code_hash(app.id, code)
        _move(s, app, None, actor, "access_code.reissue", {"reason": reason[:200]})
        sessions.end_all(s, "enterprise", app.id)
        audit.record(s, actor, "application.access_code", app.id, {"reason": reason[:200]})
    return code


def resolve_objection(db: Database, objection_id: int, resolution: str, *, actor: str,
                      application_id: str | None = None) -> None:
    """The answer to an objection of the 公示 (the window closes only once each has one)."""
    resolution = (resolution or "").strip()
    if not 1 <= len(resolution) <= 2000:
        raise ValidationFailed([RowProblem("请填写处理意见", path="resolution")])
    with db.session() as s:
        o = s.get(Objection, objection_id)
        if o is None or (application_id is not None and o.application_id != application_id):
            raise NotFound("异议不存在")
        if o.resolved_at is not None:
            raise Conflict("该异议已处理")
        o.resolution, o.resolved_by, o.resolved_at = resolution, actor, utcnow()
        app = s.get(Application, o.application_id)
        _move(s, app, None, actor, "objection.resolve", {"resolution": resolution[:200]})
