"""The enterprise's pages: the self-check, applying in an open window, and its application page
(login with the access code, the one-time notice, the 补正, notices and materials).

Plain HTML forms (no JavaScript needed); every POST redirects or renders a result page. The
access code is posted once and kept in a server-side session, never in a URL.
"""
from __future__ import annotations

import json
import re
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, problems
from api.forms import InputError, form_of, form_values, read_form, read_items, value_of, widget
from api.limits import parse_json_limited
from api.schemas import parse_day
from api.security import ENTERPRISE_COOKIE, csrf_ok, csrf_token_for, enterprise_session
from api.views import notice_page, page
from engine.profile import ProfileError, parse_profile, shanghai_today
from engine.results import EligibilityResponse
from engine.workdays import service_limits
from store import applications, cases, held, sessions
from store import windows as W
from store.errors import Conflict, NotFound, RowProblem, ValidationFailed

router = APIRouter(include_in_schema=False)
RECEIPT_COOKIE = "yagu_receipt"


def _detail(db, application_id: str) -> cases.ApplicationDetail:
    return cases.detail(db, application_id).for_enterprise()


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


def _shown(reg, profile: dict, errors: list[dict]) -> list[dict]:
    """Form problems as a reader sees them: the field's Chinese name, the message, and the
    input to mark."""
    names = {"as_of": "判定日期", "claims": "申报的注册证", "prior_code": "原查询码"}
    order = {"prior_code": -1, **{f.id: i for i, f in enumerate(reg.entered_fields())}}
    keyed = []
    for e in errors:
        path = e["path"].removeprefix("profile.")
        label = names.get(e["path"]) or reg.label(path, profile)
        message = e["message"]
        if label and message.startswith(label) and len(message) > len(label):   # not "代码：代码校验码错误"
            message = message[len(label):].lstrip("：:，, ")
        m = _PATH.match(path)
        top, item, sub = (m.group(1), int(m.group(2) or -1), m.group(3) or "") if m else (path, -1, "")
        anchor = (f"f-{top}-{item}-{sub}" if item >= 0 and sub else f"f-{path}") if path else ""
        keyed.append(((order.get(top, len(order)), item, sub),
                      {"label": label, "message": message, "path": path, "anchor": anchor}))
    return [e for _, e in sorted(keyed, key=lambda k: k[0])]          # in the order of the form


_PATH = re.compile(r"^([A-Za-z_]\w*)(?:\[(\d+)\])?(?:\.(\w+))?$")


def _form_page(request: Request, profile: dict, *, as_of: str = "", errors: list[dict] | None = None,
               typed: dict | None = None, extra: dict | None = None, status: int = 200,
               action: str = "/self-check", title: str = "惠企政策自测", window: Any = None) -> HTMLResponse:
    reg = _rt(request).evaluator.registry
    add = extra or {}
    shown = _shown(reg, profile, errors or [])
    values = form_values(profile, reg, typed)
    for spec, _w in form_of(reg).lists:
        values[spec.id] = values.get(spec.id, []) + [{}] * (add.get(spec.id, 0) + (0 if values.get(spec.id) else 1))
    said: dict[str, list[str]] = {}
    for e in shown:
        said.setdefault(e["path"], []).append(e["message"])
    return page(request, "selfcheck.html", {"form": form_of(reg), "values": values, "as_of": as_of,
                                            "errors": shown, "bad": {e["path"] for e in shown}, "said": said,
                                            "action": action,
                                            "title": title, "window": window}, status)


def _added(action: str) -> dict:
    """增加一项: one more blank row in that list (删除此项 adds none)."""
    return {action[4:]: 1} if action.startswith("add:") else {}


@router.get("/", response_class=HTMLResponse)
async def selfcheck_form(request: Request):
    return _form_page(request, {})


