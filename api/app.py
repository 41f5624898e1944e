"""The FastAPI application factory."""
from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.runtime import Runtime
from api.settings import Settings

log = logging.getLogger("yagu.api")
HERE = Path(__file__).resolve().parent

DESCRIPTION = """
牙谷（中国牙谷·资阳高新区）惠企政策资格判定服务。

* **公共接口**：政策列表与详情、惠企政策资格自测（`POST /v1/eligibility`）、税收优惠自行判别。
* **工作人员接口**：需 `Authorization: Bearer <令牌>`；令牌用 `yagu token create --role staff|admin` 生成。
  关闭申报批次和管理令牌需要管理员（admin）角色。
* **错误**：统一返回 `{"detail": "…", "errors": [{"path": "profile.uscc", "message": "…"}]}`；
  422 一次列出全部问题，409 状态冲突，413 请求体过大（默认 2 MB，上传文件 20 MB）。

网页：企业自测 `/`，工作人员控制台 `/staff`。
"""

TAGS = [
    {"name": "公共", "description": "无需登录"},
    {"name": "企业", "description": "企业凭查询码查看本企业的申报"},
    {"name": "工作人员", "description": "申报批次、受理、批量判定、公示名单、告知书（需令牌）"},
    {"name": "管理员", "description": "需 admin 角色"},
]


def create_app(settings: Settings | None = None, evaluator: Any = None) -> FastAPI:
    settings = settings or Settings()
    runtime = Runtime(settings, evaluator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.migrate_on_start:
            from api import domain
            domain.migrate(runtime)
        runtime.evaluator  # compile the rules before the first request
        # The compiled rules and the framework are long-lived: move them out of the cyclic
        # GC's view so full collections stay short under load (tail latency).
        gc.collect()
        gc.freeze()
        yield

    app = FastAPI(title="牙谷惠企政策资格判定服务（yagu）", version="1", description=DESCRIPTION,
                  openapi_tags=TAGS, lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    install_error_handlers(app)

    from api import routes_public, routes_staff, routes_web
    app.include_router(routes_public.router)
    app.include_router(routes_staff.router)
    app.include_router(routes_web.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    app.add_middleware(BodyLimitMiddleware, settings=settings)
    return app
