"""The enterprise's pages: the self-check, applying in an open window, and its application page
(login with the access code, the one-time notice, the 补正, notices and materials).

Plain HTML forms (no JavaScript needed); every POST redirects or renders a result page. The
access code is posted once and kept in a server-side session, never in a URL.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, problems
from api.forms import form_of, form_values, profile_from_form, value_of, widget
from api.limits import parse_json_limited
from api.schemas import parse_day
from api.security import ENTERPRISE_COOKIE, csrf_ok, csrf_token_for, enterprise_session
from api.views import page
from engine.profile import ProfileError, parse_profile, shanghai_today
from engine.results import EligibilityResponse
from store import applications, cases, sessions
from store import windows as W
from store.errors import Conflict, NotFound, ValidationFailed

router = APIRouter(include_in_schema=False)


def _rt(request: Request):
    return request.app.state.runtime


def _as_of(raw: str | None) -> tuple[date | None, list[dict]]:
    """The form's 判定日期, checked as every endpoint checks a date (api.schemas.parse_day)."""
    raw = (raw or "").strip()
    if not raw:
        return None, []
    try:
        return parse_day(raw), []
    except ValueError as e:
        return None, [{"path": "as_of", "message": str(e)}]


def _form_page(request: Request, profile: dict, *, as_of: str = "", errors: list[dict] | None = None,
               extra: dict | None = None, status: int = 200, action: str = "/self-check", title: str = "惠企政策自测",
               window: Any = None) -> HTMLResponse:
    reg = _rt(request).evaluator.registry
    add = extra or {}
    shown = [{"label": reg.label(e["path"].removeprefix("profile."), profile) if e.get("path") not in ("as_of", "claims")
              else {"as_of": "判定日期", "claims": "申报的注册证"}[e["path"]], "message": e["message"]}
             for e in errors or []]
    bad = {e["path"].removeprefix("profile.") for e in errors or []}
    values = form_values(profile, reg)
    for spec, _w in form_of(reg).lists:
        values[spec.id] = values.get(spec.id, []) + [{}] * (add.get(spec.id, 0) + (0 if values.get(spec.id) else 1))
    return page(request, "selfcheck.html", {"form": form_of(reg), "values": values, "as_of": as_of,
                                            "errors": shown, "bad": bad, "action": action, "title": title,
                                            "window": window}, status)


@router.get("/", response_class=HTMLResponse)
async def selfcheck_form(request: Request):
    return _form_page(request, {})


async def _evaluate(request: Request, profile: Any, as_of: date | None) -> tuple[EligibilityResponse | None, list]:
    rt = _rt(request)

    def run():
        ev = rt.evaluator
        p = parse_profile(profile, ev.registry)
        return ev.evaluate(p, as_of=as_of or shanghai_today(), awarded=rt.ledger_for(p))
    try:
        return await run_in_threadpool(run), []
    except ProfileError as e:
        return None, problems(e, "profile")


def _results_page(request: Request, profile: dict, resp: EligibilityResponse) -> HTMLResponse:
    ev = _rt(request).evaluator
    tax = [r for r in resp.results if r.kind == "tax"]
    tax_year = next((r.tax_year for r in tax if r.tax_year), None)
    items, conflicts = ev.tax_view(tax, tax_year or resp.as_of.year)
    return page(request, "results.html", {
        "resp": resp, "grants": [r for r in resp.results if r.kind != "tax"], "tax": items, "conflicts": conflicts,
        "tax_year": tax_year, "profile": profile, "profile_json": json.dumps(profile, ensure_ascii=False),
        "registry": ev.registry, "counts": _counts(resp)})


def _counts(resp: EligibilityResponse) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for r in resp.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return [(s, counts[s]) for s in ("eligible", "needs_info", "ineligible", "not_in_force") if s in counts]


@router.post("/self-check", response_class=HTMLResponse)
async def selfcheck_submit(request: Request):
    reg = _rt(request).evaluator.registry
    form = await request.form(max_fields=3000)
    profile = profile_from_form(form, reg)
    action = str(form.get("action", "check"))
    if action.startswith("add:"):
        return _form_page(request, profile, as_of=str(form.get("as_of", "")), extra={action[4:]: 1})
    as_of, errors = _as_of(str(form.get("as_of", "")))
    resp = None
    if not errors:
        resp, errors = await _evaluate(request, profile, as_of)
    if resp is None:
        return _form_page(request, profile, as_of=str(form.get("as_of", "")), errors=errors, status=422)
    return _results_page(request, profile, resp)


