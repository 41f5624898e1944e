"""Rendering the web pages: one Jinja2 environment whose globals are the vocabulary and the
reader-facing formatting, so no page spells a status or formats a value on its own."""
from __future__ import annotations

from datetime import date
from html import escape
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from engine import vocabulary as vocab
from engine.vocabulary import cn_time
from engine.profile import ProfileError, parse_profile
from store import rulesets
from store.files import size_text
from store.jobs import KIND_TEXT, STATE_TEXT as JOB_STATE
from store.notices import KINDS as NOTICE_KINDS

HERE = Path(__file__).resolve().parent


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    STATUS=vocab.STATUS, OUTCOME=vocab.OUTCOME, OUTCOME_MARK=vocab.OUTCOME_MARK, KIND=vocab.KIND,
    WINDOW_STATE=vocab.WINDOW_STATE, APPLICATION_STATE=vocab.APPLICATION_STATE, ROLE=vocab.ROLE,
    PROVISIONAL_AMOUNT=vocab.PROVISIONAL_AMOUNT, PROVISIONAL_CRITERION=vocab.PROVISIONAL_CRITERION,
    JOB_STATE=JOB_STATE, JOB_KIND=KIND_TEXT, NOTICE_KINDS=NOTICE_KINDS,
    money=vocab.money, cn_date=vocab.cn_date, ruleset_text=vocab.ruleset_text, ruleset_ref=vocab.ruleset_ref, percent=vocab.percent, cn_time=cn_time, CHANNEL=vocab.CHANNEL,
    size_text=size_text,
)


# A notice's HTML is one self-contained document: its look is an inline <style> (print.css, the
# same for the PDF) and nothing else; no script, no other request.
NOTICE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")


_NOTICE_BAR = ('<style>.notice-bar{{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;padding:.75rem 1rem;'
               'margin:0 0 1rem;background:#eef3f8;font:16px/1.5 sans-serif}}.notice-bar a{{padding:.5rem 0;'
               'min-height:44px;box-sizing:border-box}}@media print{{.notice-bar{{display:none}}}}</style>'
               '<nav class="notice-bar" aria-label="告知书"><a href="{back}">← {back_text}</a>'
               '<a href="{pdf}">下载 PDF</a></nav>')


def notice_page(html: bytes, back: tuple[str, str] | None = None) -> HTMLResponse:
    """A notice as a page of its own. With `back` (address, words), a bar above it (never
    printed) leads back and to its PDF: on a phone a notice has no other way out."""
    text = html.decode("utf-8")
    if back is not None:
        bar = _NOTICE_BAR.format(back=escape(back[0]), back_text=escape(back[1]), pdf="?format=pdf")
        text = text.replace("<body>", "<body>" + bar, 1)
    return HTMLResponse(text, headers={"Content-Security-Policy": NOTICE_CSP})


def page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def amount_basis(r: Any, profile: Any) -> str:
    """What a looked-up amount was read by, e.g. 经创新医疗器械特别审查程序 是 · 来源 自主研发 ·
    管理类别 第三类 (the grant's amount depends on whether the device is innovative)."""
    book = rulesets.current().book
    b = book.benefits.get(r.benefit_id)
    if b is None or r.amount_cny is None or r.subject is None:
        return ""
    lookup = next((a.lookup for a in b.spec.amount_specs() if a.lookup), None)
    if lookup is None:
        return ""
    reg = book.fields
    try:
        p = parse_profile(profile, reg, date.max)
    except ProfileError:
        return ""
    info = reg.list_of(r.subject.type)
    item = next((i for i in getattr(p, info.name) or [] if info.key_of(i) == r.subject.id), None)
    if item is None:
        return ""
    parts = []
    for key in lookup.keys:
        fact = reg.facts[key]
        value = fact.read(item)
        parts.append(f"{fact.label} {reg.value_text(key, value) if value is not None else '未填写'}")
    return " · ".join(parts)


def conflict_partners(benefit_id: str) -> list[str]:
    """The preferences the rule files say this one cannot be combined with (titles)."""
    book = rulesets.current().book
    b = book.benefits.get(benefit_id)
    if b is None or b.spec.tax is None:
        return []
    return [book.benefits[c.benefit].spec.title for c in b.spec.tax.conflicts_with if c.benefit in book.benefits]


templates.env.globals.update(amount_basis=amount_basis, conflict_partners=conflict_partners)
