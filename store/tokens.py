"""API tokens for the staff endpoints. Only the sha256 of a token is stored."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update

from store.db import Database, default_database
from store.errors import NotFound
from store.models import ApiToken, utcnow
from store import audit

ROLES = ("staff", "admin")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(role: str, label: str, *, db: Database | None = None, actor: str | None = None) -> str:
    """Create a token and return its plaintext (shown once; not recoverable)."""
    if role not in ROLES:
        raise ValueError(f"角色必须是 {' 或 '.join(ROLES)}，不能是“{role}”")
    db = db or default_database()
    token = "yagu_" + secrets.token_urlsafe(32)
    with db.session() as s:
        s.add(ApiToken(role=role, token_hash=_hash(token), label=label, created_at=utcnow()))
        audit.record(s, actor, "token.create", label, {"role": role})
    return token


def authenticate(token: str | None, *, db: Database | None = None) -> str | None:
    """The role of a valid, unrevoked token, else None. The lookup is by hash, so timing
    reveals nothing about the plaintext."""
    if not token:
        return None
    db = db or default_database()
    with db.read_session() as s:
        return s.scalar(
            select(ApiToken.role).where(
                ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None)
            )
        )


def revoke_token(token_id: int, *, db: Database | None = None, actor: str | None = None) -> None:
    db = db or default_database()
    with db.session() as s:
        n = s.execute(
            update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount
        if not n:
            raise NotFound(f"令牌 {token_id} 不存在或已吊销")
        audit.record(s, actor, "token.revoke", str(token_id))