async def _evaluate(request: Request, profile: Any, as_of: date | None,
                    form_problems: list[dict] | None = None) -> tuple[EligibilityResponse | None, list]:
    """The self-check's results, or every problem of the profile at once (the form's own
    problems first, then the engine's)."""
    rt = _rt(request)

    def run():
        ev = rt.evaluator
        p = parse_profile(profile, ev.registry)
        if form_problems:
            return None
        day = as_of or shanghai_today()
        awarded = rt.ledger_for(p)
        return ev.self_check(p, day, awarded=awarded, calendar=rt.calendar())
    try:
        resp = await run_in_threadpool(run)
    except ProfileError as e:
        return None, (form_problems or []) + problems(e, "profile")
    return resp, list(form_problems or [])


def _results_page(request: Request, profile: dict, resp: EligibilityResponse, as_of: date | None) -> HTMLResponse:
    ev = _rt(request).evaluator
    tax = [r for r in resp.results if r.kind == "tax"]
    tax_year = next((r.tax_year for r in tax if r.tax_year), None)
    p = parse_profile(profile, ev.registry)
    items, conflicts = ev.tax_view(tax, tax_year or resp.as_of.year, p, resp.as_of)
    return page(request, "results.html", {
        "resp": resp, "grants": [r for r in resp.results if r.kind == "grant"],
        "guidance": [r for r in resp.results if r.kind == "guidance"], "tax": items, "conflicts": conflicts,
        "tax_year": tax_year, "profile": profile, "profile_json": json.dumps(profile, ensure_ascii=False),
        "registry": ev.registry, "counts": _counts(resp), "today": shanghai_today(),
        "as_of_given": as_of.isoformat() if as_of else ""})


def _counts(resp: EligibilityResponse) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for r in resp.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return [(s, counts[s]) for s in ("eligible", "needs_info", "ineligible", "not_in_force") if s in counts]


@router.get("/self-check", include_in_schema=False)
@router.get("/self-check/upload", include_in_schema=False)
@router.get("/self-check/print", include_in_schema=False)
@router.get("/self-check/edit", include_in_schema=False)
async def selfcheck_again():
    """A results address reloaded, bookmarked or shared: the form (a result is never in a URL)."""
    return RedirectResponse("/", status_code=303)


@router.post("/self-check", response_class=HTMLResponse)
async def selfcheck_submit(request: Request):
    reg = _rt(request).evaluator.registry
    form = await request.form(max_fields=3000)
    action = str(form.get("action", "check"))
    reading = read_form(form, reg, action)
    as_of_raw = str(form.get("as_of", ""))
    if action.startswith(("add:", "remove:")):
        return _form_page(request, reading.profile, as_of=as_of_raw, typed=reading.typed, extra=_added(action))
    as_of, errors = _as_of(as_of_raw)
    resp, errors = await _evaluate(request, reading.profile, as_of, reading.problems + errors)
    if resp is None:
        return _form_page(request, reading.profile, as_of=as_of_raw, errors=errors, typed=reading.typed, status=422)
    return _results_page(request, reading.profile, resp, as_of)


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
        doc = parse_json_limited(data, settings.max_json_depth, settings.max_object_keys, what="文件")
    except ApiError as e:
        return page(request, "message.html", {"title": "上传失败", "message": e.detail}, e.status)
    if isinstance(doc, dict) and isinstance(doc.get("profile"), dict):
        doc = doc["profile"]        # also accept a saved eligibility request
    as_of, errors = _as_of(str(form.get("as_of", "")))
    resp, errors = await _evaluate(request, doc, as_of, errors)
    if resp is None:
        return _form_page(request, doc if isinstance(doc, dict) else {}, errors=errors, status=422)
    return _results_page(request, doc, resp, as_of)


def _carried(request: Request, form) -> Any:
    """The profile a page carries in its form's `profile_json` (the JSON limits apply; ApiError)."""
    settings = request.app.state.settings
    raw = str(form.get("profile_json") or "").encode("utf-8")[: settings.max_body_bytes + 1]
    return parse_json_limited(raw, settings.max_json_depth, settings.max_object_keys)


@router.post("/self-check/edit", response_class=HTMLResponse)
async def selfcheck_edit(request: Request):
    """The self-check's form again, filled with what was checked ("重新自测" starts empty)."""
    form = await request.form(max_fields=10)
    try:
        profile = _carried(request, form)
    except ApiError:
        profile = None
    if not isinstance(profile, dict):
        return RedirectResponse("/", status_code=303)
    return _form_page(request, profile, as_of=str(form.get("as_of") or "")[:10])


