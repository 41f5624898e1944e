"""Who is asking: staff API tokens (Bearer), console sessions, enterprise sessions, CSRF.

Tokens live hashed in the store (store.tokens). The console and the enterprise page keep a
server-side session (store.sessions): the cookie holds a random id, logout ends it on the
server. The CSRF token of a form is an HMAC keyed by the session id.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from engine.vocabulary import ROLE
from store import sessions, tokens

STAFF_COOKIE = "yagu_console"
ENTERPRISE_COOKIE = "yagu_applicant"
ROLE_RANK = {"staff": 1, "admin": 2}

bearer_scheme = HTTPBearer(auto_error=False, description="工作人员令牌（`yagu token create --role staff|admin` 生成）")


@dataclass(frozen=True)
class Staff:
    token_id: int
    role: str

    @property
    def actor(self) -> str:
        return f"{ROLE[self.role]}（令牌 {self.token_id}）"

    @property
    def is_admin(self) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK["admin"]


def _check(who: Staff | None, need: str) -> Staff:
    if who is None:
        raise ApiError(401, "未登录，或令牌无效、已过期、已吊销：请在 Authorization 头中提供有效的 Bearer 令牌",
                       headers={"WWW-Authenticate": "Bearer"})
    if ROLE_RANK.get(who.role, 0) < ROLE_RANK[need]:
        raise ApiError(403, f"无权限：此操作需要{ROLE[need]}角色")
    return who


def require(need: str):
    async def dep(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Staff:
        token = cred.credentials if cred and cred.scheme.lower() == "bearer" else None
        ident = await run_in_threadpool(tokens.authenticate, request.app.state.runtime.db, token)
        return _check(Staff(ident.token_id, ident.role) if ident else None, need)
    return dep


require_staff = require("staff")
require_admin = require("admin")


async def console_session(request: Request) -> tuple[str, Staff] | None:
    sid = request.cookies.get(STAFF_COOKIE)
    s = await run_in_threadpool(sessions.lookup, request.app.state.runtime.db, sid, "staff")
    return (sid, Staff(int(s.subject), s.role)) if s else None


async def enterprise_session(request: Request) -> tuple[str, str] | None:
    """(session id, application id) of the enterprise page's session."""
    sid = request.cookies.get(ENTERPRISE_COOKIE)
    s = await run_in_threadpool(sessions.lookup, request.app.state.runtime.db, sid, "enterprise")
    return (sid, s.subject) if s else None


def csrf_token_for(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"yagu-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_id: str | None, submitted: str | None) -> bool:
    if not session_id or not submitted:
        return False
    return hmac.compare_digest(csrf_token_for(session_id), submitted)
