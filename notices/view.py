"""What a notice shows, as template-ready text: built from typed records (the engine's results,
the application's final verdicts), with every fact named and every value shown through the
field registry and the vocabulary — templates, including staff overrides in the sandbox, only
iterate over strings.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Optional

from engine import Evaluator, Rulebook
from engine.profile import ProfileError, parse_profile
from engine.registry import FieldRegistry
from engine.results import BenefitResult, Conflict, CriterionResult, EligibilityResponse, TaxItem
from engine.vocabulary import OUTCOME, PROVISIONAL_AMOUNT, PROVISIONAL_CRITERION, STATUS, cn_date, money
from notices.settings import NoticeSettings
from store.notices import NoticeKind


class NoticeNotApplicable(Exception):
    """The application has nothing this kind of notice reports."""


# Which verdicts (after review) a kind reports, by what it covers (store.notices.NoticeKind.covers).
REPORTS = {"grant_open": lambda status: status != "eligible", "grant_refused": lambda status: status != "eligible",
           "grant_awarded": lambda status: status == "eligible", "all": lambda status: True,
           "tax": lambda status: False}


@dataclass
class Item:
    """One result a notice reports, with the verdict it reports (the reviewed one)."""
    result: BenefitResult
    status: str
    review_reason: Optional[str] = None
    review_amount: Optional[float] = None   # set by 复核 where the rules gave no amount


@dataclass
class NoticeInput:
    kind: NoticeKind
    enterprise: dict                     # uscc, name
    issued_on: dt.date
    items: list[Item]
    registry: FieldRegistry
    book: Rulebook
    settings: NoticeSettings
    profile: Optional[dict] = None       # names list items by their key (注册证 川械注准…)
    number: Optional[str] = None
    window: Optional[dict] = None        # id, label, opens_on, closes_on
    application_id: Optional[str] = None
    correction_due: Optional[dt.date] = None
    tax: list[TaxItem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    tax_year: Optional[int] = None


def from_response(kind: NoticeKind, ev: Evaluator, profile: dict, resp: EligibilityResponse,
                  settings: NoticeSettings, **extra) -> NoticeInput:
    """A notice of one profile's results as the engine gave them (no review): the self-check,
    and notices of generated profiles. `extra` fills the other NoticeInput fields."""
    tax_results = [r for r in resp.results if r.kind == "tax"]
    tax, conflicts, tax_year = [], [], None
    if kind.covers in ("tax", "all") and tax_results:
        tax_year = next((r.tax_year for r in tax_results if r.tax_year), ev.tax_year_of(resp.as_of))
        tax, conflicts = ev.tax_view(tax_results, tax_year, _parsed(ev, profile), resp.as_of)
    wanted = (lambda r: r.kind != "tax") if kind.covers == "all" else (lambda r: r.kind == "grant")
    items = [Item(r, r.status) for r in resp.results if wanted(r) and REPORTS[kind.covers](r.status)]
    fields = {"issued_on": resp.as_of, **extra}
    return NoticeInput(kind=kind, enterprise={"uscc": profile.get("uscc", ""), "name": profile.get("name", "")},
                       items=items, registry=ev.registry, book=ev.book, settings=settings, profile=profile,
                       tax=tax, conflicts=conflicts, tax_year=tax_year, **fields)


def _parsed(ev: Evaluator, profile: dict):
    try:
        return parse_profile(profile, ev.registry)
    except ProfileError:     # a notice of a profile the engine already judged; the choice is optional
        return None


def _criterion(c: CriterionResult, reg: FieldRegistry, profile: Optional[dict]) -> dict:
    observed = []
    for path, value in c.observed.items():
        if path in reg.lists:
            count = "未提供" if value is None else (f"{value['min']}～{value['max']} 条（含待核实记录）"
                                                 if isinstance(value, dict) else
                                                 f"{len(value) if isinstance(value, list) else value} 条")
            observed.append({"name": f"{reg.label(path)}中符合条件的记录", "value": count})
        else:
            observed.append({"name": reg.label(path), "value": reg.value_text(path, value)})
    return {"id": c.id, "text": c.text, "outcome": c.outcome, "outcome_label": OUTCOME[c.outcome],
            "observed": observed, "threshold": c.threshold or "—", "legal_basis": list(c.legal_basis),
            "provisional": (c.provisional_note or PROVISIONAL_CRITERION) if c.provisional else ""}


def _item(it: Item, reg: FieldRegistry, profile: Optional[dict], book: Optional[Rulebook] = None,
          on: Optional[dt.date] = None) -> dict:
    r = it.result
    spec = book.benefits[r.benefit_id].spec if book is not None and r.benefit_id in book.benefits else None
    names = {m.id: m for m in r.required_materials}
    # materials about the enterprise itself: one file for all its certificates
    shared = {m.id for m in spec.materials if m.scope == "enterprise"} if spec is not None else set()
    failed = [c for c in r.criteria if c.outcome == "fail"]
    unknown = [c for c in r.criteria if c.outcome == "unknown"]
    # 容缺: a missing proof may be promised first; not one a failed condition already decides
    deferrable = ({m.id for m in spec.materials if m.deferrable} if spec is not None else set()) - {
        mid for c in failed for mid in c.materials}
    subject = ""
    if r.subject is not None:
        subject = f"{reg.list_of(r.subject.type).item_label} {r.subject.id}"
    amount = r.amount_cny if it.review_amount is None else it.review_amount
    return {
        "benefit_id": r.benefit_id, "title": r.title, "subject": subject,
        "status": it.status, "status_label": STATUS.get(it.status, it.status),
        "engine_status_label": STATUS.get(r.status, r.status) if r.status != it.status else "",
        "review_reason": it.review_reason or "",
        "failed": [_criterion(c, reg, profile) for c in failed],
        "unknown": [_criterion(c, reg, profile) for c in unknown],
        "all_criteria": [_criterion(c, reg, profile) for c in r.criteria],
        "missing_facts": [reg.label(p, profile) + (f"（填写的“{given}”无法识别，请核对）"
                                                   if (given := reg.unread_input(p, profile)) else "")
                          for p in r.missing_facts],
        "missing_materials": [{"name": names[m].name, "description": names[m].description or "",
                               "shared": m in shared, "deferrable": m in deferrable}
                              for m in r.missing_materials if m in names],
        "all_materials": [{"name": m.name, "description": m.description or ""} for m in r.required_materials],
        "amount": money(amount) if amount is not None else "金额待定",
        "amount_value": amount,
        "provisional": (bool(r.amount_provisional) or amount is None) and it.review_amount is None,
        "amount_note": r.amount_note or "" if it.review_amount is None else "",
        "amount_by_review": it.review_amount is not None,
        "window": (f"{r.window.label}（受理期 {cn_date(r.window.opens_on)}至{cn_date(r.window.closes_on)}"
                   f"{'，已截止，不再受理' if on and r.window.closes_on and on > r.window.closes_on else ''}；"
                   f"覆盖 {cn_date(r.window.coverage_from)}至{cn_date(r.window.coverage_to)}取得的注册证）"
                   if r.window else ""),
        "note": r.note or "",
        "tax_year": str(r.tax_year) if r.tax_year else "",
        "kind": r.kind,
        # what would change the verdict: guidance, not a promise
        "suggestions": list(dict.fromkeys(x.text for x in r.suggestions)),   # two criteria, one fact: said once
        "route": ({"title": r.route.title, "basis": "；".join(r.route.legal_basis), "note": r.route.note or "",
                   "discretion": r.route.binding == "may"} if r.route else None),
        "notice_text": (spec.notice_text or "") if spec is not None else "",
        **(_claim(r) if isinstance(r, TaxItem) else {}),
    }


def _claim(t: TaxItem) -> dict:
    return {"how_to_claim": t.how_to_claim, "records_to_keep": list(t.records_to_keep),
            "keep_until": cn_date(t.keep_until) if t.keep_until else "", "keep_until_note": t.keep_until_note or ""}


def build(n: NoticeInput) -> dict:
    """Template variables: strings, lists and dicts only."""
    kind = n.kind
    # a self-check says whether the window it names still accepts applications
    items = [_item(i, n.registry, n.profile, n.book, n.issued_on if n.kind.id == "selfcheck" else None)
             for i in n.items]
    if not (n.tax if kind.covers == "tax" else items):
        raise NoticeNotApplicable(f"该申报没有需要在{kind.title}中列出的事项，无需出具")
    amounts = [i["amount_value"] for i in items if i["status"] == "eligible"]
    s = n.settings.model_dump()
    return {
        "kind": kind.id, "doc_title": kind.title, "signed": kind.signed,
        "number": n.number or "", "enterprise_name": n.enterprise["name"], "enterprise_uscc": n.enterprise["uscc"],
        "window_label": (n.window or {}).get("label", ""), "application_id": n.application_id or "",
        "issued_on": cn_date(n.issued_on), "deadline": cn_date(n.correction_due) if n.correction_due else "",
        "items": items,
        "total": money(sum(a for a in amounts if a is not None)) if amounts and None not in amounts else "",
        "total_provisional": any(i["provisional"] for i in items if i["status"] == "eligible"),
        "reference_label": PROVISIONAL_AMOUNT,
        "tax": [_item(Item(t, t.status), n.registry, n.profile) for t in n.tax],
        "tax_year": str(n.tax_year) if n.tax_year else "",
        "conflicts": [c.reason + (f"。{c.choice}" if c.choice else "") for c in n.conflicts],
        "settings": {k: ("" if v is None else str(v)) for k, v in s.items()},
    }
