"""Request limits and headers: body size while streaming (413), NUL in a path (404) or in a
query parameter (422 naming it), security headers on every response, JSON content type,
encoding and shape.

Size is enforced by a plain ASGI middleware before any parsing. JSON routes use `JsonRoute`,
which decodes and parses the body once under structural limits (depth, keys per object) and
hands the parsed document to FastAPI, so a hostile body never reaches model validation.
"""
from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi.params import Form
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError, error_response
from api.schemas import NUL_MESSAGE
from api.settings import Settings

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over the limit from Content-Length, or while streaming for chunked bodies
    (also when a framework turned the interruption into a 400); 404 for a NUL in the path (no id
    holds one), 422 for a NUL in a query parameter; security headers on every response."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings

    def _limit_for(self, scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outer = send

        async def secure_send(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                message = {**message, "headers": headers + [h for h in SECURITY_HEADERS if h[0] not in present]}
            await outer(message)

        if "\x00" in scope.get("path", ""):
            await _refuse(scope, secure_send, 404, "未找到")
            return
        query = scope.get("query_string", b"")
        if b"\x00" in unquote_to_bytes(query):
            names = sorted({k if "\x00" not in k else "(查询参数)" for k, v in parse_qsl(
                query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
                if "\x00" in k or "\x00" in v})
            errors = [{"path": n, "message": NUL_MESSAGE} for n in names]
            await _refuse(scope, secure_send, 422, f"提交的数据有误，共 {len(errors)} 处问题", errors)
            return

        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, secure_send)
            return
        send = secure_send
        limit = self._limit_for(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _refuse(scope, send, 400, "Content-Length 头无效")
                    return
                if declared > limit:
                    await _refuse(scope, send, 413, _too_large(limit))
                    return
        received = 0
        started = exceeded = False

        async def limited_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if exceeded:        # the app answered (e.g. 400 "error parsing the body"): it is a 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _refuse(scope, send, 413, _too_large(limit))
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, 413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"请求体过大：上限 {limit // (1024 * 1024) or 1} MB（{limit} 字节）"


async def _refuse(scope, send, status: int, detail: str, errors: list[dict] | None = None) -> None:
    """Answer before the app saw the request: the uniform error body, or the message page."""
    async def no_body() -> dict:
        return {"type": "http.disconnect"}
    await error_response(status, detail, errors, request=Request(scope))(scope, no_body, send)


class _ShapeError(Exception):
    def __init__(self, message: str):
        self.message = message


class _ConstantError(Exception):
    pass


def _reject_constant(name: str):
    raise _ConstantError(f"JSON 格式错误：不允许 {name}（标准 JSON 没有此值）")


def parse_json_limited(body: bytes, max_depth: int, max_keys: int, what: str = "请求体") -> Any:
    """Decode UTF-8 and parse JSON; 400 for malformed input, 422 for over-limit shape. `what`
    the body is, as the message names it (an uploaded 文件 is told how to save it)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        fix = "，请在导出或另存时选择 UTF-8 编码" if what == "文件" else ""
        raise ApiError(400, f"{what}不是 UTF-8 编码的文本（从第 {e.start + 1} 个字节起无法读取）{fix}")
    if text.startswith("\ufeff"):
        text = text[1:]

    def pairs_hook(pairs):
        if len(pairs) > max_keys:
            raise _ShapeError(f"JSON 对象的键超过上限（{len(pairs)} > {max_keys}）")
        d = dict(pairs)
        if len(d) != len(pairs):
            seen, dup = set(), None
            for k, _ in pairs:
                if k in seen:
                    dup = k
                    break
                seen.add(k)
            raise _ShapeError(f"JSON 对象中有重复的键：{dup}")
        return d

    try:
        doc = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_reject_constant)
    except _ShapeError as e:
        raise ApiError(422, e.message, [("(请求体)", e.message)])
    except _ConstantError as e:
        raise ApiError(400, str(e), [("(请求体)", str(e))])
    except RecursionError:
        msg = f"JSON 嵌套层数超过上限（{max_depth} 层）"
        raise ApiError(422, msg, [("(请求体)", msg)])
    except json.JSONDecodeError as e:
        msg = f"JSON 格式错误：第 {e.lineno} 行第 {e.colno} 列"
        raise ApiError(400, msg, [("(请求体)", msg)])
    except ValueError:
        raise ApiError(400, "JSON 格式错误：数字过长", [("(请求体)", "数字过长")])
    depth = json_depth(doc, max_depth + 1)
    if depth > max_depth:
        msg = f"JSON 嵌套层数超过上限（{max_depth} 层）"
        raise ApiError(422, msg, [("(请求体)", msg)])
    return doc


def json_depth(doc: Any, stop: int) -> int:
    """Nesting depth of containers (a scalar is 0), computed iteratively; stops early at `stop`."""
    best = 0
    stack = [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        best = max(best, d)
        if best >= stop:
            return best
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return best


def is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    main, _, params = value.partition(";")
    main = main.strip().lower()
    if not (main == "application/json" or (main.startswith("application/") and main.endswith("+json"))):
        return False
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


class JsonRoute(APIRoute):
    """Route class for every API route: strict JSON bodies and domain-exception mapping."""

    def get_route_handler(self) -> Callable:
        original = super().get_route_handler()
        body_field = self.body_field
        is_form = False
        if body_field is not None:
            info = getattr(body_field, "field_info", None)
            is_form = isinstance(info, Form)

        async def handler(request: Request) -> Response:
            if is_form and request.headers.get("content-length", "0") != "0" and not (
                    request.headers.get("content-type") or "").startswith(FORM_TYPES):
                # a JSON body to a form route was read as an empty form: every field then "missing"
                raise ApiError(415, "请求体须为表单，Content-Type 应为 multipart/form-data（含文件时）"
                                    "或 application/x-www-form-urlencoded")
            if body_field is not None and not is_form:
                body = await request.body()
                if body:
                    if not is_json_content_type(request.headers.get("content-type")):
                        raise ApiError(415, "请求体须为 JSON，Content-Type 应为 application/json（UTF-8）")
                    settings: Settings = request.app.state.settings
                    request._json = parse_json_limited(
                        body, settings.max_json_depth, settings.max_object_keys)
            return await original(request)

        return handler
