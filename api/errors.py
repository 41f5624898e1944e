"""Uniform errors: {"detail": "…", "errors": [{"path": …, "message": …}]} for the API, the
message page for the web pages.

Every error a client can see goes through here, in Chinese, and never carries a stack trace.
Domain exceptions are mapped by type: store.errors (404, 409, 422), profile problems (422),
storage outages (503, the request can be retried), rule-engine failures (500, logged).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.views import page
from engine import UnknownBenefit
from engine.adapter import EngineError
from engine.messages import pydantic_message
from engine.profile import ProfileError, parse_profile
from store.applications import ImportRejected
from store.errors import Conflict, NotFound, ValidationFailed, storage_reason

log = logging.getLogger("yagu.api")

STATUS_DETAIL = {
    400: "请求格式错误",
    401: "未登录：请在 Authorization 头中提供 Bearer 令牌",
    403: "无权限执行此操作",
    404: "未找到",
    405: "不支持的请求方法",
    409: "状态冲突",
    413: "请求体过大",
    415: "不支持的内容类型",
    422: "提交的数据有误",
    500: "服务器内部错误，请稍后重试",
    503: "数据库暂不可用，请稍后重试；如持续出现，请联系系统管理员",
}
PAGE_TITLE = {404: "页面不存在", 413: "内容过大", 422: "提交的数据有误", 500: "服务器内部错误", 503: "服务暂不可用"}
STORAGE_DOWN = ("数据库暂不可用（{reason}），本次操作未执行，请稍后重试；"
                "如持续出现，请联系系统管理员检查数据库")
ENGINE_FAILED = "规则引擎未能判定这份企业画像，本次请求未完成；服务仍在运行，请稍后重试或联系系统管理员"
API_PREFIXES = ("/v1/", "/healthz", "/openapi.json", "/static/")


class ApiError(Exception):
    """An error with a status, a Chinese summary and optional per-field problems."""

    def __init__(self, status: int, detail: str | None = None,
                 errors: Iterable[tuple[str, str]] | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail or STATUS_DETAIL.get(status, "请求失败")
        self.errors = [{"path": p, "message": m} for p, m in (errors or [])]
        self.headers = headers


def error_body(detail: str, errors: list[dict] | None = None) -> dict[str, Any]:
    return {"detail": detail, "errors": errors or []}


# Chinese names of the fields of requests and forms that are not profile facts (the profile's
# are the registry's labels), for the console's forms and each API error's `label`
FIELD_NAMES = {"id": "批次编号", "label": "名称或用途", "opens_on": "受理开始日", "closes_on": "受理截止日",
               "as_of": "判定日期", "coverage_from": "覆盖期开始", "coverage_to": "覆盖期结束",
               "correction_workdays": "补正期限", "publicity_workdays": "公示期", "reason": "理由",
               "text": "异议内容", "resolution": "处理意见", "role": "角色", "action": "复核结论",
               "amount_cny": "支持金额", "status": "复核结论", "benefits": "事项", "tax_year": "纳税年度",
               "statement": "说明", "complete": "其余信息和材料无法提供", "revision": "申报版本", "file": "文件",
               "rules_dir": "另一套规则", "amounts": "金额", "days": "有效天数", "facts": "补正的信息",
               "promises": "容缺承诺", "access_code": "查询码", "X-Access-Code": "查询码", "application_id": "申报编号",
               "benefit_id": "事项编号", "subject_id": "注册证编号", "material_id": "材料", "accept": "审核结论",
               "signer": "承诺人", "profile": "企业画像", "kind": "告知书种类", "format": "格式"}


def field_label(request: Request | None, path: str) -> str:
    """What a reader calls the field an error names: a profile fact by the registry's label
    (注册证第1项的来源), a 补正's file by its material (医疗器械注册证及其附件复印件（注册证 …）), another
    field by FIELD_NAMES; "" when the path names no field."""
    runtime = getattr(request.app.state, "runtime", None) if request is not None else None
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    if path.startswith(("files.", "signer:files.")) and runtime is not None:
        parts = path.split("files.", 1)[1].split("|")
        name = next((m.name for b in runtime.evaluator.book.benefits.values() for m in b.spec.materials
                     if m.id == parts[-1]), "")
        if name and len(parts) == 3 and parts[1]:
            name += f"（注册证 {parts[1]}）"
        return name + ("的容缺承诺人" if name and path.startswith("signer:") else "")
    if path in FIELD_NAMES or (head in FIELD_NAMES and head != "profile"):
        return FIELD_NAMES.get(path) or FIELD_NAMES[head]
    if runtime is not None and path:
        fact = path.removeprefix("profile.")
        label = runtime.evaluator.registry.label(fact)
        return "" if label == "企业画像" and fact not in ("", "profile") else label
    return ""


def is_page(path: str) -> bool:
    """A web page (answered in HTML), not an API path (answered in JSON)."""
    return not path.startswith(API_PREFIXES)


def error_response(status: int, detail: str | None = None, errors: list[dict] | None = None,
                   headers: dict | None = None, *, request: Request | None = None, **extra: Any) -> Response:
    if request is not None and is_page(request.url.path) and status == 404 and detail in (None, STATUS_DETAIL[404]):
        detail = "没有这个页面。请检查地址，或从首页进入。"
    detail = detail or STATUS_DETAIL.get(status, "请求失败")
    if request is not None and is_page(request.url.path):
        resp = page(request, "message.html", {"title": PAGE_TITLE.get(status, "操作未完成"), "message": detail,
                                              "errors": [{"message": e["message"]} for e in errors or []]}, status)
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        return resp
    if request is not None:         # each problem named as a reader knows the field
        errors = [{**e, "label": e.get("label") or field_label(request, e.get("path") or "")} for e in errors or []]
    return JSONResponse({**error_body(detail, errors), **extra}, status_code=status, headers=headers)


def loc_to_path(loc: Iterable[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(请求体)"


def problems(exc: Exception, prefix: str = "") -> list[dict]:
    """The field problems a domain exception carries, as {path, message[, sheet, row, column]}."""
    if isinstance(exc, ProfileError):
        return [{"path": f"{prefix}.{p.path}" if p.path else prefix or "(请求体)", "message": p.message}
                for p in exc.problems]
    if isinstance(exc, ValidationFailed):
        out = []
        for p in exc.problems:
            d = p.to_dict()
            d.setdefault("path", "")
            out.append(d)
        return out
    return []


def domain_response(exc: Exception, request: Request | None = None) -> Response | None:
    """The response for a domain exception, or None when `exc` is not one."""
    if isinstance(exc, NotFound):
        return error_response(404, exc.message, request=request)
    if isinstance(exc, Conflict):
        return error_response(409, exc.message, request=request)
    if isinstance(exc, ImportRejected):
        return error_response(422, exc.message, problems(exc), request=request, report=exc.report.to_dict())
    if isinstance(exc, ValidationFailed):
        errs = problems(exc)
        detail = exc.message if not errs else f"提交的数据有误，共 {len(errs)} 处问题"
        return error_response(422, detail, errs, request=request)
    if isinstance(exc, ProfileError):
        errs = problems(exc, "profile")
        return error_response(422, f"提交的数据有误，共 {len(errs)} 处问题", errs, request=request)
    if isinstance(exc, UnknownBenefit):
        return error_response(422, str(exc), [{"path": "benefits", "message": str(exc)}], request=request)
    if isinstance(exc, DBAPIError):
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.error("storage failure: %s", str(exc).splitlines()[0][:300])
            return error_response(503, STORAGE_DOWN.format(reason=storage_reason(exc)),
                                  headers={"Retry-After": "30"}, request=request)
        log.exception("database error")
        return error_response(500, request=request)
    if isinstance(exc, EngineError):
        log.exception("rule engine failure")
        return error_response(500, ENGINE_FAILED, request=request)
    return None


# Each is mapped above, by type (a test checks every StoreError subclass of the store is).
DOMAIN_EXCEPTIONS = (NotFound, Conflict, ValidationFailed, ProfileError, UnknownBenefit, DBAPIError, EngineError)


def _other_problems(request: Request, exc: RequestValidationError, said: list[dict]) -> list[dict]:
    """A request refused for its other fields (as_of, an unknown key…) whose profile is wrong
    too, or which names a benefit there is not: those problems in the same answer, so that all
    are listed at once."""
    body = getattr(exc, "body", None)
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(body, dict) or runtime is None:
        return []
    out = []
    asked = body.get("benefits")
    if isinstance(asked, list) and not any(e["path"].startswith("benefits") for e in said):
        unknown = [b for b in asked if isinstance(b, str) and b not in runtime.evaluator.book.benefits]
        if unknown:
            out.append({"path": "benefits", "message": str(UnknownBenefit(unknown, runtime.evaluator.book.benefits))})
    if isinstance(body.get("profile"), dict) and not any(
            e["path"] == "profile" or e["path"].startswith("profile.") for e in said):
        try:
            parse_profile(body["profile"], runtime.evaluator.registry)
        except ProfileError as e:
            out += problems(e, "profile")
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.detail, exc.errors, exc.headers, request=request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = [{"path": loc_to_path(e.get("loc", ())), "message": pydantic_message(e)} for e in exc.errors()]
        errs += _other_problems(request, exc, errs)
        return error_response(422, f"提交的数据有误，共 {len(errs)} 处问题", errs, request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) and any("\u4e00" <= c <= "\u9fff" for c in exc.detail) \
            else None
        return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None), request=request)

    async def _domain(request: Request, exc: Exception):
        return domain_response(exc, request)

    for cls in DOMAIN_EXCEPTIONS:
        app.add_exception_handler(cls, _domain)

    @app.exception_handler(Exception)
    async def _catch_all(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, request=request)
