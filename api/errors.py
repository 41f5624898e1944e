"""Uniform error bodies: {"detail": "…", "errors": [{"path": …, "message": …}]}.

Every error a client can see goes through here, in Chinese, and never carries a stack trace.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.messages import pydantic_message

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
}


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


def error_response(status: int, detail: str | None = None, errors: list[dict] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(detail or STATUS_DETAIL.get(status, "请求失败"), errors),
                        status_code=status, headers=headers)


def loc_to_path(loc: Iterable[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(请求体)"


def chinese_message(err: dict) -> str:
    """A Chinese message for one pydantic/FastAPI validation error."""
    return pydantic_message(err)


def _domain_status(exc: BaseException) -> int | None:
    """Map the store's domain exceptions by name, so the API needs no import cycle with it."""
    for cls in type(exc).__mro__:
        if cls.__name__ in ("NotFound", "NotFoundError"):
            return 404
        if cls.__name__ in ("Conflict", "ConflictError"):
            return 409
        if cls.__name__ in ("ValidationFailed", "ProfileError", "ImportRejected"):
            return 422
    return None


def problems_of(exc: BaseException, prefix: str = "") -> list[dict]:
    """Field problems carried by a domain/profile exception: objects with .path/.message or tuples/dicts."""
    raw = getattr(exc, "problems", None) or getattr(exc, "errors", None) or []
    if callable(raw):
        raw = raw()
    out = []
    for p in raw:
        extra = {}
        if hasattr(p, "to_dict"):
            extra = {k: v for k, v in p.to_dict().items() if k in ("sheet", "row", "column")}
            path, msg = getattr(p, "path", ""), getattr(p, "message", str(p))
            if not path and extra:
                path = "".join([f"{extra['sheet']}!" if extra.get("sheet") else "",
                                f"第{extra['row']}行" if extra.get("row") is not None else "",
                                f"[{extra['column']}]" if extra.get("column") else ""])
        elif isinstance(p, dict):
            path, msg = p.get("path", ""), p.get("message", p.get("msg", ""))
        elif isinstance(p, (tuple, list)) and len(p) == 2:
            path, msg = p
        else:
            path, msg = getattr(p, "path", ""), getattr(p, "message", str(p))
        path = str(path or "")
        if prefix and not path.startswith(prefix):
            path = prefix + ("." + path if path and not path.startswith("[") else path)
        out.append({"path": path or prefix or "(请求体)", "message": str(msg), **extra})
    return out


def domain_error_response(exc: BaseException, status: int, prefix: str = "") -> JSONResponse:
    detail = str(exc) if exc.args and isinstance(exc.args[0], str) and exc.args[0] else None
    errs = problems_of(exc, prefix) if status == 422 else []
    if status == 422 and not detail:
        detail = f"提交的数据有误，共 {len(errs)} 处问题" if errs else None
    resp = error_response(status, detail, errs)
    report = getattr(exc, "report", None)
    if report is not None and hasattr(report, "to_dict"):
        import json
        body = json.loads(resp.body)
        body["report"] = report.to_dict()
        resp = JSONResponse(body, status_code=status)
    return resp


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = [{"path": loc_to_path(e.get("loc", ())), "message": chinese_message(e)}
                for e in exc.errors()]
        return error_response(422, f"提交的数据有误，共 {len(errs)} 处问题", errs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) and _is_chinese(exc.detail) else None
        return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _catch_all(request: Request, exc: Exception):
        status = _domain_status(exc)
        if status is not None:
            prefix = "profile" if type(exc).__name__ == "ProfileError" else ""
            return domain_error_response(exc, status, prefix)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500)


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
