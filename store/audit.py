"""Audit log: who did what, when."""
from __future__ import annotations

import getpass
import os

from sqlalchemy import insert
from sqlalchemy.orm import Session

from store.models import AuditLog, utcnow


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"cli:{user}"


def record(session: Session, actor: str | None, action: str, target: str, details=None) -> None:
    session.execute(
        insert(AuditLog).values(
            at=utcnow(), actor=actor or default_actor(), action=action, target=target,
            details=details,
        )
    )