@router.post("/self-check/print", response_class=HTMLResponse)
async def selfcheck_print(request: Request):
    """The printable 自测结果 of a profile (not a decision: no number, no signature)."""
    form = await request.form(max_fields=10)
    try:
        profile = _carried(request, form)
    except ApiError as e:
        return page(request, "message.html", {"title": "无法打印", "message": e.detail}, e.status)
    as_of, errors = _as_of(str(form.get("as_of", "")))
    resp, errors = await _evaluate(request, profile, as_of, errors)
    if resp is None:
        return page(request, "message.html", {"title": "无法打印", "message": "企业画像有误，请返回修改后再打印。"}, 422)
    doc = await run_in_threadpool(request.app.state.notices.selfcheck, _rt(request).evaluator, profile, resp,
                                  str(form.get("format", "html")))
    if doc.filename.endswith(".pdf"):
        return Response(doc.data, media_type="application/pdf", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})
    return notice_page(doc.data)


# --- applying ------------------------------------------------------------------------------------
@router.get("/apply", response_class=HTMLResponse)
async def apply_index(request: Request, profile_json: str = ""):
    ws = await run_in_threadpool(W.list_windows, _rt(request).db)
    today = shanghai_today()
    return page(request, "apply_index.html", {"open": [w for w in ws if w.state == "open" and w.opens_on <= today <= w.closes_on],
                                               "upcoming": [w for w in ws if w.state == "open" and today < w.opens_on],
                                               "profile_json": profile_json})


@router.post("/apply", response_class=HTMLResponse)
async def apply_with_profile(request: Request):
    """From the self-check's results: the application form of the window accepting now, filled
    with what was typed for the self-check (the clerk once typed it all again). With several
    windows accepting, the list, each carrying the profile."""
    form = await request.form(max_fields=10)
    raw = str(form.get("profile_json") or "")
    try:
        profile = _carried(request, form)
    except ApiError:
        profile = None
    if not isinstance(profile, dict):
        return RedirectResponse("/apply", status_code=303)
    ws = await run_in_threadpool(W.list_windows, _rt(request).db)
    today = shanghai_today()
    accepting = [w for w in ws if w.state == "open" and w.opens_on <= today <= w.closes_on]
    chosen = [w for w in accepting if w.id == form.get("window_id")] or (accepting if len(accepting) == 1 else [])
    if not chosen:
        return await apply_index(request, profile_json=raw)
    w = chosen[0]
    return _form_page(request, profile, action=f"/apply/{w.id}", title=f"在线申报：{w.label}", window=w)


@router.get("/apply/done", response_class=HTMLResponse)
async def apply_done(request: Request):
    app_id, _, code = (request.cookies.get(RECEIPT_COOKIE) or "").partition(":")
    code, _, replaced = code.partition(":")
    if not code:
        return page(request, "message.html", {"title": "申报回执", "message":
                    "查询码只显示一次。如未记下，请重新提交申报以取得新的查询码（原查询码随之失效），或联系受理窗口。",
                    "back": "/application"})
    try:
        d = await run_in_threadpool(_detail, _rt(request).db, app_id[:32])
    except NotFound:
        return RedirectResponse("/application", status_code=303)
    resp = page(request, "applied.html", {"d": d, "app_id": d.application_id, "code": code[:64], "window": d.window,
                                          "replaced": replaced == "r",
                                          "lookup": str(request.base_url).rstrip("/") + "/application"})
    resp.delete_cookie(RECEIPT_COOKIE, path="/apply/done")
    return resp


@router.get("/apply/{window_id}", response_class=HTMLResponse)
async def apply_form(request: Request, window_id: str):
    try:
        w = await run_in_threadpool(W.get_window, _rt(request).db, window_id)
    except NotFound:
        return page(request, "message.html", {"title": "未找到", "message": "没有这个申报批次。", "back": "/apply"}, 404)
    try:            # a bookmark of a window no longer (or not yet) accepting: said before any typing
        W.require_accepting(w)
    except Conflict as e:
        return page(request, "message.html", {"title": "不能申报", "message": e.message, "back": "/apply"}, 409)
    return _form_page(request, {}, action=f"/apply/{w.id}", title=f"在线申报：{w.label}", window=w)


