"""Notices for stored applications, for self-checks, and a window's bundle (a background job).

An application's notice reports its decisions as stored and rebuilt with the ruleset that
made them (store.cases.detail), with the verdict of record after review. Official kinds get
their number (store.notices, gapless, stable across re-renders) only once the notice is known
to apply and every setting it prints is filled in: no number is consumed by a notice that is
not issued, and no placeholder reaches a printed notice.
"""
from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from engine import Evaluator
from engine.profile import shanghai_today
from engine.vocabulary import BEIJING
from engine.results import EligibilityResponse
from notices.pdf import typst_to_pdf
from notices.render import NoticeRenderer
from notices.settings import NoticeSettings, load_settings
from notices.view import REPORTS, Item, NoticeInput, NoticeNotApplicable, build, from_response
from store import cases, jobs, rulesets
from store.cases import ApplicationDetail
from store.db import Database
from store.errors import Conflict, NotFound
from store.models import Application, Notice
from store.notices import KINDS, assign_number

FORMATS = {"pdf": ".pdf", "html": ".html"}


@dataclass
class Document:
    kind: str
    number: str
    data: bytes
    filename: str


def _safe(name: str) -> str:
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name)


def _file_stem(enterprise: str, title: str) -> str:
    """"<enterprise>-<notice title>": a long name is cut, never the title that says which notice."""
    return f"{_safe(enterprise)[:80]}-{_safe(title)}"


def _items(d: ApplicationDetail, covers: str) -> list[Item]:
    return [Item(g.result, g.final_status, g.review.reason if g.review else None,
                 g.review.amount_cny if g.review else None)
            for g in d.grants if REPORTS[covers](g.final_status)]


class NoticeService:
    def __init__(self, db: Database, renderer: NoticeRenderer | None = None,
                 settings: NoticeSettings | None = None):
        self.db = db
        self.renderer = renderer or NoticeRenderer()
        self.settings = settings or load_settings()

    def _input(self, d: ApplicationDetail, kind: str, issued_on: dt.date, number: Optional[str]) -> NoticeInput:
        k = KINDS[kind]
        ev = rulesets.evaluator_for(self.db, d.ruleset_version) if d.ruleset_version else rulesets.current()
        tax, conflicts, tax_year, items = [], [], None, []
        if k.covers == "tax":
            tax_year = next((r.tax_year for r in d.tax if r.tax_year), ev.tax_year_of(d.window.as_of))
            tax, conflicts = d.tax, d.tax_conflicts
        else:
            items = _items(d, k.covers)
        return NoticeInput(kind=k, enterprise=d.enterprise, issued_on=issued_on, items=items, registry=ev.registry,
                           book=ev.book, settings=self.settings, profile=d.profile, number=number,
                           window={"id": d.window.id, "label": d.window.label}, application_id=d.application_id,
                           correction_due=d.correction_due if kind == "one_time" else None, tax=tax,
                           conflicts=conflicts, tax_year=tax_year)

    def _document(self, n: NoticeInput, fmt: str, name: str) -> Document:
        if fmt not in FORMATS:
            raise Conflict(f"未知的文书格式：{fmt}（可选 pdf、html）")
        data = (typst_to_pdf(self.renderer.render_typst(n)) if fmt == "pdf"
                else self.renderer.render_html(n).encode("utf-8"))
        return Document(n.kind.id, n.number or "", data, name + FORMATS[fmt])

    def render(self, application_id: str, kind: str, fmt: str = "html",
               issued_on: dt.date | None = None) -> Document:
        """One application's notice of one kind; numbered (once) when it is official."""
        return self.documents(cases.detail(self.db, application_id), kind, (fmt,), issued_on)[0]

    def documents(self, d: ApplicationDetail, kind: str, fmts: tuple[str, ...],
                  issued_on: dt.date | None = None) -> list[Document]:
        """The notice of one kind in each format asked for, from one reading of the application.
        Refused with Conflict, before any number is taken, when the notice does not apply."""
        if kind not in KINDS:
            raise NotFound("没有这种告知书")
        if not KINDS[kind].char:
            raise Conflict(f"{KINDS[kind].title}不是申报的文书，由企业自测时出具")
        self._check_issuable(d, kind)
        if kind == "one_time":              # as issued, whatever the 补正 changed since
            d = cases.detail(self.db, d.application_id, as_issued=kind)
        with self.db.read_session() as s:
            row = s.execute(select(Notice).where(Notice.application_id == d.application_id,
                                                 Notice.kind == kind)).scalar_one_or_none()
        issued = row.issued_on if row else (issued_on or shanghai_today())
        try:
            build(self._input(d, kind, issued, None))
        except NoticeNotApplicable as exc:
            raise Conflict(str(exc)) from None
        self._require_settings()
        if row is not None:
            number = row.number
        else:
            with self.db.session() as s:
                number = assign_number(s, d.window.id, d.application_id, kind, issued).number
        n = self._input(d, kind, issued, number)
        return [self._document(n, fmt, _file_stem(d.enterprise["name"], KINDS[kind].title)) for fmt in fmts]

    def _require_settings(self) -> None:
        """Official notices print every setting: none is issued while one is unset (the start-up
        warning and the README say where they are set)."""
        unset = self.settings.unset()
        if unset:
            raise Conflict(f"文书设置未填写（{'、'.join(unset)}），暂不能出具正式文书")

    def issue_one_time_notices(self, db: Database, window_id: str, *, actor: str | None = None,
                               today: dt.date | None = None) -> int:
        """一次告知 for the window (store.cases), refused before any deadline starts while a
        setting the notice prints is unset: a 补正 period must not run on a notice that cannot
        be printed."""
        self._require_settings()
        return cases.issue_one_time_notices(db, window_id, actor=actor, today=today)

    def _check_issuable(self, d: ApplicationDetail, kind: str) -> None:
        if kind == "one_time" and d.state not in ("correction", "corrected") and not any(
                n.kind == "one_time" for n in d.notices):
            raise Conflict("一次性告知书由“发出一次性告知书”统一出具，该申报尚未出具")
        if kind == "award" and d.state != "awarded":
            raise Conflict("该申报尚未兑现，不能出具兑现通知书")
        if kind == "non_support" and "non_support" not in d.available_notices:
            raise Conflict("批次关闭后才能对最终不符合条件的资金支持事项出具不予支持告知书")

    def kinds_for(self, d: ApplicationDetail) -> list[str]:
        """The official notices an application has (or would get now)."""
        return d.available_notices

    def selfcheck(self, ev: Evaluator, profile: dict, resp: EligibilityResponse, fmt: str = "html") -> Document:
        """The printable result of a self-check: not a decision, no number, no signature."""
        n = from_response(KINDS["selfcheck"], ev, profile, resp, self.settings)
        return self._document(n, fmt, _file_stem(profile.get("name") or "企业", KINDS["selfcheck"].title))


