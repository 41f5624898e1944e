"""Web sessions of the console (staff) and of the enterprise page.

The cookie holds a random session id; only its hash is stored, with the role, the subject
(the token or the application it was opened with) and an expiry. Logout ends the session on
the server, so a replayed cookie opens nothing; revoking a token ends its sessions too.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Optional

from sqlalchemy import select, update

from store import tokens
from store.db import Database
from store.models import ApiToken, WebSession, utcnow

STAFF_HOURS = 8
ENTERPRISE_HOURS = 2


@dataclass(frozen=True)
class Session_:
    id_hash: str
    kind: str          # staff | enterprise
    subject: str       # api token id, or application id
    role: str          # staff | admin | enterprise


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def open_session(db: Database, kind: str, subject: str, role: str) -> str:
    """A new session; returns the id for the cookie (never stored in clear)."""
    sid = secrets.token_urlsafe(32)
    hours = STAFF_HOURS if kind == "staff" else ENTERPRISE_HOURS
    with db.session() as s:
        s.add(WebSession(id_hash=_hash(sid), kind=kind, subject=subject, role=role, created_at=utcnow(),
                         expires_at=utcnow() + timedelta(hours=hours)))
    return sid


def lookup(db: Database, sid: str | None, kind: str) -> Optional[Session_]:
    if not sid or len(sid) > 100:
        return None
    with db.read_session() as s:
        row = s.get(WebSession, _hash(sid))
        if row is None or row.kind != kind or row.ended_at is not None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
        if expires <= utcnow():
            return None
        if kind == "staff":      # a revoked or expired token ends its sessions
            if s.scalar(select(ApiToken.id).where(ApiToken.id == int(row.subject), tokens.live())) is None:
                return None
        return Session_(row.id_hash, row.kind, row.subject, row.role)


def end(db: Database, sid: str | None) -> None:
    if not sid or len(sid) > 100:
        return
    with db.session() as s:
        s.execute(update(WebSession).where(WebSession.id_hash == _hash(sid), WebSession.ended_at.is_(None))
                  .values(ended_at=utcnow()))


def end_all(s, kind: str, subject: str) -> None:
    """End every open session of one subject (an application whose access code was replaced),
    inside the caller's transaction."""
    s.execute(update(WebSession).where(WebSession.kind == kind, WebSession.subject == subject,
                                       WebSession.ended_at.is_(None)).values(ended_at=utcnow()))
