"""Web pages: the enterprise self-check (plain HTML forms) and the staff console."""
from __future__ import annotations

import json
import secrets
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api import domain, services
from pathlib import Path
HERE = Path(__file__).resolve().parent
from api.auth import (ROLE_NAMES, ROLE_RANK, SESSION_COOKIE, csrf_ok, csrf_token_for,
                      role_of_token)
from api.errors import ApiError, _domain_status, problems_of
from api.forms import (FIELDS, REG_FIELDS, VIOL_FIELDS, choices, field_value, label_for_path,
                       profile_from_form)
from api.limits import parse_json_limited

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(HERE / "templates"))

STATUS_ORDER = ("eligible", "ineligible", "needs_info", "not_in_force")
STATE_NAMES = {"open": "受理中", "evaluated": "已判定", "closed": "已关闭"}
LOGIN_CSRF_COOKIE = "yagu_login_csrf"


def _show(v: Any) -> str:
    if v is True:
        return "是"
    if v is False:
        return "否"
    if v is None:
        return "未提供"
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}"
    if isinstance(v, (int, float)):
        return f"{v:,}"
    if isinstance(v, dict):
        return "，".join(f"{label_for_path(k)} {_show(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "、".join(_show(x) for x in v) or "无"
    return str(v)


templates.env.globals.update(choices=choices, label=label_for_path, show=_show,
                             state_name=lambda s: STATE_NAMES.get(s, s or ""))


def _page(request: Request, name: str, ctx: dict, status: int = 200) -> HTMLResponse:
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _message(request, title, message, status, errors=None, back="/"):
    return _page(request, "message.html", {"title": title, "message": message, "errors": errors,
                                           "back": back, "is_error": status >= 400}, status)


# --- enterprise self-check -------------------------------------------------------------

def _form_ctx(profile: dict, as_of: str = "", regs_known="yes", viol_known="yes",
              extra_reg=0, extra_viol=0, errors=None, error_detail=None) -> dict:
    regs = [r for r in (profile.get("device_registrations") or []) if isinstance(r, dict)]
    viols = [v for v in (profile.get("violations") or []) if isinstance(v, dict)]
    regs = [{k: field_value(r, k) for k, *_ in REG_FIELDS} for r in regs]
    viols = [{k: field_value(v, k) for k, *_ in VIOL_FIELDS} for v in viols]
    regs += [{}] * (max(extra_reg, 0 if regs else 1))
    viols += [{}] * (max(extra_viol, 0 if viols else 1))
    hnte = profile.get("hnte_certificate")
    bad_fields, bad_rows, shown = set(), set(), []
    import re
    for e in errors or []:
        path = e["path"][len("profile."):] if e["path"].startswith("profile.") else e["path"]
        m = re.match(r"^(device_registrations|violations)\[(\d+)\]\.?(.*)$", path)
        if m:
            bad_rows.add((m.group(1), int(m.group(2)), m.group(3)))
        else:
            bad_fields.add(path.split(".")[0])
        shown.append({"label": label_for_path(path), "message": e["message"]})
    return {
        "fields": FIELDS, "reg_fields": REG_FIELDS, "viol_fields": VIOL_FIELDS,
        "values": {k: field_value(profile, k) for k, *_ in FIELDS},
        "hnte_state": "none" if hnte is False else ("held" if isinstance(hnte, dict) else ""),
        "hnte_number": (hnte or {}).get("number", "") if isinstance(hnte, dict) else "",
        "hnte_issued_on": (hnte or {}).get("issued_on", "") if isinstance(hnte, dict) else "",
        "regs": regs, "viols": viols, "regs_known": regs_known, "viol_known": viol_known,
        "as_of": as_of, "errors": shown, "error_detail": error_detail,
        "bad_fields": bad_fields, "bad_rows": bad_rows,
    }


@router.get("/", response_class=HTMLResponse)
async def selfcheck_form(request: Request):
    return _page(request, "selfcheck.html", _form_ctx({}))


def _parse_as_of(raw: str | None) -> tuple[date | None, list[dict]]:
    raw = (raw or "").strip()
    if not raw:
        return None, []
    try:
        return date.fromisoformat(raw), []
    except ValueError:
        return None, [{"path": "as_of", "message": "判定基准日应为日期，格式 YYYY-MM-DD"}]


async def _evaluate_for_page(request: Request, profile: Any, as_of: date | None):
    """Evaluate, or return the problems list (paths relative to the profile)."""
    rt = request.app.state.runtime
    try:
        resp = await services.eligibility(rt, profile, as_of, None)
    except ApiError as e:
        return None, e.detail, e.errors
    except Exception as e:  # ProfileError and friends
        if _domain_status(e) == 422:
            return None, f"填写的内容有 {len(problems_of(e))} 处问题", problems_of(e)
        raise
    return resp, None, None


def _results_ctx(profile: dict, resp) -> dict:
    data = resp.model_dump(mode="json")
    counts = {}
    for r in data["results"]:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"results": data["results"], "as_of": data["as_of"],
            "ruleset_version": data.get("ruleset_version") or "",
            "counts": [(s, counts[s]) for s in STATUS_ORDER if s in counts],
            "enterprise_name": profile.get("name", ""),
            "profile_json": json.dumps(profile, ensure_ascii=False)}