@jobs.task("notices.bundle", "批量生成告知书")
def bundle(db: Database, ctx: jobs.JobContext, args: dict) -> dict:
    """Every notice of a window's applications in one zip, one PDF each named by enterprise and
    kind (HTML too when asked), written into the zip as they are made."""
    svc = NoticeService(db)
    fmts = ("pdf", "html") if args.get("html") else ("pdf",)
    with db.read_session() as s:
        ids = s.scalars(select(Application.id).where(Application.window_id == args["window_id"])
                        .order_by(Application.uscc)).all()
    made = skipped = 0
    names: set[str] = set()
    with ctx.writing(f"告知书-{args['window_id']}.zip", "application/zip") as out, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i, app_id in enumerate(ids):
            d = cases.detail(db, app_id)
            for kind in svc.kinds_for(d):
                try:
                    docs = svc.documents(d, kind, fmts)
                except Conflict:
                    skipped += 1
                    continue
                for doc in docs:
                    name = doc.filename
                    if name in names:       # two enterprises of one name: told apart by their code
                        stem, dot, ext = name.rpartition(".")
                        name = f"{d.enterprise['uscc']}-{stem}{dot}{ext}"
                    names.add(name)
                    # dated in Beijing time, as the unzipping staff read it; a PDF is compressed already
                    entry = zipfile.ZipInfo(name, dt.datetime.now(BEIJING).timetuple()[:6])
                    entry.external_attr = 0o644 << 16
                    z.writestr(entry, doc.data,
                               zipfile.ZIP_STORED if name.endswith(".pdf") else zipfile.ZIP_DEFLATED)
                made += 1
            ctx.progress(i + 1, len(ids), f"已生成 {made} 份告知书")
    return {"notices": made, "skipped": skipped, "applications": len(ids)}
