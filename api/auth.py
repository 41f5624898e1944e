"""Bearer-token auth for staff endpoints and the cookie session of the staff console.

Tokens live hashed in the store (`store.tokens`). The console keeps the token in an
HttpOnly, SameSite=Strict cookie; its CSRF token is an HMAC keyed by the session token, so
it needs no server-side state and works across worker processes.
"""
from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError

SESSION_COOKIE = "yagu_session"
ROLE_RANK = {"staff": 1, "admin": 2}
ROLE_NAMES = {"staff": "经办人员", "admin": "管理员"}

bearer_scheme = HTTPBearer(auto_error=False, description="工作人员令牌（`yagu token create --role staff|admin` 生成）")


async def role_of_token(request: Request, token: str | None) -> str | None:
    if not token or len(token) > 512:
        return None
    from store.tokens import authenticate
    db = request.app.state.runtime.store
    return await run_in_threadpool(authenticate, token, db=db)


def _check(role: str | None, need: str) -> str:
    if role is None:
        raise ApiError(401, "未登录或令牌无效：请在 Authorization 头中提供有效的 Bearer 令牌",
                       headers={"WWW-Authenticate": "Bearer"})
    if ROLE_RANK.get(role, 0) < ROLE_RANK[need]:
        raise ApiError(403, f"无权限：此操作需要{ROLE_NAMES[need]}（{need}）角色")
    return role


def require(need: str):
    async def dep(request: Request,
                  cred: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> str:
        token = cred.credentials if cred and cred.scheme.lower() == "bearer" else None
        return _check(await role_of_token(request, token), need)
    return dep


require_staff = require("staff")
require_admin = require("admin")


def csrf_token_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"yagu-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_token: str | None, submitted: str | None) -> bool:
    if not session_token or not submitted:
        return False
    return hmac.compare_digest(csrf_token_for(session_token), submitted)