@router.post("/apply/{window_id}", response_class=HTMLResponse)
async def apply_submit(request: Request, window_id: str):
    rt = _rt(request)
    form = await request.form(max_fields=3000)
    action = str(form.get("action", "check"))
    reading = read_form(form, rt.evaluator.registry, action)
    try:
        w = await run_in_threadpool(W.get_window, rt.db, window_id)
    except NotFound:
        return page(request, "message.html", {"title": "未找到", "message": "没有这个申报批次。", "back": "/apply"}, 404)
    again = {"action": f"/apply/{w.id}", "title": f"在线申报：{w.label}", "window": w, "typed": reading.typed}
    if action == "keep" or action.startswith(("add:", "remove:")):
        return _form_page(request, reading.profile, extra=_added(action), **again)
    try:
        if reading.problems:        # with the engine's own findings, so every problem is listed at once
            _, errors = await _evaluate(request, reading.profile, None, reading.problems)
            return _form_page(request, reading.profile, errors=errors, status=422, **again)
        sub = await run_in_threadpool(lambda: applications.submit_application(
            rt.db, window_id, reading.profile, None, "web", actor="企业（网上申报）",
            prior_code=str(form.get("prior_code") or "")))
    except ValidationFailed as e:
        return _form_page(request, reading.profile, errors=problems(e), status=422, **again)
    except Conflict as e:       # e.g. a 补正 under way: its page is the enterprise's page
        return page(request, "message.html", {"title": "不能申报", "message": e.message, "back": "/apply",
                                               "more": ("/application", "查看我的申报")}, 409)
    # Redirect after POST (a refresh does not submit again and void the code); the code travels
    # once, in a short-lived cookie only the receipt page reads, never in a URL.
    resp = RedirectResponse("/apply/done", status_code=303)
    resp.set_cookie(RECEIPT_COOKIE, f"{sub.application_id}:{sub.access_code}" + (":r" if sub.replaced else ""),
                    max_age=300, httponly=True,
                    samesite="strict", path="/apply/done", secure=request.app.state.settings.cookie_secure)
    return resp


# --- the enterprise's application page ------------------------------------------------------------
@router.get("/application", response_class=HTMLResponse)
async def application_login_form(request: Request):
    if await enterprise_session(request):
        return RedirectResponse("/application/view", status_code=303)
    return page(request, "application_login.html", {"settings": request.app.state.notices.settings})


@router.post("/application/login")
async def application_login(request: Request):
    rt = _rt(request)
    form = await request.form(max_fields=10)
    app_id = str(form.get("application_id", "")).strip().upper()[:32].replace("\x00", "")
    code = str(form.get("access_code", ""))[:64]
    ok = await run_in_threadpool(applications.check_access_code, rt.db, app_id, code)
    if not ok:                  # the number typed stays; the code is typed again
        return page(request, "application_login.html", {"failed": True, "application_id": app_id,
                                                        "settings": request.app.state.notices.settings}, 401)
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
    d = await run_in_threadpool(_detail, _rt(request).db, app_id)
    return _application_page(request, sid, d, done=DONE.get(done, ""))