@router.post("/self-check/upload", response_class=HTMLResponse)
async def selfcheck_upload(request: Request):
    settings = request.app.state.settings
    form = await request.form(max_fields=20)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return page(request, "message.html", {"title": "上传失败", "message": "请选择一个企业画像 JSON 文件。"}, 422)
    data = await upload.read(settings.max_body_bytes + 1)        # the JSON limit applies to uploads too
    if len(data) > settings.max_body_bytes:
        return page(request, "message.html", {"title": "上传失败", "message":
                    f"文件超过 {settings.max_body_bytes // (1024 * 1024)} MB 的上限"}, 413)
    try:
        doc = parse_json_limited(data, settings.max_json_depth, settings.max_object_keys)
    except ApiError as e:
        return page(request, "message.html", {"title": "上传失败", "message": e.detail}, e.status)
    if isinstance(doc, dict) and isinstance(doc.get("profile"), dict):
        doc = doc["profile"]        # also accept a saved eligibility request
    as_of, errors = _as_of(str(form.get("as_of", "")))
    resp = None
    if not errors:
        resp, errors = await _evaluate(request, doc, as_of)
    if resp is None:
        return _form_page(request, doc if isinstance(doc, dict) else {}, errors=errors, status=422)
    return _results_page(request, doc, resp)


@router.post("/self-check/print", response_class=HTMLResponse)
async def selfcheck_print(request: Request):
    """The printable 自测结果 of a profile (not a decision: no number, no signature)."""
    settings = request.app.state.settings
    form = await request.form(max_fields=10)
    raw = str(form.get("profile_json") or "").encode("utf-8")[: settings.max_body_bytes + 1]
    try:
        profile = parse_json_limited(raw, settings.max_json_depth, settings.max_object_keys)
    except ApiError as e:
        return page(request, "message.html", {"title": "无法打印", "message": e.detail}, e.status)
    as_of, errors = _as_of(str(form.get("as_of", "")))
    resp, errors = (None, errors) if errors else await _evaluate(request, profile, as_of)
    if resp is None:
        return page(request, "message.html", {"title": "无法打印", "message": "企业画像有误，请返回修改后再打印。"}, 422)
    doc = await run_in_threadpool(request.app.state.notices.selfcheck, _rt(request).evaluator, profile, resp,
                                  str(form.get("format", "html")))
    if doc.filename.endswith(".pdf"):
        return Response(doc.data, media_type="application/pdf", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})
    return HTMLResponse(doc.data.decode("utf-8"))


# --- applying ------------------------------------------------------------------------------------
@router.get("/apply", response_class=HTMLResponse)
async def apply_index(request: Request):
    ws = await run_in_threadpool(W.list_windows, _rt(request).db)
    today = shanghai_today()
    return page(request, "apply_index.html", {"open": [w for w in ws if w.state == "open" and w.opens_on <= today <= w.closes_on],
                                               "upcoming": [w for w in ws if w.state == "open" and today < w.opens_on]})


@router.get("/apply/{window_id}", response_class=HTMLResponse)
async def apply_form(request: Request, window_id: str):
    try:
        w = await run_in_threadpool(W.get_window, _rt(request).db, window_id)
    except NotFound:
        return page(request, "message.html", {"title": "未找到", "message": "没有这个申报批次。", "back": "/apply"}, 404)
    return _form_page(request, {}, action=f"/apply/{w.id}", title=f"在线申报：{w.label}", window=w)


@router.post("/apply/{window_id}", response_class=HTMLResponse)
async def apply_submit(request: Request, window_id: str):
    rt = _rt(request)
    form = await request.form(max_fields=3000)
    profile = profile_from_form(form, rt.evaluator.registry)
    action = str(form.get("action", "check"))
    try:
        w = await run_in_threadpool(W.get_window, rt.db, window_id)
    except NotFound:
        return page(request, "message.html", {"title": "未找到", "message": "没有这个申报批次。", "back": "/apply"}, 404)
    if action.startswith("add:"):
        return _form_page(request, profile, action=f"/apply/{w.id}", title=f"在线申报：{w.label}", window=w,
                          extra={action[4:]: 1})
    try:
        sub = await run_in_threadpool(applications.submit_application, rt.db, window_id, profile, None, "web",
                                      actor="企业（网上申报）")
    except ValidationFailed as e:
        return _form_page(request, profile, action=f"/apply/{w.id}", title=f"在线申报：{w.label}", window=w,
                          errors=problems(e), status=422)
    except Conflict as e:
        return page(request, "message.html", {"title": "不能申报", "message": e.message, "back": "/apply"}, 409)
    return page(request, "applied.html", {"sub": sub, "window": w})


# --- the enterprise's application page ------------------------------------------------------------
@router.get("/application", response_class=HTMLResponse)
async def application_login_form(request: Request, failed: int = 0):
    sess = await enterprise_session(request)
    if sess and not failed:
        return RedirectResponse("/application/view", status_code=303)
    return page(request, "application_login.html", {"failed": bool(failed)}, 401 if failed else 200)


@router.post("/application/login")
async def application_login(request: Request):
    rt = _rt(request)
    form = await request.form(max_fields=10)
    app_id = str(form.get("application_id", "")).strip().upper()[:32]
    code = str(form.get("access_code", ""))[:64]
    ok = await run_in_threadpool(applications.check_access_code, rt.db, app_id, code)
    if not ok:
        return RedirectResponse("/application?failed=1", status_code=303)
    sid = await run_in_threadpool(sessions.open_session, rt.db, "enterprise", app_id, "enterprise")
    resp = RedirectResponse("/application/view", status_code=303)
    resp.set_cookie(ENTERPRISE_COOKIE, sid, httponly=True, samesite="strict", path="/application",
                    secure=request.app.state.settings.cookie_secure)
    return resp