@router.post("/self-check", response_class=HTMLResponse)
async def selfcheck_submit(request: Request):
    rt = request.app.state.runtime
    form = await request.form(max_fields=rt.settings.max_certificates * 8 + 200)
    profile = profile_from_form(form)
    action = form.get("action", "check")
    as_of_raw = form.get("as_of", "")
    regs_known, viol_known = form.get("regs_known", "yes"), form.get("viol_known", "yes")
    if action in ("add_reg", "add_viol"):
        ctx = _form_ctx(profile, as_of_raw, regs_known, viol_known,
                        extra_reg=1 if action == "add_reg" else 0,
                        extra_viol=1 if action == "add_viol" else 0)
        return _page(request, "selfcheck.html", ctx)
    as_of, as_of_errors = _parse_as_of(as_of_raw)
    resp, detail, errors = (None, None, None)
    if not as_of_errors:
        resp, detail, errors = await _evaluate_for_page(request, profile, as_of)
    if resp is None:
        errors = (errors or []) + as_of_errors
        ctx = _form_ctx(profile, as_of_raw, regs_known, viol_known, errors=errors,
                        error_detail=detail or "填写的内容有误")
        return _page(request, "selfcheck.html", ctx, 422)
    return _page(request, "results.html", _results_ctx(profile, resp))


@router.post("/self-check/upload", response_class=HTMLResponse)
async def selfcheck_upload(request: Request):
    rt = request.app.state.runtime
    form = await request.form(max_fields=20)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return _message(request, "上传失败", "请选择一个企业画像 JSON 文件。", 422)
    data = await upload.read()
    try:
        doc = parse_json_limited(data, rt.settings.max_json_depth, rt.settings.max_object_keys)
    except ApiError as e:
        return _message(request, "上传失败", f"文件 {upload.filename}：{e.detail}", e.status)
    if isinstance(doc, dict) and isinstance(doc.get("profile"), dict):
        doc = doc["profile"]  # also accept a saved eligibility request
    as_of, as_of_errors = _parse_as_of(form.get("as_of"))
    if as_of_errors:
        return _message(request, "上传失败", "判定基准日有误", 422, as_of_errors)
    resp, detail, errors = await _evaluate_for_page(request, doc, as_of)
    if resp is None:
        errs = [{"path": label_for_path(e["path"]), "message": e["message"]} for e in errors]
        return _message(request, "企业画像有误", f"文件 {upload.filename}：{detail}", 422, errs)
    return _page(request, "results.html", _results_ctx(doc if isinstance(doc, dict) else {}, resp))


