"""Glue to the store's domain functions (store.windows, store.tokens) and the notices package.

Routes call these (in the threadpool: SQLAlchemy and WeasyPrint are synchronous); the
business rules live in the store and the engine, not here.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from api.errors import ApiError


def open_store(settings):
    from store.db import Database
    return Database(settings.database_url)


def migrate(rt) -> None:
    rt.store.upgrade()


def _w():
    from store import windows
    return windows


def _not_found(message: str):
    from store.errors import NotFound
    return NotFound(message)


def _optional(module: str, name: str) -> Callable | None:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (list, tuple)):
        return [plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    return obj


# --- windows -------------------------------------------------------------------------

def open_window(rt, data: dict, actor: str) -> dict:
    data = dict(data)
    return _w().open_window(rt.store, data.pop("id"), actor=actor, **data)


def open_window_from_form(rt, form: dict, actor: str) -> dict:
    keys = ("opens_on", "closes_on", "as_of", "coverage_from", "coverage_to", "label")
    data = {k: (form.get(k) or "").strip() or None for k in keys}
    return _w().open_window(rt.store, (form.get("id") or "").strip(), actor=actor, **data)


def list_windows(rt) -> list[dict]:
    return _w().list_windows(rt.store)


def get_window(rt, window_id: str) -> dict:
    return _w().get_window(rt.store, window_id)


def submit_application(rt, window_id: str, profile: dict, claims, actor: str) -> dict:
    app_id, code = _w().submit_application(rt.store, window_id, profile, claims, "api", actor=actor)
    return {"application_id": app_id, "access_code": code}


def import_applications(rt, window_id: str, data: bytes, filename: str, skip_invalid: bool,
                        actor: str) -> dict:
    from store.intake import import_applications as _import
    _w().get_window(rt.store, window_id)  # 404 before parsing the file
    return plain(_import(rt.store, window_id, data, filename, skip_invalid=skip_invalid, actor=actor))


def evaluate_window(rt, window_id: str, actor: str) -> dict:
    return plain(_w().evaluate_window(rt.store, window_id, evaluator=rt.evaluator, actor=actor))


def list_decisions(rt, window_id: str, status: str | None) -> list[dict]:
    return _w().list_decisions(rt.store, window_id, status=status)


def proactive(rt, window_id: str) -> list[dict]:
    return _w().proactive(rt.store, window_id)


def close_window(rt, window_id: str, actor: str) -> dict:
    try:
        return plain(_w().close_window(rt.store, window_id, actor=actor))
    finally:
        rt.invalidate_ledger()   # self-checks see the new awards at once


def awards(rt, window_id: str) -> dict:
    window, rows, final = _w().list_awards(rt.store, window_id)
    return {"window": window, "final": final, "awards": rows, "totals": _w().totals_of(rows)}


def export_awards(rt, window_id: str, fmt: str) -> bytes:
    from store.exports import export_awards as _export
    out = _export(rt.store, window_id, fmt=fmt)
    return out.encode("utf-8-sig") if isinstance(out, str) else out


def awards_xlsx(rt, window_id: str) -> bytes:
    return export_awards(rt, window_id, "xlsx")


# --- the enterprise's view -----------------------------------------------------------

def application_for_enterprise(rt, application_id: str, access_code: str) -> dict:
    found = _w().get_application(rt.store, application_id, access_code)
    if found is None:
        # Same answer for an unknown id and a wrong code.
        raise _not_found("未找到该申报（申报编号或查询码不正确）")
    return found


# --- notices -------------------------------------------------------------------------

def _notice_service(rt):
    from notices.service import NoticeService
    return NoticeService(rt.store)


def render_notice(rt, application_id: str, kind: str, fmt: str) -> bytes | str:
    from notices.context import NoticeNotApplicable
    if _w().application_record(rt.store, application_id) is None:
        raise _not_found(f"申报 {application_id} 不存在")
    try:
        doc = _notice_service(rt).render(application_id, kind)
    except NoticeNotApplicable as e:
        raise ApiError(409, f"该申报没有此类告知书：{e}")
    if fmt == "pdf":
        from notices.pdf import html_to_pdf
        return html_to_pdf(doc.html)
    return doc.html


def notices_zip(rt, window_id: str) -> bytes:
    """Every notice the window's applications need, as PDF (with the HTML alongside)."""
    import io
    import zipfile

    from notices.pdf import html_to_pdf
    _w().get_window(rt.store, window_id)  # NotFound → 404
    svc = _notice_service(rt)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for app_id, kind in svc.window_jobs(window_id):
            doc = svc.render(app_id, kind)
            zf.writestr(f"{doc.filename_stem}.pdf", html_to_pdf(doc.html))
            zf.writestr(f"{doc.filename_stem}.html", doc.html)
    return buf.getvalue()


def selfcheck_notice_html(profile: dict, resp) -> str | None:
    """The one-time notice of a self-check from the notices package, or None to fall back."""
    try:
        from notices.context import make_context
        from notices.render import render_html
        from engine.profile import shanghai_today
    except ImportError:
        return None
    data = resp.model_dump(mode="json")
    try:
        ctx = make_context("one_time", {"uscc": profile.get("uscc"), "name": profile.get("name")},
                           data["results"], shanghai_today())
        return render_html(ctx)
    except Exception:  # no applicable decisions, calendar gaps: use the page's own notice
        return None


# --- the staff console's window view -------------------------------------------------

CLASS_NAMES = {"II": "第二类", "III": "第三类", "I": "第一类", "unknown": "未注明类别"}


def window_console(rt, window_id: str) -> dict:
    w = get_window(rt, window_id)
    counts_raw = w.get("decisions") or {}
    counts = [(k, counts_raw.get(k) or 0) for k in ("eligible", "ineligible", "needs_info", "not_in_force")]
    totals, pro = [], []
    if w.get("state") in ("evaluated", "closed"):
        try:
            a = awards(rt, window_id)
            for cls, t in sorted(a["totals"].get("by_class", {}).items()):
                totals.append({"label": CLASS_NAMES.get(cls, cls), "count": t["count"],
                               "amount": t["amount_cny"]})
            if a["awards"]:
                totals.append({"label": "合计" + ("" if a["final"] else "（预览）"),
                               "count": a["totals"]["count"], "amount": a["totals"]["amount_cny"]})
        except Exception as e:
            if type(e).__name__ != "Conflict":
                raise
        try:
            for e in proactive(rt, window_id):
                for b in e["benefits"]:
                    pro.append({"uscc": e["uscc"], "name": e["name"], "title": b.get("title"),
                                "benefit_id": b["benefit_id"],
                                "subject_id": (b.get("subject") or {}).get("id"),
                                "amount_cny": b.get("amount_cny")})
        except Exception as e:
            if type(e).__name__ != "Conflict":
                raise
    return {"w": w, "counts": counts, "totals": totals, "proactive": pro}
