"""API tokens for the staff endpoints and the console. Only the sha256 of a token is stored."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from pydantic import BaseModel
from sqlalchemy import select, update

from engine.vocabulary import ROLE
from store import audit
from store.db import Database
from store.errors import NotFound, RowProblem, ValidationFailed
from store.models import ApiToken, utcnow

ROLES = tuple(ROLE)


class TokenView(BaseModel):
    id: int
    role: str
    role_text: str
    label: str
    created_at: datetime
    revoked_at: Optional[datetime] = None


@dataclass(frozen=True)
class Identity:
    token_id: int
    role: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, role: str, label: str, *, actor: str | None = None) -> tuple[TokenView, str]:
    """Create a token; returns its record and its plaintext (shown once; not recoverable)."""
    problems = []
    if role not in ROLES:
        problems.append(RowProblem(f"角色应为 {'、'.join(f'{k}（{v}）' for k, v in ROLE.items())}", path="role"))
    label = (label or "").strip()
    if not 1 <= len(label) <= 100 or "\x00" in label:
        problems.append(RowProblem("请填写令牌用途说明（1 至 100 个字符）", path="label"))
    if problems:
        raise ValidationFailed(problems)
    token = "yagu_" + secrets.token_urlsafe(32)
    with db.session() as s:
        t = ApiToken(role=role, token_hash=_hash(token), label=label, created_at=utcnow())
        s.add(t)
        s.flush()
        audit.record(s, actor, "token.create", str(t.id), {"role": role, "label": label})
        return _view(t), token


def _view(t: ApiToken) -> TokenView:
    return TokenView(id=t.id, role=t.role, role_text=ROLE.get(t.role, t.role), label=t.label,
                     created_at=t.created_at, revoked_at=t.revoked_at)


def authenticate(db: Database, token: str | None) -> Optional[Identity]:
    """The identity of a valid, unrevoked token, else None. The lookup is by hash, so timing
    reveals nothing about the plaintext."""
    if not token or len(token) > 512 or "\x00" in token:
        return None
    with db.read_session() as s:
        row = s.execute(select(ApiToken.id, ApiToken.role).where(ApiToken.token_hash == _hash(token),
                                                                 ApiToken.revoked_at.is_(None))).first()
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