@router.post("/self-check/notice", response_class=HTMLResponse)
async def selfcheck_notice(request: Request):
    rt = request.app.state.runtime
    form = await request.form(max_fields=10)
    raw = (form.get("profile_json") or "").encode("utf-8")
    try:
        profile = parse_json_limited(raw, rt.settings.max_json_depth, rt.settings.max_object_keys)
    except ApiError as e:
        return _message(request, "无法生成告知书", e.detail, e.status)
    as_of, as_of_errors = _parse_as_of(form.get("as_of"))
    resp, detail, errors = await _evaluate_for_page(request, profile, as_of)
    if resp is None or as_of_errors:
        return _message(request, "无法生成告知书", detail or "判定基准日有误", 422,
                        errors or as_of_errors)
    html = await run_in_threadpool(domain.selfcheck_notice_html, profile, resp)
    if html is not None:
        return HTMLResponse(html)
    ctx = _results_ctx(profile, resp)
    ctx["uscc"] = profile.get("uscc", "")
    return _page(request, "notice.html", ctx)


@router.get("/lookup", response_class=HTMLResponse)
async def lookup(request: Request, application_id: str = "", access_code: str = ""):
    ctx = {"app": None, "application_id": application_id, "not_found": False}
    if application_id and access_code:
        try:
            app_data = await run_in_threadpool(
                domain.application_for_enterprise, request.app.state.runtime,
                application_id[:100], access_code[:200])
        except Exception as e:
            if _domain_status(e) != 404:
                raise
            ctx["not_found"] = True
            return _page(request, "application.html", ctx, 404)
        ctx["app"] = app_data
    return _page(request, "application.html", ctx)


# --- staff console -----------------------------------------------------------------

async def _session(request: Request) -> tuple[str, str] | None:
    token = request.cookies.get(SESSION_COOKIE)
    role = await role_of_token(request, token)
    return (token, role) if role else None


def _to_login() -> RedirectResponse:
    return RedirectResponse("/staff/login", status_code=303)


async def _form_with_csrf(request: Request, token: str):
    form = await request.form(max_fields=50)
    if not csrf_ok(token, form.get("csrf_token")):
        raise ApiError(403, "表单已失效（CSRF 校验失败），请刷新页面后重试")
    return form


@router.get("/staff/login", response_class=HTMLResponse)
async def staff_login_form(request: Request, error: str | None = None):
    csrf = secrets.token_urlsafe(24)
    resp = _page(request, "staff_login.html", {"csrf_token": csrf, "error": error},
                 401 if error else 200)
    resp.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/staff",
                    secure=request.app.state.settings.cookie_secure)
    return resp


@router.post("/staff/login")
async def staff_login(request: Request):
    form = await request.form(max_fields=10)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    submitted = form.get("csrf_token") or ""
    if not expected or not secrets.compare_digest(expected, submitted):
        return await staff_login_form(request, "登录表单已失效，请重新输入令牌。")
    token = (form.get("token") or "").strip()
    role = await role_of_token(request, token)
    if not role:
        return await staff_login_form(request, "令牌无效或已吊销。")
    resp = RedirectResponse("/staff", status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
                    secure=request.app.state.settings.cookie_secure, max_age=8 * 3600)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff")
    return resp