def _application_page(request: Request, sid: str, d, *, done: str = "", errors: list[dict] | None = None,
                      typed: dict[str, str] | None = None, files_dropped: bool = False,
                      refused: dict | None = None, left_out: int = 0, added: tuple | None = None,
                      kept: dict[str, dict] | None = None, status: int = 200) -> HTMLResponse:
    """The enterprise's page; after a 补正 with problems, every problem above its form and
    what was typed kept in it (a file input cannot be refilled: the page says so). `refused`
    is an upload of a promised file sent back: {"title", "form" (its key, see _form_key; "" when
    the form itself is gone, the message then stands at the top), "messages"}. `left_out`: how
    many asked facts and materials the 补正 left out without saying it cannot provide them.
    `added`: (list fact, row) of a row just added, whose first box then has the focus. `kept`:
    the files held for the next try (store.held), by material key: not chosen again."""
    reg = _rt(request).evaluator.registry
    ask_fields = [{"path": p, "label": reg.label(p, d.profile), "widget": _widget_for(reg, p)}
                  for p in (d.correction.facts if d.correction else [])]
    return page(request, "application.html", {"d": d, "csrf": csrf_token_for(sid), "ask_fields": ask_fields,
                                               "registry": reg, "done": done, "errors": errors or [],
                                               "typed": typed or {}, "files_dropped": files_dropped,
                                               "kept": kept or {},
                                               "refused": refused, "left_out": left_out, "added": added,
                                               "profile_json": json.dumps(d.profile, ensure_ascii=False),
                                               "today": shanghai_today(),
                                               "commitment_workdays": service_limits()["commitment"].workdays,
                                               "kinds": request.app.state.notices.kinds_for(d)}, status)


DONE = {"corrected": "补正已提交，已重新判定，结果如下。",
        "supplied": "承诺的材料已补交，待工作人员审核。"}


def _form_key(kind: str, form) -> str:
    """Which form of the page (the upload of a promised file) a refusal belongs to."""
    return "|".join((kind, *(str(form.get(k, "") or "") for k in ("benefit_id", "subject_id", "material_id"))))


async def _refused(request: Request, sid: str, app_id: str, kind: str, form, title: str, e: Exception):
    """A refused upload of a promised file: the enterprise's page again, the problems at its form
    (a conflict, such as a passed deadline, at the top: the form may be gone)."""
    d = await run_in_threadpool(_detail, _rt(request).db, app_id)
    at = _form_key(kind, form) if isinstance(e, ValidationFailed) else ""
    messages = [m["message"] for m in problems(e)] if isinstance(e, ValidationFailed) else [e.message]
    return _application_page(request, sid, d, refused={"title": title, "form": at, "messages": messages},
                             status=404 if isinstance(e, NotFound) else 422 if at else 409)


def _read_input(spec, path: str, raw, wrong: list) -> object:
    """One input of the 补正 form as its field's value (None: left empty); a problem is added
    to `wrong` instead."""
    try:
        return value_of(spec, str(raw or ""))
    except InputError as e:
        wrong.append({"path": path, "message": str(e)})
        return None


def _typed_list(spec, form, name: str) -> dict:
    """A list fact of the 补正 form as typed: the choice and each row's inputs, shown again."""
    cols = {w.name: form.getlist(f"{name}.{w.name}") for w in widget(spec, name).item}
    n = max((len(v) for v in cols.values()), default=0)
    return {"known": str(form.get(f"{name}.known", "")),
            "rows": [{k: str(v[i]) if i < len(v) else "" for k, v in cols.items()} for i in range(n)]}


def _widget_for(registry, path: str):
    spec = registry.field_at(path)
    return widget(spec, path) if spec else None


async def _enterprise_post(request: Request, **limits: int):
    """The signed-in enterprise's form, its CSRF token checked: (session id, application id,
    form), or the response to give instead."""
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    sid, app_id = sess
    form = await request.form(**limits)
    if not csrf_ok(sid, str(form.get("csrf", ""))):
        return page(request, "message.html", {"title": "表单已失效", "message": "请刷新页面后重试。",
                                               "back": "/application/view"}, 403)
    return sid, app_id, form


