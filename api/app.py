"""The FastAPI application factory."""
from __future__ import annotations

import gc
import json
import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api import routes_public, routes_staff, web_console, web_public
from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.routes_public import probe_storage
from api.runtime import Runtime
from api.schemas import error_entry, live_examples
from api.settings import Settings
from engine import Evaluator
from notices.service import NoticeService   # also registers the notices.bundle job kind
from store import jobs, tasks, workdays  # noqa: F401 — tasks registers the store's job kinds
from store.db import Database, masked

log = logging.getLogger("yagu.api")
HERE = Path(__file__).resolve().parent
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

DESCRIPTION = """
牙谷（中国牙谷·资阳高新区）惠企政策资格判定服务。

* **公共接口**：事项列表与详情、惠企政策资格自测（`POST /v1/eligibility`）、税收优惠自行判别、企业凭查询码查看申报。
* **工作人员接口**：需 `Authorization: Bearer <令牌>`；令牌用 `yagu token create --role staff|admin` 生成。
  关闭申报批次、重放核验和管理令牌需要管理员（admin）角色。耗时的操作（批量判定、导入、告知书打包、影响分析）
  作为后台任务运行，返回 202 和任务编号，进度见 `GET /v1/jobs/{id}`。
* **错误**：统一返回 `{"detail": "…", "errors": [{"path": "profile.uscc", "message": "…"}]}`；
  422 一次列出全部问题，409 状态冲突（写明当前状态），413 请求体过大（默认 2 MB；含文件的表单 20 MB，
  其中每份材料文件不超过 10 MB，超过时 422 指明该文件），500 规则引擎未能判定（服务照常运行），503 数据库暂不可用。
  JSON 请求体嵌套不超过 12 层、每个对象不超过 200 个键（超过时 422）。400（请求体不是 JSON）
  的 `errors` 指明出错的行和列（无法解码为 UTF-8 时为空列表），415（类型不对）的为空列表。
* **时间**：时刻一律为带时区的 UTC（`2026-11-30T09:05:00Z`）；页面和文书按北京时间显示。
* **接入**：接口供政务服务平台等后端系统调用，不提供跨域（CORS）访问；企业的查询码放在请求头
  `X-Access-Code` 中。查询码 12 位（60 比特随机），编号不存在与查询码错误的回答相同。
* **取值范围**：日期一律为 `YYYY-MM-DD`（2000-01-01 至 2100-12-31，不带时间）；编号和计数不超过 2147483647；
  文本不能包含空字符；企业画像的每个数值字段有上下限和小数位数。各接口和导入文件的校验相同，用词也相同。

网页：企业自测 `/`，申报 `/apply`，查看本企业申报 `/application`，工作人员控制台 `/staff`。接口的完整说明见
`docs/api.md`，企业画像的字段见 `docs/profile.md`（均由代码生成），事项见 `GET /v1/rules`。
"""

TAGS = [
    {"name": "公共", "description": "无需登录"},
    {"name": "企业", "description": "企业凭查询码查看本企业的申报"},
    {"name": "工作人员", "description": "申报批次、受理、判定、一次告知、复核、公示、兑现、告知书（需令牌）"},
    {"name": "管理员", "description": "需 admin 角色"},
]


class StartupError(Exception):
    """The service cannot serve (e.g. a read-only database); the message says why, in Chinese."""


def check_storage(db: Database) -> None:
    """The database answers and accepts writes; else a clear message naming it (no password)."""
    try:
        probe_storage(db)
    except Exception as exc:  # noqa: BLE001 — reported in one line, not a trace
        raise StartupError(f"数据库 {masked(db.url)} 不可写或无法连接：{str(exc).splitlines()[0][:200]}") from None


