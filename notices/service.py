"""Notices for stored applications: read the store, number the notice, render it.

Numbers come from ``store.notices.assign_notice_number`` (gapless per window and kind; a
re-render returns the existing number). The HTML is rendered once *before* a number is taken,
so an application that needs no such notice, or a deadline that runs into a year without a
schedule, never consumes a number. A re-render reuses the stored issue date, so the number,
the date and the 补正 deadline stay the same document.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select

from notices.context import (NoticeError, NoticeNotApplicable, NoticeSettings, applicable_decisions,
                             load_settings, make_context)
from notices.render import NoticeRenderer
from notices.workdays import WorkdayCalendar

FILE_KIND = {"one_time": "一次性告知书", "award": "兑现通知书", "non_support": "不予支持告知书",
             "tax_self_assessment": "税收优惠自行判别结果"}


def today_shanghai() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


@dataclass
class RenderedNotice:
    application_id: str
    kind: str
    number: str
    issued_on: dt.date
    html: str

    @property
    def filename_stem(self) -> str:
        return f"{self.application_id}-{FILE_KIND[self.kind]}"


def load_application(db, application_id: str) -> dict:
    """Application, enterprise, window and decisions (full results) in one read."""
    from store.models import Application, Decision, Enterprise, ProfileSnapshot, Window

    with db.read_session() as s:
        app = s.get(Application, application_id)
        if app is None:
            raise NoticeError(f"申请 {application_id} 不存在")
        ent = s.get(Enterprise, app.uscc)
        win = s.get(Window, app.window_id)
        snap = s.get(ProfileSnapshot, app.snapshot_hash)
        decs = s.execute(select(Decision).where(Decision.application_id == app.id)
                         .order_by(Decision.benefit_id, Decision.subject_id)).scalars().all()
        return {
            "application_id": app.id,
            "enterprise": {"uscc": ent.uscc, "name": ent.name},
            "window": {"id": win.id, "label": win.label, "as_of": win.as_of},
            "profile": snap.profile if snap else None,
            "decisions": [_decision_result(d) for d in decs],
        }


def _decision_result(d) -> dict:
    # The stored trace is the engine's BenefitResult; the columns are authoritative for the
    # outcome (the ledger may have changed status/amount after evaluation).
    out = dict(d.trace or {})
    out.update({"benefit_id": d.benefit_id, "status": d.status,
                "kind": out.get("kind") or d.benefit_kind,
                "amount_cny": None if d.amount_cny is None else float(d.amount_cny),
                "amount_provisional": d.amount_provisional})
    return out


def _tax_items(app: dict) -> tuple[list[dict], list, int | None]:
    """Tax results with records_to_keep / keep_until from the engine's self-assessment of the
    stored profile (window decisions do not carry them); falls back to the window decisions."""
    tax_year = app["window"]["as_of"].year - 1
    if app.get("profile"):
        try:
            from store.windows import get_evaluator

            resp = get_evaluator().tax_self_assessment(app["profile"], tax_year=tax_year)
            data = resp.model_dump(mode="json") if hasattr(resp, "model_dump") else dict(resp)
            return data.get("items") or [], data.get("conflicts") or [], data.get("tax_year", tax_year)
        except ImportError:
            pass
    return [d for d in app["decisions"] if d.get("kind") == "tax"], [], tax_year


class NoticeService:
    def __init__(self, db, renderer: NoticeRenderer | None = None, settings: NoticeSettings | None = None,
                 calendar: WorkdayCalendar | None = None):
        self.db = db
        self.renderer = renderer or NoticeRenderer()
        self.settings = settings or load_settings()
        self.calendar = calendar

    def kinds_for(self, app: dict) -> list[str]:
        kinds = [k for k in ("one_time", "award", "non_support") if applicable_decisions(k, app["decisions"])]
        if any(d.get("kind") == "tax" for d in app["decisions"]):
            kinds.append("tax_self_assessment")
        return kinds

    def render(self, application_id: str, kind: str, issued_on: dt.date | None = None,
               app: dict | None = None) -> RenderedNotice:
        from store.models import Notice
        from store.notices import assign_notice_number

        app = app or load_application(self.db, application_id)
        decisions, conflicts, tax_year = app["decisions"], [], None
        if kind == "tax_self_assessment":
            decisions, conflicts, tax_year = _tax_items(app)
        with self.db.read_session() as s:
            row = s.execute(select(Notice.number, Notice.issued_on).where(
                Notice.application_id == application_id, Notice.kind == kind)).first()
        issued = row.issued_on if row else (issued_on or today_shanghai())

        def ctx(number):
            return make_context(kind, app["enterprise"], decisions, issued, settings=self.settings,
                                calendar=self.calendar, window=app["window"], application_id=application_id,
                                notice_number=number, conflicts=conflicts, tax_year=tax_year)

        self.renderer.render_html(ctx(None))          # refuses before a number is consumed
        if row:
            number = row.number
        else:
            with self.db.session() as s:
                number, _ = assign_notice_number(s, app["window"]["id"], application_id, kind, issued)
        return RenderedNotice(application_id, kind, number, issued, self.renderer.render_html(ctx(number)))

    def window_jobs(self, window_id: str, kinds: list[str] | None = None) -> list[tuple[str, str]]:
        """(application_id, kind) pairs a window needs, ordered so numbers follow the USCC order."""
        from store.models import Application, Window

        with self.db.read_session() as s:
            if s.get(Window, window_id) is None:
                raise NoticeError(f"申报窗口 {window_id} 不存在")
            ids = s.execute(select(Application.id).where(Application.window_id == window_id)
                            .order_by(Application.uscc)).scalars().all()
        jobs = []
        for aid in ids:
            app = load_application(self.db, aid)
            for k in self.kinds_for(app):
                if kinds is None or k in kinds:
                    jobs.append((aid, k))
        return jobs


__all__ = ["NoticeService", "RenderedNotice", "NoticeNotApplicable", "load_application", "today_shanghai"]