@router.post("/application/correction", response_class=HTMLResponse)
async def application_correction(request: Request):
    got = await _enterprise_post(request, max_fields=500, max_files=50)
    if isinstance(got, Response):
        return got
    sid, app_id, form = got
    rt = _rt(request)
    d = await run_in_threadpool(_detail, rt.db, app_id)
    reg = rt.evaluator.registry
    asked_facts = d.correction.facts if d.correction else []
    if d.state != "correction" and not asked_facts:
        # sent already (a second tap, another tab): the form is read as the notice asked it, so
        # that the same 补正 sent again is known as such (cases.submit_correction)
        issued = await run_in_threadpool(lambda: cases.detail(rt.db, app_id, as_issued="one_time"))
        asked_facts = issued.correction.facts if issued.correction else []

    def typed_facts() -> dict:
        out = {}
        for p in asked_facts:
            spec = reg.field_at(p)
            out[p] = _typed_list(spec, form, f"fact:{p}") if spec is not None and spec.type == "list" \
                else str(form.get(f"fact:{p}", ""))
        return out
    action = str(form.get("action") or "")
    if action.startswith("add:") and action[4:] in asked_facts:     # one more row; nothing sent
        typed = typed_facts()
        rows = typed[action[4:]]["rows"]
        typed[action[4:]] = {"known": "listed", "rows": rows + [{}] * (max(len(rows), 3) + 1 - len(rows))}
        typed |= {k: v for k, v in form.multi_items() if k.startswith("signer:") and isinstance(v, str)}
        chosen = [(k[5:], v.filename, await v.read()) for k, v in form.multi_items()
                  if k.startswith("file:") and not isinstance(v, str) and v.filename]
        kept = await run_in_threadpool(held.hold, sid, chosen)
        return _application_page(request, sid, d, typed=typed, added=(action[4:], max(len(rows), 3)),
                                 kept=_asked(d, kept))
    facts, wrong = {}, []
    for p in asked_facts:
        spec = reg.field_at(p)
        if spec is None:
            continue
        if spec.type == "list":
            known, item = form.get(f"fact:{p}.known"), spec.item_label or "记录"
            items = read_items(spec, form, f"fact:{p}", p, lambda s, _, path, raw: _read_input(s, path, raw, wrong))
            if known == "none" and items:     # a record typed is never dropped for a choice
                wrong.append({"path": p, "message": f"选择了“没有{item}”，但下面填写了{item}：有的请改选“有”，"
                                                    f"没有的请清空所填的{item}"})
            elif known == "none":
                facts[p] = []
            elif items:                       # rows filled: they are the answer, whatever was chosen
                facts[p] = items
            elif known == "listed":
                wrong.append({"path": p, "message": f"选择了“有”，请逐条填写{item}，或选择“没有{item}”"})
            continue
        value = _read_input(spec, p, form.get(f"fact:{p}", ""), wrong)
        if value is not None:
            facts[p] = value
    uploads, promises = [], {}
    for key, f in form.multi_items():
        kind, _, key = key.partition(":")
        parts = key.split("|")      # benefit | subject (certificate, "" for the enterprise) | material
        if len(parts) != 3:
            continue
        if kind == "file" and not isinstance(f, str) and f.filename:
            uploads.append((parts[0], parts[1], parts[2], f.filename, await f.read()))
        elif kind == "signer" and isinstance(f, str) and f.strip():
            promises[tuple(parts)] = f
    chosen = {tuple(u[:3]) for u in uploads}
    for key, digest in form.multi_items():      # a file held from the last try, not chosen again
        parts = key[5:].split("|")
        if key.startswith("held:") and isinstance(digest, str) and len(parts) == 3 and tuple(parts) not in chosen:
            got_file = await run_in_threadpool(held.take, sid, key[5:], digest)
            if got_file:
                uploads.append((*parts, *got_file))
    revision = str(form.get("revision") or "")
    asked = d.correction.materials if d.correction else []
    names = {**{cases.upload_path(m["benefit_id"], None, m["material_id"]): m["name"] for m in asked},
             **{cases.upload_path(m["benefit_id"], m["subject_id"], m["material_id"]):
                m["name"] + (f"（注册证 {m['subject_id']}）" if m["subject_id"] else "") for m in asked}}
    names |= {"signer:" + k: f"{v}的容缺承诺人" for k, v in names.items()} | {"statement": "说明"}
    try:
        statement = str(form.get("statement") or "")
        if not facts and not uploads and not wrong and not promises and not statement.strip() \
                and form.get("partial") != "yes":
            raise ValidationFailed([RowProblem("请至少填写一项信息、上传一份材料或签署一项容缺承诺后再提交", path="")])
        await run_in_threadpool(lambda: cases.submit_correction(
            rt.db, app_id, facts, uploads, actor=f"企业（申报 {app_id}）",
            revision=int(revision) if revision.isdigit() else None,
            found=[RowProblem(w["message"], path=w["path"]) for w in wrong],
            promises=promises, complete=form.get("partial") != "yes", statement=statement))
    except Conflict as e:
        return page(request, "message.html", {"title": "这次提交未被接受", "message": e.message,
                                               "back": "/application/view"}, 409)
    except ValidationFailed as e:
        found = problems(e)
        errors = [{"label": names.get(m["path"]) or (reg.label(m["path"], d.profile) if m.get("path") else ""),
                   "message": m["message"], "path": m.get("path") or ""} for m in found]
        left = sum(m["message"] in (cases.LEFT_OUT_FACT, cases.LEFT_OUT_FILE) for m in found)
        typed = typed_facts()
        typed |= {f"signer:{'|'.join(k)}": v for k, v in promises.items()}
        typed["statement"] = str(form.get("statement") or "")
        # the files that passed their own checks are held for the next try; a wrong one is not
        bad = {e["path"] for e in errors}
        good = [(f"{b}|{sub}|{m}", name, data) for b, sub, m, name, data in uploads
                if cases.upload_path(b, sub, m) not in bad]
        kept = await run_in_threadpool(held.hold, sid, good, [
            f"{b}|{sub}|{m}" for b, sub, m, *_ in uploads if cases.upload_path(b, sub, m) in bad])
        return _application_page(request, sid, d, errors=errors, typed=typed, left_out=left, status=422,
                                 files_dropped=len(good) < len(uploads), kept=_asked(d, kept))
    await run_in_threadpool(held.drop, sid)
    return RedirectResponse("/application/view?done=corrected", status_code=303)