def create_app(settings: Settings | None = None, evaluator: Evaluator | None = None) -> FastAPI:
    settings = settings or Settings()
    db = Database(settings.database_url)
    runtime = Runtime(db, evaluator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.migrate_on_start:
            db.upgrade()
        check_storage(db)
        app.openapi()                       # compiles the rules (and the examples) before the first request
        app.state.notices = NoticeService(db)
        horizon = workdays.horizon_warning()
        if horizon:
            log.warning(horizon)
        unset = app.state.notices.settings.unset()
        if unset:
            log.warning("文书设置未填写：%s（rules/notice-settings.yaml）；填写前不出具正式文书", "、".join(unset))
        runner = jobs.start_runner(db) if settings.run_jobs else None
        # The compiled rules and the framework are long-lived: move them out of the cyclic GC's
        # view so full collections stay short under load (tail latency).
        gc.collect()
        gc.freeze()
        yield
        if runner is not None:
            runner.stop()
        db.dispose()

    app = FastAPI(title="牙谷惠企政策资格判定服务（yagu）", version="2", description=DESCRIPTION,
                  openapi_tags=TAGS, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(routes_public.router)
    app.include_router(routes_staff.router)
    app.include_router(web_public.router)
    app.include_router(web_console.router)
    # browsers ask for /favicon.ico whatever the page says
    app.add_api_route("/favicon.ico", lambda: RedirectResponse("/static/favicon.svg", status_code=301),
                      include_in_schema=False)
    redoc = _redoc_script()
    app.add_api_route("/static/docs/redoc.standalone.js", lambda: Response(redoc, media_type="text/javascript"),
                      include_in_schema=False)
    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # Self-hosted Swagger UI and ReDoc (fastapi-offline's assets): no CDN on an intranet. Their
    # scripts are files; their styles are injected at run time, hence the docs pages' own CSP.
    for path, page in (("/docs", "docs_swagger.html"), ("/redoc", "docs_redoc.html")):
        html = (HERE / "templates" / page).read_text(encoding="utf-8")
        app.add_api_route(path, lambda html=html: HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP}),
                          include_in_schema=False, response_class=HTMLResponse)

    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.openapi = lambda: openapi_with_examples(app)       # type: ignore[method-assign]
    return app


# ReDoc's menu ends in an English "API docs by Redocly" link whose logo it loads from its CDN
# (refused by the CSP, but still attempted): served without that link.
_REDOC_CREDIT = ('r.createElement("a",{target:"_blank",rel:"noopener noreferrer",href:"https://redocly.com/redoc/"},'
                 'r.createElement(fw,null),"API docs by Redocly")')


def _redoc_script() -> bytes:
    js = (DOCS_ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    if _REDOC_CREDIT in js:
        js = js.replace(_REDOC_CREDIT, "null")
    else:       # another ReDoc build: at least nothing is fetched from outside, nothing in English
        js = js.replace("https://cdn.redoc.ly/redoc/logo-mini.svg", "data:,").replace("API docs by Redocly", "")
    return js.encode("utf-8")


def openapi_with_examples(app: FastAPI) -> dict:
    """The OpenAPI document, its response examples computed by the engine (cached per app)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes, tags=app.openapi_tags)
        for path, example in live_examples(app.state.runtime.evaluator).items():
            for op in schema["paths"][path].values():
                op["responses"]["200"]["content"]["application/json"]["example"] = example
        # FastAPI's own entries in Chinese: validation errors in the uniform body, successes named
        for ops in schema["paths"].values():
            for op in ops.values():
                if op.pop("x-multipart", False):      # a form with file parts: sent as multipart
                    content = op["requestBody"]["content"]
                    content["multipart/form-data"] = content.pop("application/x-www-form-urlencoded")
                for code, resp in op["responses"].items():
                    if code == "422":
                        entry = error_entry(422)
                        op["responses"][code] = {"description": entry["description"], "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorBody"}, **entry["content"]["application/json"]}}}
                    elif resp.get("description") == "Successful Response":
                        resp["description"] = "成功"
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        app.openapi_schema = _readable_schemas(schema)
    return app.openapi_schema


def _readable_schemas(schema: dict) -> dict:
    """Model names a reader of the reference can use (FastAPI's own for a form body, and
    module-qualified ones where two models share a name), and no English docstring (they are
    the code's comments) as a model's description."""
    schemas = schema["components"]["schemas"]
    renames = {}
    for name in schemas:
        if name.startswith("Body_"):            # Body_submit_correction_v1_… → SubmitCorrectionForm
            renames[name] = "".join(p.title() for p in name[5:].split("_v1_")[0].split("_")) + "Form"
        elif "__" in name:                      # engine__results__Conflict → ResultsConflict
            module, cls = name.split("__")[-2:]
            renames[name] = module.title() + cls
    for model in schemas.values():
        if not re.search(r"[\u4e00-\u9fff]", model.get("description", "") or "中"):
            model.pop("description")
    if renames:
        text = json.dumps(schema, ensure_ascii=False)
        for old, new in renames.items():
            text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
        schema = json.loads(text)
        schema["components"]["schemas"] = {renames.get(k, k): v for k, v in schema["components"]["schemas"].items()}
    return schema
