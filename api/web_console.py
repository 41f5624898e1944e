"""The staff console: windows, applications, 复核, 公示, closing, imports, notices, jobs, tokens.

Every form carries a CSRF token and redirects after POST (a refresh never repeats an action);
a message after an action is chosen by the server from a fixed list (`?done=<code>`), never
text from the URL. Long work runs as background jobs whose page shows their progress.
"""
from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import FIELD_NAMES, problems
from api.security import STAFF_COOKIE, ROLE_RANK, Staff, console_session, csrf_ok, csrf_token_for
from api.views import notice_page, page
from engine.profile import shanghai_today
from engine.vocabulary import APPLICATION_STATE, STATUS
from store import amounts, applications, awards, cases, exports, jobs, sessions, tokens
from store import windows as W
from store.paths import draft_names, draft_rules, rules_drafts
from store.errors import Conflict, NotFound, RowProblem, StoreError, ValidationFailed
from store.intake import CellError, read_value, template_bytes
from store.tasks import evaluation_summary, impact_lines, stash_upload

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "yagu_login_csrf"
NEW_CODE_COOKIE = "yagu_new_code"
NEW_TOKEN_COOKIE = "yagu_new_token"
DONE = {
    "created": "申报批次已建立。", "notices": "已发出 {n} 份一次性告知书（资金支持未全部符合条件的申报），补正期限已起算。", "published": "拟支持名单已公示。",
    "closed": "批次已关闭，兑现名单已写入兑现台账。", "reviewed": "复核已记录。", "material": "材料审核已记录。",
    "objection": "异议已登记。", "resolved": "异议处理已记录。", "token": "令牌已吊销。", "cancelled": "任务已取消。",
    "deleted": "申报批次已删除。",
    "amounts": "本批次金额已设定，替代规则中的参考金额。请重新批量判定：判定结果和拟支持名单按新金额计算后才能公示。",
    "amounts_cleared": "已恢复规则中的参考金额。请重新批量判定。",
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _db(request: Request):
    return request.app.state.runtime.db


def _to_login(request: Request) -> RedirectResponse:
    """To the login; back to this page afterwards (a page, not a form's POST), and saying why
    when a session had been there (expired, ended, or its token revoked or expired)."""
    query = {}
    if request.cookies.get(STAFF_COOKIE):
        query["expired"] = "1"
    if request.method == "GET" and request.url.path != "/staff":
        query["next"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    elif request.method != "GET":       # a form sent: back to the page it was sent from, on this site
        ref = urlsplit(request.headers.get("referer") or "")
        if ref.netloc == request.url.netloc and ref.path.startswith("/staff/") and ref.path != "/staff/login":
            query["next"] = ref.path + (f"?{ref.query}" if ref.query else "")
    return RedirectResponse("/staff/login" + (f"?{urlencode(query)}" if query else ""), status_code=303)


def _next_page(target: str) -> str:
    """Where a login returns to: a console page of this site only."""
    ok = target.startswith("/staff") and not target.startswith(("/staff/login", "//")) and "\\" not in target
    return target if ok and len(target) <= 500 else "/staff"


def _ctx(sid: str, who: Staff, **kw: Any) -> dict:
    return {"csrf": csrf_token_for(sid), "who": who, **kw}


async def _form(request: Request, sid: str, **limits: int):
    form = await request.form(**({"max_fields": 100} | limits))
    if not csrf_ok(sid, str(form.get("csrf", ""))):
        raise Conflict("表单已失效（CSRF 校验失败），请刷新页面后重试")
    return form




def _error_page(request: Request, exc: Exception, back: str, sess=None) -> HTMLResponse:
    """Why an action was refused, in the console's frame; nothing was changed."""
    status = 404 if isinstance(exc, NotFound) else 422 if isinstance(exc, ValidationFailed) else 409
    if isinstance(exc, ValidationFailed):
        # the store's own lead-in where it has one ("未分析："), else the common one
        text = exc.message if exc.message.endswith("：") else "未保存，请修改后重试："
        msgs = [{**p, "label": FIELD_NAMES.get(p.get("path", ""), "")} for p in problems(exc)]
    else:
        text, msgs = getattr(exc, "message", None) or str(exc), []
    ctx = {"title": "操作未完成", "message": text, "errors": msgs, "back": back, "layout": "_staff.html"}
    return page(request, "message.html", {**ctx, **(_ctx(*sess) if sess else {})}, status)


def _download(data: bytes, media: str, filename: str) -> Response:
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


# --- login ---------------------------------------------------------------------------------------
@router.get("/staff/login", response_class=HTMLResponse)
async def login_form(request: Request, failed: int = 0, expired: int = 0, next: str = ""):
    csrf = secrets.token_urlsafe(24)
    resp = page(request, "staff_login.html", {"csrf": csrf, "failed": bool(failed), "expired": bool(expired),
                                              "next": _next_page(next) if next else ""}, 401 if failed else 200)
    resp.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/staff",
                    secure=request.app.state.settings.cookie_secure)
    return resp


@router.post("/staff/login")
async def login(request: Request):
    form = await request.form(max_fields=10)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    back = _next_page(str(form.get("next") or "/staff"))
    again = "/staff/login?" + urlencode({"failed": 1, **({"next": back} if back != "/staff" else {})})
    if not expected or not secrets.compare_digest(expected, str(form.get("csrf", ""))):
        return RedirectResponse(again, status_code=303)
    ident = await run_in_threadpool(tokens.authenticate, _db(request), str(form.get("token", "")).strip())
    if ident is None:
        return RedirectResponse(again, status_code=303)
    sid = await run_in_threadpool(sessions.open_session, _db(request), "staff", str(ident.token_id), ident.role)
    resp = RedirectResponse(back, status_code=303)
    resp.set_cookie(STAFF_COOKIE, sid, httponly=True, samesite="strict", path="/staff",
                    secure=request.app.state.settings.cookie_secure, max_age=sessions.STAFF_HOURS * 3600)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff")
    return resp


@router.post("/staff/logout")
async def logout(request: Request):
    sess = await console_session(request)
    if sess:
        await _form(request, sess[0])
        await run_in_threadpool(sessions.end, _db(request), sess[0])
    resp = RedirectResponse("/staff/login", status_code=303)
    resp.delete_cookie(STAFF_COOKIE, path="/staff")
    return resp


# --- windows -------------------------------------------------------------------------------------
WINDOW_FIELDS = ("label", "opens_on", "closes_on", "as_of", "coverage_from", "coverage_to",
                 "correction_workdays", "publicity_workdays")


async def _home(request: Request, sess, done: str = "", form: dict | None = None, errors: list | None = None,
                status: int = 200) -> HTMLResponse:
    ws = await run_in_threadpool(W.list_windows, _db(request))
    recent = await run_in_threadpool(jobs.list_jobs, _db(request))
    return page(request, "staff_home.html", _ctx(*sess, windows=ws, jobs=recent, done=DONE.get(done, ""),
                                                 form=form or {}, errors=errors or [], today=shanghai_today()),
                status)


@router.get("/staff", response_class=HTMLResponse)
async def home(request: Request, done: str = ""):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    return await _home(request, sess, done)


@router.post("/staff/windows")
async def create_window(request: Request):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    typed: dict = {}
    try:
        form = await _form(request, sess[0])
        typed = {k: str(form.get(k) or "").strip() for k in ("id", *WINDOW_FIELDS)}
        fields: dict[str, Any] = {k: typed[k] or None for k in
                                  ("opens_on", "closes_on", "as_of", "coverage_from", "coverage_to", "label")}
        for k in ("correction_workdays", "publicity_workdays"):
            fields[k] = int(typed[k]) if typed[k].isdigit() else (typed[k] or None)
        w = await run_in_threadpool(lambda: W.open_window(_db(request), typed["id"], actor=sess[1].actor, **fields))
    except ValidationFailed as e:
        errors = [{"label": FIELD_NAMES.get(p["path"], ""), "message": p["message"], "path": p["path"]}
                  for p in problems(e)]
        return await _home(request, sess, form=typed, errors=errors, status=422)
    except StoreError as e:
        return _error_page(request, e, "/staff", sess)
    return RedirectResponse(f"/staff/windows/{quote(w.id)}?done=created", status_code=303)


@router.get("/staff/windows/{window_id}", response_class=HTMLResponse)
async def window_page(request: Request, window_id: str, done: str = "", n: int = 0):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        w = await run_in_threadpool(W.get_window, _db(request), window_id)
    except NotFound as e:
        return _error_page(request, e, "/staff", sess)
    return await _window_view(request, sess, w, DONE.get(done, "").format(n=max(n, 0)))


async def _window_view(request: Request, sess, w, done: str = "", status: int = 200, **amount_form) -> HTMLResponse:
    """The window's page; `amount_form`: the amounts as typed and their problems, after a refusal."""
    recent = await run_in_threadpool(lambda: jobs.list_jobs(_db(request), window_id=w.id, limit=10))
    preview = await run_in_threadpool(awards.close_preview, _db(request), w.id) if w.evaluated_at else None
    tables = await run_in_threadpool(amounts.tables, w.amounts, w.as_of)
    return page(request, "staff_window.html", _ctx(*sess, w=w, jobs=recent, preview=preview, done=done,
                                                   today=shanghai_today(), drafts=draft_names(),
                                                   drafts_dir=str(rules_drafts()), amount_tables=tables,
                                                   amount_typed=amount_form.get("typed") or {},
                                                   amount_errors=amount_form.get("errors") or [],
                                                   unset=request.app.state.notices.settings.unset()), status)


@router.get("/staff/windows/{window_id}/amounts")
async def amounts_page(window_id: str):
    """The form lives on the window's page (a reload after a refused form lands here)."""
    return RedirectResponse(f"/staff/windows/{quote(window_id)}#amounts", status_code=303)


@router.post("/staff/windows/{window_id}/amounts")
async def set_amounts(request: Request, window_id: str):
    """The round notice's amounts for this window (admin), or back to the rules' reference ones."""
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/windows/{quote(window_id)}"
    if not sess[1].is_admin:
        return page(request, "message.html", _ctx(*sess, title="无权限", message="设定本批次金额需要管理员角色。",
                                                  back=back, layout="_staff.html"), 403)
    db = _db(request)
    try:
        form = await _form(request, sess[0])
        w = await run_in_threadpool(W.get_window, db, window_id)
        clear = form.get("action") == "clear"
        if clear:
            chosen: dict = {}
        else:
            chosen, found = await run_in_threadpool(amounts.read_form, form, w.amounts, w.as_of)
            if found:
                raise ValidationFailed(found, "未设定：")
        await run_in_threadpool(lambda: W.set_amounts(db, window_id, chosen, actor=sess[1].actor))
    except ValidationFailed as e:
        names = await run_in_threadpool(amounts.labels, w.amounts, w.as_of)
        errors = [{"label": names.get(p["path"], ""), "message": p["message"], "path": p["path"]} for p in problems(e)]
        typed = {k: str(v) for k, v in form.multi_items() if k.startswith(amounts.FIELD)}
        return await _window_view(request, sess, w, status=422, typed=typed, errors=errors)
    except StoreError as e:
        return _error_page(request, e, back, sess)
    return RedirectResponse(f"{back}?done={'amounts_cleared' if clear else 'amounts'}", status_code=303)


async def _submit_job(request: Request, kind: str, args: dict, lock: str | None) -> Response:
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        await _form(request, sess[0])
        await run_in_threadpool(W.require_startable, _db(request), kind, args.get("window_id"))
        job_id = await run_in_threadpool(jobs.submit, _db(request), kind, {**args, "actor": sess[1].actor},
                                         actor=sess[1].actor, lock_key=lock)
    except StoreError as e:
        return _error_page(request, e, f"/staff/windows/{quote(args.get('window_id') or '')}", sess)
    return RedirectResponse(f"/staff/jobs/{job_id}", status_code=303)


@router.post("/staff/windows/{window_id}/evaluate")
async def evaluate(request: Request, window_id: str):
    return await _submit_job(request, "window.evaluate", {"window_id": window_id}, f"window:{window_id}")


@router.post("/staff/windows/{window_id}/notices")
async def notice_bundle(request: Request, window_id: str):
    return await _submit_job(request, "notices.bundle", {"window_id": window_id}, f"notices:{window_id}")


@router.post("/staff/windows/{window_id}/replay")
async def replay(request: Request, window_id: str):
    return await _submit_job(request, "window.replay", {"window_id": window_id}, f"replay:{window_id}")


@router.post("/staff/windows/{window_id}/impact")
async def impact(request: Request, window_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    form = await request.form(max_fields=10)
    args = {"window_id": window_id, "rules_dir": str(form.get("rules_dir") or "").strip() or None,
            "as_of": str(form.get("as_of") or "").strip() or None}
    try:
        if not csrf_ok(sess[0], str(form.get("csrf", ""))):
            raise Conflict("表单已失效（CSRF 校验失败），请刷新页面后重试")
        if not args["rules_dir"] and not args["as_of"]:
            raise ValidationFailed([RowProblem("请选择另一套规则，或填写另一个判定日期（否则是现行规则与自己比较）",
                                               path="rules_dir")], "未分析：")
        if args["rules_dir"]:
            args["rules_dir"] = draft_rules(args["rules_dir"])
        job_id = await run_in_threadpool(jobs.submit, _db(request), "window.impact", {**args, "actor": sess[1].actor},
                                         actor=sess[1].actor, lock_key=f"impact:{window_id}")
    except StoreError as e:
        return _error_page(request, e, f"/staff/windows/{quote(window_id)}", sess)
    return RedirectResponse(f"/staff/jobs/{job_id}", status_code=303)


@router.post("/staff/windows/{window_id}/import")
async def import_file(request: Request, window_id: str):
    return await _upload_job(request, window_id)


@router.post("/staff/registry/import")
async def import_registry(request: Request):
    return await _upload_job(request, None)


async def _upload_job(request: Request, window_id: str | None) -> Response:
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/windows/{quote(window_id)}" if window_id else "/staff"
    try:
        form = await _form(request, sess[0], max_files=1)
        await run_in_threadpool(W.require_startable, _db(request), "applications.import", window_id)
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise ValidationFailed([], "请选择要导入的 .xlsx 或 .csv 文件")
        path = stash_upload(await upload.read(), upload.filename)
        job_id = await run_in_threadpool(jobs.submit, _db(request), "applications.import",
                                         {"window_id": window_id, "path": path, "filename": upload.filename[:200],
                                          "skip_invalid": form.get("skip_invalid") == "yes", "actor": sess[1].actor},
                                         actor=sess[1].actor, lock_key=f"import:{window_id or 'registry'}")
    except StoreError as e:
        return _error_page(request, e, back, sess)
    return RedirectResponse(f"/staff/jobs/{job_id}", status_code=303)


@router.get("/staff/template.xlsx")
async def template(request: Request):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    data = await run_in_threadpool(template_bytes, request.app.state.runtime.evaluator.registry)
    return _download(data, XLSX, "申报导入模板.xlsx")


async def _window_action(request: Request, window_id: str, fn, done: str, need: str = "staff", **kw) -> Response:
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/windows/{quote(window_id)}"
    if ROLE_RANK[sess[1].role] < ROLE_RANK[need]:
        return page(request, "message.html", _ctx(*sess, title="无权限", message="此操作需要管理员角色。", back=back,
                                                  layout="_staff.html"), 403)
    try:
        form = await _form(request, sess[0])
        result = await run_in_threadpool(lambda: fn(_db(request), window_id, actor=sess[1].actor,
                                                    **{k: (str(form.get(k) or "") or None) for k in kw.get("fields", ())}))
    except StoreError as e:
        return _error_page(request, e, back, sess)
    count = f"&n={result}" if isinstance(result, int) else ""
    return RedirectResponse(f"{back}?done={done}{count}", status_code=303)


@router.post("/staff/windows/{window_id}/delete")
async def delete_window(request: Request, window_id: str):
    resp = await _window_action(request, window_id, W.delete_window, "deleted")
    if resp.status_code == 303:             # the window's page is gone: back to the list
        return RedirectResponse("/staff?done=deleted", status_code=303)
    return resp


@router.get("/staff/windows/{window_id}/one-time-notices", response_class=HTMLResponse)
async def one_time_notices_confirm(request: Request, window_id: str):
    notices = request.app.state.notices

    def preview(db, window_id):
        shown = cases.one_time_preview(db, window_id)
        unset = notices.settings.unset()
        if unset:       # no notice is issued while a setting it prints is unset
            shown["blocked"].append(f"文书设置未填写（{'、'.join(unset)}），暂不能出具正式文书")
        return shown
    return await _confirmation(request, window_id, preview, "staff_one_time.html")


@router.post("/staff/windows/{window_id}/one-time-notices")
async def one_time_notices(request: Request, window_id: str):
    return await _window_action(request, window_id, request.app.state.notices.issue_one_time_notices, "notices")


async def _confirmation(request: Request, window_id: str, preview, template: str) -> Response:
    """A step's confirmation page: what it would do to the window (`preview`), before it does."""
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        w = await run_in_threadpool(W.get_window, _db(request), window_id)
        shown = await run_in_threadpool(preview, _db(request), window_id)
    except StoreError as e:
        return _error_page(request, e, "/staff", sess)
    return page(request, template, _ctx(*sess, w=w, preview=shown))


@router.get("/staff/windows/{window_id}/publish", response_class=HTMLResponse)
async def publish_confirm(request: Request, window_id: str):
    return await _confirmation(request, window_id, awards.publish_preview, "staff_publish.html")


@router.post("/staff/windows/{window_id}/publish")
async def publish(request: Request, window_id: str):
    return await _window_action(request, window_id, awards.publish, "published")


@router.get("/staff/windows/{window_id}/close", response_class=HTMLResponse)
async def close_confirm(request: Request, window_id: str):
    return await _confirmation(request, window_id, awards.close_preview, "staff_close.html")


@router.post("/staff/windows/{window_id}/close")
async def close(request: Request, window_id: str):
    resp = await _window_action(request, window_id, awards.close_window, "closed", need="admin", fields=("reason",))
    request.app.state.runtime.invalidate_ledger()
    return resp


@router.get("/staff/windows/{window_id}/awards.xlsx")
async def awards_xlsx(request: Request, window_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        data = await run_in_threadpool(exports.export_awards, _db(request), window_id, "xlsx")
        name = await run_in_threadpool(exports.awards_filename, _db(request), window_id, "xlsx")
    except StoreError as e:
        return _error_page(request, e, f"/staff/windows/{quote(window_id)}", sess)
    return _download(data, XLSX, name)


@router.get("/staff/windows/{window_id}/awards", response_class=HTMLResponse)
async def award_list(request: Request, window_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        al = await run_in_threadpool(awards.list_awards, _db(request), window_id)
        pro = await run_in_threadpool(awards.proactive, _db(request), window_id)
    except StoreError as e:
        return _error_page(request, e, f"/staff/windows/{quote(window_id)}", sess)
    return page(request, "staff_awards.html", _ctx(*sess, al=al, proactive=pro))


# --- applications --------------------------------------------------------------------------------
@router.get("/staff/windows/{window_id}/applications", response_class=HTMLResponse)
async def application_list(request: Request, window_id: str, q: str = "", state: str = "", status: str = "",
                           device_class: str = "", pending: str = "", reviewed: str = "", page_no: int = 1):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    size = 50
    flags = {"yes": True, "no": False}
    # a filter no choice of the page gives (an edited address) lists all, as 全部 does
    state = state if state in APPLICATION_STATE else ""
    status = status if status in STATUS else ""
    try:
        w = await run_in_threadpool(W.get_window, _db(request), window_id)
        total, rows = await run_in_threadpool(lambda: applications.list_applications(
            _db(request), window_id, q=q[:60] or None, state=state[:16] or None, status=status[:16] or None,
            device_class=device_class[:4] or None, correction_pending=flags.get(pending),
            reviewed=flags.get(reviewed), limit=size, offset=(max(page_no, 1) - 1) * size))
    except StoreError as e:
        return _error_page(request, e, "/staff", sess)
    return page(request, "staff_applications.html", _ctx(
        *sess, w=w, rows=rows, total=total, page_no=min(max(page_no, 1), max((total + size - 1) // size, 1)),
        pages=max((total + size - 1) // size, 1),
        q=q[:60], state=state, status=status, device_class=device_class, pending=pending, reviewed=reviewed))


@router.get("/staff/applications/{app_id}", response_class=HTMLResponse)
async def application_page(request: Request, app_id: str, done: str = ""):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        d = await run_in_threadpool(cases.detail, _db(request), app_id)
    except StoreError as e:
        return _error_page(request, e, "/staff", sess)
    return _application_view(request, sess, d, done=DONE.get(done, ""))


def _application_view(request: Request, sess, d, status: int = 200, **extra: Any) -> HTMLResponse:
    """An application's page: its decisions, reviews, materials, notices and history."""
    return page(request, "staff_application.html", _ctx(
        *sess, d=d, registry=request.app.state.runtime.evaluator.registry,
        kinds=request.app.state.notices.kinds_for(d), today=shanghai_today(), **{"done": "", **extra}), status)


async def _app_action(request: Request, app_id: str, run, done: str) -> Response:
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/applications/{quote(app_id)}"
    try:
        form = await _form(request, sess[0])
        await run_in_threadpool(run, form, sess[1])
    except StoreError as e:
        return _error_page(request, e, back, sess)
    return RedirectResponse(f"{back}?done={done}", status_code=303)


def _revision(form) -> int | None:
    raw = str(form.get("revision") or "")
    return int(raw) if raw.isdigit() else None


@router.post("/staff/applications/{app_id}/review")
async def review(request: Request, app_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/applications/{quote(app_id)}"
    try:
        f = await _form(request, sess[0])
    except StoreError as e:
        return _error_page(request, e, back, sess)
    decision = str(f.get("decision", ""))    # confirm, or the verdict the staff sets
    raw = str(f.get("amount_cny") or "").strip()
    where = (str(f.get("benefit_id", "")), str(f.get("subject_id", "")))

    def run():
        found = []
        try:
            amount = read_value(amounts.AMOUNT, raw) if raw else None    # "200万", "2,000,000"
        except CellError as e:
            amount, found = None, [RowProblem(str(e), path="amount_cny")]
        cases.review(_db(request), app_id, *where, "confirm" if decision == "confirm" else "override",
                     None if decision == "confirm" else decision, str(f.get("reason") or ""),
                     actor=sess[1].actor, revision=_revision(f), amount=amount, found=found)
    try:
        await run_in_threadpool(run)
    except ValidationFailed as e:   # the page again, the problems at that decision's form, as typed
        d = await run_in_threadpool(cases.detail, _db(request), app_id)
        typed = {"decision": decision, "reason": str(f.get("reason") or ""), "amount_cny": raw}
        errors = [{"label": FIELD_NAMES.get(p.get("path", ""), ""), "message": p["message"]} for p in problems(e)]
        return _application_view(request, sess, d, 422, review_at=where, review_errors=errors, review_typed=typed)
    except Conflict as e:           # someone else came first: the page as it is now, the reason kept
        d = await run_in_threadpool(cases.detail, _db(request), app_id)
        if d.state in ("awarded", "refused") or d.window.state == "closed":
            return _error_page(request, e, back, sess)
        typed = {"decision": decision, "reason": str(f.get("reason") or ""), "amount_cny": raw}
        said = [{"label": "", "message": e.message.replace("，请刷新后重试", "")
                 + "。下面是最新的内容，您填写的复核意见已保留，请核对后再提交"}]
        return _application_view(request, sess, d, 409, review_at=where, review_errors=said, review_typed=typed)
    except StoreError as e:
        return _error_page(request, e, back, sess)
    return RedirectResponse(f"{back}?done=reviewed", status_code=303)


@router.post("/staff/applications/{app_id}/materials/{material_pk}")
async def review_material(request: Request, app_id: str, material_pk: int):
    # no application revision: accepting one file must not refuse a colleague's verdict on another
    # (the material's own state refuses a second verdict on the same file)
    return await _app_action(request, app_id, lambda f, who: cases.review_material(
        _db(request), app_id, material_pk, f.get("accept") == "yes", str(f.get("reason") or ""),
        actor=who.actor), "material")


@router.get("/staff/applications/{app_id}/materials/{material_pk}")
async def material_file(request: Request, app_id: str, material_pk: int):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        m, data = await run_in_threadpool(cases.material_file, _db(request), app_id, material_pk)
    except StoreError as e:
        return _error_page(request, e, f"/staff/applications/{quote(app_id)}", sess)
    return _download(data, m.content_type, m.filename)


@router.post("/staff/applications/{app_id}/objections")
async def objection(request: Request, app_id: str):
    return await _app_action(request, app_id, lambda f, who: cases.raise_objection(
        _db(request), app_id, str(f.get("text") or ""), actor=who.actor), "objection")


@router.post("/staff/applications/{app_id}/objections/{objection_id}")
async def resolve_objection(request: Request, app_id: str, objection_id: int):
    return await _app_action(request, app_id, lambda f, who: cases.resolve_objection(
        _db(request), objection_id, str(f.get("resolution") or ""), actor=who.actor, application_id=app_id),
        "resolved")


@router.post("/staff/applications/{app_id}/access-code")
async def reissue_code(request: Request, app_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/applications/{quote(app_id)}"
    try:
        reason = str((await _form(request, sess[0])).get("reason") or "")
        code = await run_in_threadpool(cases.reissue_access_code, _db(request), app_id, reason,
                                       actor=sess[1].actor)
    except ValidationFailed as e:   # the page again, the problem at its form, the reason as typed
        d = await run_in_threadpool(cases.detail, _db(request), app_id)
        return _application_view(request, sess, d, 422, code_errors=[p["message"] for p in problems(e)],
                                 code_reason=reason)
    except StoreError as e:
        return _error_page(request, e, back, sess)
    # As a new token: redirect after POST (a refresh makes no second code), the code carried once
    # in a short-lived cookie only its own page reads, never in a URL.
    resp = RedirectResponse(f"{back}/access-code", status_code=303)
    resp.set_cookie(NEW_CODE_COOKIE, f"{app_id}:{code}", max_age=120, httponly=True, samesite="strict",
                    path=f"{back}/access-code", secure=request.app.state.settings.cookie_secure)
    return resp


@router.get("/staff/applications/{app_id}/access-code", response_class=HTMLResponse)
async def reissued_code(request: Request, app_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    back = f"/staff/applications/{quote(app_id)}"
    owner, _, code = (request.cookies.get(NEW_CODE_COOKIE) or "").partition(":")
    if owner != app_id or not code:
        return RedirectResponse(back, status_code=303)          # shown once only
    try:
        d = await run_in_threadpool(cases.detail, _db(request), app_id)
    except StoreError as e:
        return _error_page(request, e, "/staff", sess)
    resp = page(request, "staff_access_code.html", _ctx(
        *sess, d=d, code=code, lookup=str(request.base_url).rstrip("/") + "/application"))
    resp.delete_cookie(NEW_CODE_COOKIE, path=f"{back}/access-code")
    return resp


@router.get("/staff/applications/{app_id}/notices/{kind}")
async def notice(request: Request, app_id: str, kind: str, format: str = "html"):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        doc = await run_in_threadpool(request.app.state.notices.render, app_id, kind,
                                      "pdf" if format == "pdf" else "html")
    except StoreError as e:
        return _error_page(request, e, f"/staff/applications/{quote(app_id)}", sess)
    if format == "pdf":
        return _download(doc.data, "application/pdf", doc.filename)
    return notice_page(doc.data, back=(f"/staff/applications/{quote(app_id)}", "返回申报"))


# --- jobs and tokens -----------------------------------------------------------------------------
def job_summary(j: jobs.JobView) -> list[str]:
    """The outcome of a finished job in sentences (the CLI's report), never its raw keys."""
    r = j.result or {}
    if not r:
        return []
    if j.kind == "applications.import":
        if not r.get("committed"):
            n = len(r.get("problems") or [])
            return [f"文件“{r.get('filename', '')}”有 {n} 处问题，未导入任何数据；改正后重新导入，"
                    "或勾选“跳过有错误的企业”导入其余企业。" if n else "文件中没有可导入的企业。"]
        what = "企业名录" if r.get("window_id") is None else "申报"
        return [f"导入{what} {r['rows']} 行、{r['enterprises']} 家企业：新受理 {r['created']}，更新 {r['updated']}，"
                f"未变 {r['unchanged']}，跳过 {len(r.get('skipped') or [])}。"]
    if j.kind == "window.evaluate":
        return [evaluation_summary(r) + "。"]
    if j.kind == "window.replay":
        return [f"重放 {r['evaluations']} 份判定、{r['decisions']} 项结论：{r['identical']} 项与记录一致，"
                f"{r['differences']} 项不一致" + (f"，{r['not_archived']} 份未存档" if r.get("not_archived") else "") + "。"]
    if j.kind == "window.impact":
        return impact_lines(r)
    if j.kind == "notices.bundle":
        return [f"已为 {r['applications']} 份申报生成 {r['notices']} 份告知书"
                + (f"，另有 {r['skipped']} 份不适用、未生成" if r.get("skipped") else "") + "。"]
    return []


def job_error(j: jobs.JobView) -> list[str]:
    """Why a job failed, for staff, a line each (another ruleset's problems, one per file and
    line): the store's Chinese message, never a trace."""
    if not j.error:
        return []
    lines = [x for x in j.error.splitlines() if x.strip()]
    if any("\u4e00" <= c <= "\u9fff" for c in lines[0]):
        return lines
    return [f"内部错误（任务 {j.id}），详情见服务日志"]


@router.get("/staff/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        j = await run_in_threadpool(jobs.get, _db(request), job_id)
    except StoreError as e:
        return _error_page(request, e, "/staff", sess)
    return page(request, "staff_job.html", _ctx(*sess, j=j, summary=job_summary(j), error=job_error(j)))


@router.get("/staff/jobs/{job_id}/progress")
async def job_progress(request: Request, job_id: str):
    """What the job page polls (static/job.js)."""
    if not await console_session(request):
        return Response(status_code=401)
    try:
        j = await run_in_threadpool(jobs.get, _db(request), job_id)
    except StoreError:
        return Response(status_code=404)
    return {"state": j.state, "state_text": j.state_text, "done": j.done, "total": j.total,
            "message": j.message or ""}


@router.post("/staff/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        await _form(request, sess[0])
        await run_in_threadpool(jobs.cancel, _db(request), job_id)
    except StoreError as e:
        return _error_page(request, e, f"/staff/jobs/{quote(job_id)}", sess)
    return RedirectResponse(f"/staff/jobs/{quote(job_id)}", status_code=303)


@router.get("/staff/jobs/{job_id}/files/{name}")
async def job_file(request: Request, job_id: str, name: str):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    try:
        media, data = await run_in_threadpool(lambda: jobs.file(_db(request), job_id, name, actor=sess[1].actor))
    except StoreError as e:
        return _error_page(request, e, f"/staff/jobs/{quote(job_id)}", sess)
    return _download(data, media, name)


@router.get("/staff/tokens", response_class=HTMLResponse)
async def token_list(request: Request, done: str = "", created: str = ""):
    sess = await console_session(request)
    if not sess:
        return _to_login(request)
    if not sess[1].is_admin:
        return page(request, "message.html", _ctx(*sess, title="无权限", message="令牌管理需要管理员角色。", back="/staff",
                                                  layout="_staff.html"), 403)
    rows = await run_in_threadpool(tokens.list_tokens, _db(request))
    return page(request, "staff_tokens.html", _ctx(*sess, tokens=rows, done=DONE.get(done, "")))


@router.post("/staff/tokens", response_class=HTMLResponse)
async def token_create(request: Request):
    sess = await console_session(request)
    if not sess or not sess[1].is_admin:
        return _to_login(request)
    try:
        form = await _form(request, sess[0])
        days = str(form.get("days") or tokens.DEFAULT_DAYS)
        view, value = await run_in_threadpool(lambda: tokens.create_token(
            _db(request), str(form.get("role") or ""), str(form.get("label") or ""),
            days=int(days) if days.isdigit() and len(days) < 6 else -1, actor=sess[1].actor))
    except StoreError as e:
        return _error_page(request, e, "/staff/tokens", sess)
    # Redirect after POST (a refresh creates no second token); the new token travels once, in a
    # short-lived cookie only its own page reads, never in a URL.
    resp = RedirectResponse("/staff/tokens/created", status_code=303)
    resp.set_cookie(NEW_TOKEN_COOKIE, f"{view.id}:{value}", max_age=120, httponly=True, samesite="strict",
                    path="/staff/tokens/created", secure=request.app.state.settings.cookie_secure)
    return resp


@router.get("/staff/tokens/created", response_class=HTMLResponse)
async def token_created(request: Request):
    sess = await console_session(request)
    if not sess or not sess[1].is_admin:
        return _to_login(request)
    token_id, _, value = (request.cookies.get(NEW_TOKEN_COOKIE) or "").partition(":")
    view = next((t for t in await run_in_threadpool(tokens.list_tokens, _db(request))
                 if str(t.id) == token_id), None)
    if view is None or not value:
        return RedirectResponse("/staff/tokens", status_code=303)     # shown once only
    resp = page(request, "staff_token_created.html", _ctx(*sess, token=view, value=value))
    resp.delete_cookie(NEW_TOKEN_COOKIE, path="/staff/tokens/created")
    return resp


@router.post("/staff/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: int):
    sess = await console_session(request)
    if not sess or not sess[1].is_admin:
        return _to_login(request)
    try:
        await _form(request, sess[0])
        if token_id == sess[1].token_id:
            raise Conflict("不能吊销当前登录使用的令牌")
        await run_in_threadpool(lambda: tokens.revoke_token(_db(request), token_id, actor=sess[1].actor))
    except StoreError as e:
        return _error_page(request, e, "/staff/tokens", sess)
    return RedirectResponse("/staff/tokens?done=token", status_code=303)