async def _applicant(request: Request) -> tuple[str, str] | None:
    return await enterprise_session(request)


@router.get("/application/view", response_class=HTMLResponse)
async def application_view(request: Request, done: str = ""):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    sid, app_id = sess
    d = await run_in_threadpool(cases.detail, _rt(request).db, app_id)
    reg = _rt(request).evaluator.registry
    ask_fields = [{"path": p, "label": reg.label(p, d.profile), "widget": _widget_for(reg, p)}
                  for p in (d.correction.facts if d.correction else [])]
    return page(request, "application.html", {"d": d, "csrf": csrf_token_for(sid), "ask_fields": ask_fields,
                                               "registry": reg, "done": DONE.get(done, ""),
                                               "kinds": request.app.state.notices.kinds_for(d)})


DONE = {"corrected": "补正已提交，已重新判定，结果如下。", "committed": "容缺承诺已签署。"}


def _widget_for(registry, path: str):
    spec = registry.field_at(path)
    return widget(spec, path) if spec else None


@router.post("/application/correction", response_class=HTMLResponse)
async def application_correction(request: Request):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    sid, app_id = sess
    rt = _rt(request)
    form = await request.form(max_fields=500, max_files=50)
    if not csrf_ok(sid, str(form.get("csrf", ""))):
        return page(request, "message.html", {"title": "表单已失效", "message": "请刷新页面后重试。",
                                               "back": "/application/view"}, 403)
    d = await run_in_threadpool(cases.detail, rt.db, app_id)
    reg = rt.evaluator.registry
    facts = {}
    for p in (d.correction.facts if d.correction else []):
        raw = str(form.get(f"fact:{p}", "")).strip()
        spec = reg.field_at(p)
        if raw and spec is not None:
            facts[p] = value_of(spec, raw)
    uploads = []
    for key, f in form.multi_items():
        if key.startswith("file:") and not isinstance(f, str) and f.filename:
            benefit, material = key[5:].split("|", 1)
            uploads.append((benefit, material, f.filename, await f.read()))
    try:
        await run_in_threadpool(lambda: cases.submit_correction(rt.db, app_id, facts, uploads, actor=f"企业（申报 {app_id}）",
                                                                revision=int(form.get("revision") or -1)))
    except (ValidationFailed, Conflict, ProfileError) as e:
        msgs = problems(e) if not isinstance(e, Conflict) else [{"path": "", "message": e.message}]
        return page(request, "message.html", {"title": "补正未提交", "message": "；".join(
            f"{reg.label(m['path'], d.profile) if m.get('path') else ''} {m['message']}".strip() for m in msgs),
            "back": "/application/view"}, 409 if isinstance(e, Conflict) else 422)
    return RedirectResponse("/application/view?done=corrected", status_code=303)


@router.post("/application/commit")
async def application_commit(request: Request):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    sid, app_id = sess
    form = await request.form(max_fields=10)
    if not csrf_ok(sid, str(form.get("csrf", ""))):
        return page(request, "message.html", {"title": "表单已失效", "message": "请刷新页面后重试。"}, 403)
    try:
        await run_in_threadpool(lambda: cases.commit_material(
            _rt(request).db, app_id, str(form.get("benefit_id", "")), str(form.get("material_id", "")),
            str(form.get("signer", "")), actor=f"企业（申报 {app_id}）"))
    except (ValidationFailed, Conflict) as e:
        return page(request, "message.html", {"title": "承诺未签署", "message": str(e), "back": "/application/view"}, 422)
    return RedirectResponse("/application/view?done=committed", status_code=303)


@router.get("/application/notices/{kind}")
async def application_notice(request: Request, kind: str, format: str = "html"):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    try:
        doc = await run_in_threadpool(request.app.state.notices.render, sess[1], kind, "pdf" if format == "pdf" else "html")
    except (Conflict, NotFound) as e:
        return page(request, "message.html", {"title": "暂无该文书", "message": str(e), "back": "/application/view"}, 409)
    if format == "pdf":
        return Response(doc.data, media_type="application/pdf",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})
    return HTMLResponse(doc.data.decode("utf-8"))


@router.get("/application/materials/{material_pk}")
async def application_material(request: Request, material_pk: int):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    m, data = await run_in_threadpool(cases.material_file, _rt(request).db, sess[1], material_pk)
    return Response(data, media_type=m.content_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(m.filename)}"})


@router.post("/application/logout")
async def application_logout(request: Request):
    sess = await _applicant(request)
    if sess:
        await run_in_threadpool(sessions.end, _rt(request).db, sess[0])
    resp = RedirectResponse("/application", status_code=303)
    resp.delete_cookie(ENTERPRISE_COOKIE, path="/application")
    return resp
