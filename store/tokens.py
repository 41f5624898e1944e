"""API tokens for the staff endpoints and the console. Only the sha256 of a token is stored."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from pydantic import BaseModel, computed_field
from sqlalchemy import or_, select, update

from engine.vocabulary import ROLE, cn_time
from store import audit
from store.db import Database
from store.errors import NotFound, RowProblem, ValidationFailed
from store.models import ApiToken, utcnow

ROLES = tuple(ROLE)
DEFAULT_DAYS, MAX_DAYS = 365, 3650


class TokenView(BaseModel):
    id: int
    role: str
    role_text: str
    label: str
    created_at: datetime
    revoked_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None

    @computed_field(description="状态：有效（到期时间）、已过期或已吊销")
    @property
    def state_text(self) -> str:
        if self.revoked_at is not None:
            return f"已吊销（{cn_time(self.revoked_at)}）"
        if self.expires_at is None:
            return "有效（升级前建立，不会到期，建议吊销后重建）"
        if self.expires_at <= utcnow():
            return f"已过期（{cn_time(self.expires_at)}）"
        return f"有效，{cn_time(self.expires_at)} 到期"

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())


@dataclass(frozen=True)
class Identity:
    token_id: int
    role: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, role: str, label: str, *, days: int = DEFAULT_DAYS,
                 actor: str | None = None) -> tuple[TokenView, str]:
    """Create a token valid for `days`; returns its record and its plaintext (shown once; not
    recoverable). Every token expires: a forgotten one stops working by itself."""
    problems = []
    if role not in ROLES:
        problems.append(RowProblem(f"角色应为 {'、'.join(f'{k}（{v}）' for k, v in ROLE.items())}", path="role"))
    label = (label or "").strip()
    if not 1 <= len(label) <= 100 or "\x00" in label:
        problems.append(RowProblem("请填写令牌用途说明（1 至 100 个字符）", path="label"))
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        problems.append(RowProblem(f"有效期应为 1 至 {MAX_DAYS} 天", path="days"))
    if problems:
        raise ValidationFailed(problems)
    token = "yagu_" + secrets.token_urlsafe(32)
    with db.session() as s:
        now = utcnow()
        t = ApiToken(role=role, token_hash=_hash(token), label=label, created_at=now,
                     expires_at=now + timedelta(days=days))
        s.add(t)
        s.flush()
        audit.record(s, actor, "token.create", str(t.id), {"role": role, "label": label, "days": days})
        return _view(t), token


def _view(t: ApiToken) -> TokenView:
    return TokenView(id=t.id, role=t.role, role_text=ROLE.get(t.role, t.role), label=t.label,
                     created_at=t.created_at, revoked_at=t.revoked_at, expires_at=t.expires_at)


def live():
    """The condition of a token that opens the API and the console: not revoked, not expired."""
    return (ApiToken.revoked_at.is_(None)) & or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow())


def authenticate(db: Database, token: str | None) -> Optional[Identity]:
    """The identity of a valid (unrevoked, unexpired) token, else None. The lookup is by hash,
    so timing reveals nothing about the plaintext."""
    if not token or len(token) > 512 or "\x00" in token:
        return None
    with db.read_session() as s:
        row = s.execute(select(ApiToken.id, ApiToken.role).where(ApiToken.token_hash == _hash(token),
                                                                 live())).first()
        return Identity(row.id, row.role) if row else None


def list_tokens(db: Database) -> list[TokenView]:
    with db.read_session() as s:
        return [_view(t) for t in s.execute(select(ApiToken).order_by(ApiToken.id)).scalars()]


def revoke_token(db: Database, token_id: int, *, actor: str | None = None) -> None:
    with db.session() as s:
        n = s.execute(update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                      .values(revoked_at=utcnow())).rowcount
        if not n:
            raise NotFound(f"令牌 {token_id} 不存在或已吊销")
        audit.record(s, actor, "token.revoke", str(token_id))
