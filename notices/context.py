"""Plain data a notice is rendered from, and its translation into template-ready strings.

The renderer never touches the store: callers (CLI, API, batch) build a :class:`NoticeContext`
from an application's decisions (dicts shaped like the contract's eligibility result) and
pass it in. All formatting happens here, so templates — including staff overrides running in
the sandbox — only iterate over strings.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notices.fields import field_name, format_money, format_value
from notices.workdays import REPO_ROOT, WorkdayCalendar, default_calendar

NoticeKind = Literal["one_time", "award", "non_support", "tax_self_assessment"]
KINDS: tuple[str, ...] = ("one_time", "award", "non_support", "tax_self_assessment")

KIND_TITLES = {
    "one_time": "一次性告知书",
    "award": "兑现通知书",
    "non_support": "不予支持告知书",
    "tax_self_assessment": "税收优惠自行判别结果",
}
STATUS_LABELS = {
    "eligible": "符合条件",
    "ineligible": "不符合条件",
    "needs_info": "需补充信息",
    "not_in_force": "不在政策有效期内",
}
OUTCOME_LABELS = {"pass": "符合", "fail": "不符合", "unknown": "无法判断"}
REFERENCE_AMOUNT_LABEL = "参考金额，以当期申报通知为准"
DEFAULT_SETTINGS_PATH = REPO_ROOT / "rules" / "notice-settings.yaml"


class NoticeError(Exception):
    """A notice cannot be produced; str() is a Chinese message for users."""


class NoticeNotApplicable(NoticeError):
    pass


class SettingsError(NoticeError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("文书设置有误：\n" + "\n".join(problems))


class NoticeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuing_office: str
    supplement_workdays: int = Field(ge=1, le=60)
    submission_place: str
    submission_online: str
    submission_how: str
    contact_department: str
    contact_phone: str
    payment_commitment: str
    reconsideration_body: str
    reconsideration_days: int = Field(ge=1)
    litigation_months: int = Field(ge=1)
    litigation_court: str
    tax_office: str


def load_settings(path: Path | str | None = None) -> NoticeSettings:
    """Read ``rules/notice-settings.yaml`` (each key ``{value, note}``); all problems at once."""
    from engine.messages import pydantic_message
    from engine.yamlsource import YamlSyntaxError, load_yaml

    path = Path(path or os.environ.get("YAGU_NOTICE_SETTINGS") or DEFAULT_SETTINGS_PATH)
    try:
        doc = load_yaml(path)
    except OSError as exc:
        raise SettingsError([f"{path}: 无法读取（{exc.strerror}）"]) from None
    except YamlSyntaxError as exc:
        raise SettingsError([f"{path}:{exc.line}: {exc.message}"]) from None
    if not isinstance(doc.data, dict):
        raise SettingsError([f"{path}:1: 文件应为映射"])
    values, problems = {}, []
    for key, v in doc.data.items():
        ln = doc.line_of((key,))
        if not isinstance(v, dict) or "value" not in v:
            problems.append(f"{path}:{ln}: {key} 应写为 {{value: ..., note: ...}}")
            continue
        if not v.get("note"):
            problems.append(f"{path}:{ln}: {key} 缺少 note（出处或说明）")
        values[key] = v["value"]
    try:
        settings = NoticeSettings(**values)
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"{path}:{doc.line_of((key,))}: {key}: {pydantic_message(err)}")
        settings = None
    if problems:
        raise SettingsError(problems)
    return settings


class Enterprise(BaseModel):
    uscc: str
    name: str


class WindowRef(BaseModel):
    id: str
    label: str


class NoticeContext(BaseModel):
    """Everything one notice needs; ``decisions`` are contract-shaped result dicts."""
    kind: NoticeKind
    enterprise: Enterprise
    issued_on: dt.date
    decisions: list[dict[str, Any]]
    settings: NoticeSettings
    window: WindowRef | None = None
    application_id: str | None = None
    notice_number: str | None = None
    deadline: dt.date | None = None          # 补正期限 (one_time), computed by make_context
    conflicts: list[Any] = Field(default_factory=list)
    tax_year: int | None = None


def make_context(kind: str, enterprise: dict | Enterprise, decisions: list[dict], issued_on: dt.date, *,
                 settings: NoticeSettings | None = None, calendar: WorkdayCalendar | None = None,
                 window: dict | WindowRef | None = None, application_id: str | None = None,
                 notice_number: str | None = None, conflicts: list | None = None,
                 tax_year: int | None = None) -> NoticeContext:
    """Build a context; for ``one_time`` the 补正 deadline is N working days after ``issued_on``
    (raises :class:`notices.workdays.UnknownYearError` when the calendar lacks a year)."""
    if kind not in KINDS:
        raise NoticeError(f"kind: 未知的文书种类 {kind!r}；可用：{', '.join(KINDS)}")
    settings = settings or load_settings()
    deadline = None
    if kind == "one_time":
        deadline = (calendar or default_calendar()).add_workdays(issued_on, settings.supplement_workdays)
    return NoticeContext(kind=kind, enterprise=enterprise, decisions=list(decisions), issued_on=issued_on,
                         settings=settings, window=window, application_id=application_id,
                         notice_number=notice_number, deadline=deadline, conflicts=list(conflicts or []),
                         tax_year=tax_year)


def applicable_decisions(kind: str, decisions: list[dict]) -> list[dict]:
    """Which results a notice of this kind covers."""
    if kind == "one_time":
        return [d for d in decisions if d.get("status") in ("needs_info", "ineligible")]
    if kind == "award":
        return [d for d in decisions if d.get("status") == "eligible" and d.get("kind", "grant") != "tax"]
    if kind == "non_support":
        return [d for d in decisions if d.get("status") == "ineligible"]
    if kind == "tax_self_assessment":
        return [d for d in decisions if d.get("kind") == "tax"]
    raise NoticeError(f"kind: 未知的文书种类 {kind!r}")


def applicable_kinds(decisions: list[dict]) -> list[str]:
    return [k for k in KINDS if applicable_decisions(k, decisions)]


# ---------------------------------------------------------------- formatting helpers

def cn_date(d: dt.date | str | None) -> str:
    if d is None:
        return "—"
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    return f"{d.year}年{d.month}月{d.day}日"


def subject_label(decision: dict) -> str:
    subj = decision.get("subject")
    if not subj:
        return ""
    if subj.get("type") == "certificate":
        return f"注册证 {subj.get('id')}"
    return str(subj.get("id", ""))


def format_threshold(threshold) -> str:
    if threshold is None or threshold == "" or threshold == {}:
        return "—"
    if isinstance(threshold, str):
        return threshold
    if isinstance(threshold, dict):
        return "；".join(f"{field_name(str(k))}：{format_value(str(k), v)}" for k, v in threshold.items())
    if isinstance(threshold, list):
        return "、".join(format_value("", v) for v in threshold)
    return format_value("", threshold)


def format_observed(observed: dict | None) -> list[dict]:
    return [{"name": field_name(path), "path": path, "value": format_value(path, value)}
            for path, value in (observed or {}).items()]


def _materials_view(decision: dict, criteria: list[dict]) -> list[dict]:
    """Materials of the given criteria, once each, in first-mention order, with their names."""
    names = {m.get("id"): m for m in decision.get("required_materials") or []}
    seen: dict[str, dict] = {}
    for c in criteria:
        for mid in c.get("materials") or []:
            if mid not in seen:
                m = names.get(mid, {})
                seen[mid] = {"id": mid, "name": m.get("name") or mid, "for": []}
            seen[mid]["for"].append(c.get("text", ""))
    return list(seen.values())


def _criterion_view(c: dict) -> dict:
    return {
        "id": c.get("id", ""),
        "text": c.get("text", ""),
        "outcome": c.get("outcome", ""),
        "outcome_label": OUTCOME_LABELS.get(c.get("outcome"), c.get("outcome", "")),
        "observed": format_observed(c.get("observed")),
        "threshold": format_threshold(c.get("threshold")),
        "legal_basis": [str(b) for b in c.get("legal_basis") or []],
    }


def _amount_view(d: dict) -> dict:
    amount = d.get("amount_cny")
    return {
        "amount": format_money(amount) if amount is not None else "金额待定",
        "provisional": bool(d.get("amount_provisional")) or amount is None,
        "note": d.get("amount_note") or "",
    }


def _decision_view(d: dict) -> dict:
    criteria = d.get("criteria") or []
    failed = [c for c in criteria if c.get("outcome") == "fail"]
    unknown = [c for c in criteria if c.get("outcome") == "unknown"]
    return {
        "benefit_id": d.get("benefit_id", ""),
        "title": d.get("title", ""),
        "subject": subject_label(d),
        "status": d.get("status", ""),
        "status_label": STATUS_LABELS.get(d.get("status"), d.get("status", "")),
        "failed": [_criterion_view(c) for c in failed],
        "unknown": [_criterion_view(c) for c in unknown],
        "all_criteria": [_criterion_view(c) for c in criteria],
        "missing_facts": [{"name": field_name(p), "path": p} for p in d.get("missing_facts") or []],
        "missing_materials": _materials_view(d, failed + unknown),
        "all_materials": [{"id": m.get("id"), "name": m.get("name") or m.get("id")}
                          for m in d.get("required_materials") or []],
        **_amount_view(d),
        "how_to_claim": d.get("how_to_claim") or "",
        "records_to_keep": [_record_name(r) for r in d.get("records_to_keep") or []],
        "keep_until": cn_date(d.get("keep_until")) if d.get("keep_until") else "",
    }


def _record_name(r) -> str:
    if isinstance(r, dict):
        return str(r.get("name") or r.get("title") or r.get("id") or "")
    return str(r)


def _conflict_view(c, titles: dict[str, str]) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, dict):
        ids = c.get("benefits") or c.get("benefit_ids") or c.get("ids") or []
        names = "、".join(f"「{titles.get(i, i)}」" for i in ids)
        msg = c.get("message") or c.get("reason") or c.get("note") or "不能同时享受，只能选择其一"
        return f"{names}：{msg}" if names else str(msg)
    return str(c)


RATE_15_IDS = ("hnte-reduced-rate", "western-development-rate")


def _conflicts(ctx: NoticeContext, titles: dict[str, str]) -> list[str]:
    out = [_conflict_view(c, titles) for c in ctx.conflicts]
    if ctx.kind != "tax_self_assessment":
        return out
    eligible = {d.get("benefit_id") for d in ctx.decisions if d.get("status") == "eligible"}
    mentioned = any(all(i in str(c) for i in RATE_15_IDS) or all(titles.get(i, "#") in str(o) for i in RATE_15_IDS)
                    for c, o in zip(ctx.conflicts, out))
    if set(RATE_15_IDS) <= eligible and not mentioned:
        # Both reduced rates qualify; a company pays one CIT rate, so it must choose.
        out.append("、".join(f"「{titles.get(i, i)}」" for i in RATE_15_IDS)
                   + "：两项均为减按15%税率征收企业所得税，不能叠加享受，只能选择其中一项。")
    return out


def build_view(ctx: NoticeContext) -> dict:
    """Template variables: strings, lists and dicts only."""
    s = ctx.settings
    decisions = applicable_decisions(ctx.kind, ctx.decisions)
    if not decisions:
        raise NoticeNotApplicable(
            f"该申请没有{ {'one_time': '需要补正或不符合条件的', 'award': '符合条件的资金支持', 'non_support': '不符合条件的', 'tax_self_assessment': '税收优惠'}[ctx.kind] }事项，"
            f"无需出具{KIND_TITLES[ctx.kind]}")
    items = [_decision_view(d) for d in decisions]
    titles = {d.get("benefit_id"): d.get("title") for d in ctx.decisions}
    amounts = [d.get("amount_cny") for d in decisions]
    total_known = all(a is not None for a in amounts)
    return {
        "kind": ctx.kind,
        "doc_title": KIND_TITLES[ctx.kind],
        "number": ctx.notice_number or "（编号未分配）",
        "enterprise_name": ctx.enterprise.name,
        "enterprise_uscc": ctx.enterprise.uscc,
        "window_label": ctx.window.label if ctx.window else "",
        "window_id": ctx.window.id if ctx.window else "",
        "application_id": ctx.application_id or "",
        "issued_on": cn_date(ctx.issued_on),
        "deadline": cn_date(ctx.deadline) if ctx.deadline else "",
        "supplement_workdays": str(s.supplement_workdays),
        "items": items,
        "total": format_money(sum(a for a in amounts if a is not None)) if total_known else "",
        "total_provisional": any(i["provisional"] for i in items),
        "reference_label": REFERENCE_AMOUNT_LABEL,
        "conflicts": _conflicts(ctx, titles),
        "tax_year": str(ctx.tax_year) if ctx.tax_year else "",
        "settings": {k: str(v) for k, v in s.model_dump().items()},
    }