@router.post("/staff/logout")
async def staff_logout(request: Request):
    sess = await _session(request)
    if sess:
        await _form_with_csrf(request, sess[0])
    resp = RedirectResponse("/staff/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


def _staff_ctx(token: str, role: str, **kw) -> dict:
    return {"csrf_token": csrf_token_for(token), "role_name": ROLE_NAMES.get(role, role),
            "is_admin": ROLE_RANK.get(role, 0) >= ROLE_RANK["admin"], **kw}


@router.get("/staff", response_class=HTMLResponse)
async def staff_home(request: Request, flash: str | None = None, error: str | None = None):
    sess = await _session(request)
    if not sess:
        return _to_login()
    windows = await run_in_threadpool(domain.list_windows, request.app.state.runtime)
    return _page(request, "staff_home.html",
                 _staff_ctx(*sess, windows=windows, flash=flash, error=error))


@router.post("/staff/windows")
async def staff_create_window(request: Request):
    sess = await _session(request)
    if not sess:
        return _to_login()
    form = await _form_with_csrf(request, sess[0])
    try:
        await run_in_threadpool(domain.open_window_from_form, request.app.state.runtime,
                                dict(form), f"console:{sess[1]}")
    except Exception as e:
        status = _domain_status(e) or (e.status if isinstance(e, ApiError) else None)
        if status is None:
            raise
        msg = e.detail if isinstance(e, ApiError) else str(e)
        errs = problems_of(e) if not isinstance(e, ApiError) else e.errors
        if errs:
            msg += "：" + "；".join(f"{x['path']} {x['message']}" for x in errs)
        return await staff_home(request, error=msg)
    return RedirectResponse(f"/staff/windows/{form.get('id')}", status_code=303)


@router.get("/staff/windows/{window_id}", response_class=HTMLResponse)
async def staff_window(request: Request, window_id: str, flash: str | None = None,
                       error: str | None = None):
    sess = await _session(request)
    if not sess:
        return _to_login()
    try:
        view = await run_in_threadpool(domain.window_console, request.app.state.runtime, window_id)
    except Exception as e:
        if _domain_status(e) != 404:
            raise
        return _message(request, "未找到", f"申报批次 {window_id} 不存在。", 404, back="/staff")
    return _page(request, "staff_window.html", _staff_ctx(*sess, flash=flash, error=error, **view))


async def _staff_action(request: Request, window_id: str, name: str, need: str, done: str):
    sess = await _session(request)
    if not sess:
        return _to_login()
    await _form_with_csrf(request, sess[0])
    if ROLE_RANK.get(sess[1], 0) < ROLE_RANK[need]:
        return await staff_window(request, window_id, error=f"无权限：此操作需要{ROLE_NAMES[need]}角色")
    try:
        await run_in_threadpool(getattr(domain, name), request.app.state.runtime, window_id,
                                f"console:{sess[1]}")
    except Exception as e:
        if _domain_status(e) is None:
            raise
        return await staff_window(request, window_id, error=str(e))
    return await staff_window(request, window_id, flash=done)


@router.post("/staff/windows/{window_id}/evaluate", response_class=HTMLResponse)
async def staff_evaluate(request: Request, window_id: str):
    return await _staff_action(request, window_id, "evaluate_window", "staff", "批量判定已完成。")


@router.post("/staff/windows/{window_id}/close", response_class=HTMLResponse)
async def staff_close(request: Request, window_id: str):
    return await _staff_action(request, window_id, "close_window", "admin", "批次已关闭，拟支持名单已生成。")


async def _staff_download(request: Request, window_id: str, name: str, media: str, filename: str):
    sess = await _session(request)
    if not sess:
        return _to_login()
    try:
        data = await run_in_threadpool(getattr(domain, name), request.app.state.runtime, window_id)
    except Exception as e:
        status = _domain_status(e)
        if status is None:
            raise
        return _message(request, "无法下载", str(e), status, back=f"/staff/windows/{window_id}")
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/staff/windows/{window_id}/awards.xlsx")
async def staff_awards(request: Request, window_id: str):
    return await _staff_download(
        request, window_id, "awards_xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", f"awards-{window_id}.xlsx")


@router.get("/staff/windows/{window_id}/notices.zip")
async def staff_notices(request: Request, window_id: str):
    return await _staff_download(request, window_id, "notices_zip", "application/zip",
                                 f"notices-{window_id}.zip")
