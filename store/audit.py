"""Who did what, when: the window-level audit log and each application's history."""
from __future__ import annotations

import getpass
import os

from sqlalchemy import insert
from sqlalchemy.orm import Session

from store.bulk import insert_rows
from store.models import ApplicationEvent, AuditLog, utcnow

EVENT_COLUMNS = ("application_id", "at", "actor", "action", "from_state", "to_state", "details")


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 — no passwd entry in some containers
        user = str(os.getuid())
    return f"cli:{user}"


def record(session: Session, actor: str | None, action: str, target: str, details=None) -> None:
    session.execute(insert(AuditLog).values(at=utcnow(), actor=actor or default_actor(), action=action,
                                            target=target, details=details))


def event(session: Session, application_id: str, actor: str | None, action: str,
          from_state: str | None, to_state: str | None, details=None) -> None:
    """One entry of an application's history, in the transaction of the change it records."""
    session.execute(insert(ApplicationEvent).values(
        application_id=application_id, at=utcnow(), actor=actor or default_actor(), action=action,
        from_state=from_state, to_state=to_state, details=details))


def events(session: Session, rows: list[tuple]) -> None:
    """Many history entries at once (imports, judging a window), each a tuple in the order of
    EVENT_COLUMNS, in the transaction of the changes they record."""
    if rows:
        insert_rows(session.connection(), ApplicationEvent.__table__, EVENT_COLUMNS, rows)