def _asked(d, kept: dict[str, dict]) -> dict[str, dict]:
    """The held files for materials the 补正 still asks."""
    keys = {f"{m['benefit_id']}|{m['subject_id']}|{m['material_id']}" for m in (d.correction.materials
                                                                             if d.correction else [])}
    return {k: v for k, v in kept.items() if k in keys}


@router.post("/application/promised")
async def application_supply_promised(request: Request):
    """The file of a material promised by 容缺承诺, until the promise's deadline."""
    got = await _enterprise_post(request, max_fields=10, max_files=1)
    if isinstance(got, Response):
        return got
    sid, app_id, form = got
    f = form.get("file")
    try:
        if f is None or isinstance(f, str) or not f.filename:
            raise ValidationFailed([RowProblem("请选择要补交的文件", path="file")])
        data = await f.read()
        await run_in_threadpool(lambda: cases.supply_promised(
            _rt(request).db, app_id, str(form.get("benefit_id", "")), str(form.get("subject_id", "")),
            str(form.get("material_id", "")), f.filename, data, actor=f"企业（申报 {app_id}）"))
    except (ValidationFailed, Conflict, NotFound) as e:
        return await _refused(request, sid, app_id, "promised", form, "材料未补交", e)
    return RedirectResponse("/application/view?done=supplied", status_code=303)


@router.get("/application/notices/{kind}")
async def application_notice(request: Request, kind: str, format: str = "html"):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    try:
        doc = await run_in_threadpool(request.app.state.notices.render, sess[1], kind, "pdf" if format == "pdf" else "html")
    except (Conflict, NotFound) as e:
        return page(request, "message.html", {"title": "暂无该文书", "message": e.message, "back": "/application/view"},
                    404 if isinstance(e, NotFound) else 409)
    if format == "pdf":
        return Response(doc.data, media_type="application/pdf",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})
    return notice_page(doc.data, back=("/application/view", "返回我的申报"))


@router.get("/application/materials/{material_pk}")
async def application_material(request: Request, material_pk: int):
    sess = await _applicant(request)
    if not sess:
        return RedirectResponse("/application", status_code=303)
    try:
        m, data = await run_in_threadpool(cases.material_file, _rt(request).db, sess[1], material_pk)
    except NotFound as e:
        return page(request, "message.html", {"title": "未找到", "message": e.message, "back": "/application/view"}, 404)
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
