"""Who did what, when: the window-level audit log and each application's history.

An application's history has two sources: its own entries (application_events: an action
on this one application) and the batches it took part in (event_batches, through
event_batch_members: a step many applications took at once). `history` merges them in
time order; writers choose with `event` (one) or `events` (many)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
import getpass
import os
from typing import Any, Optional

import orjson
from sqlalchemy import insert, literal, select, union_all
from sqlalchemy.orm import Session

from store.bulk import insert_rows
from store.models import ApplicationEvent, AuditLog, EventBatch, EventBatchMember, utcnow

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
    EVENT_COLUMNS, in the transaction of the changes they record. Entries alike but for the
    application are stored as one batch and a member row per application."""
    groups: dict[tuple, dict[str, None]] = {}      # an application listed twice is one member
    for application_id, at, actor, action, from_state, to_state, details in rows:
        key = (at, actor, action, from_state, to_state,
               None if details is None else orjson.dumps(details, option=orjson.OPT_SORT_KEYS))
        groups.setdefault(key, {})[application_id] = None
    conn = session.connection()
    for (at, actor, action, from_state, to_state, details), ids in groups.items():
        batch = conn.execute(insert(EventBatch).values(
            at=at, actor=actor, action=action, from_state=from_state, to_state=to_state,
            details=None if details is None else orjson.loads(details)).returning(EventBatch.id)).scalar_one()
        insert_rows(conn, EventBatchMember.__table__, ("application_id", "batch_id"),
                    ((i, batch) for i in ids))


@dataclass(frozen=True)
class Entry:
    """One entry of an application's history, from either source."""
    at: datetime
    actor: str
    action: str
    from_state: Optional[str]
    to_state: Optional[str]
    details: Optional[Any]


def history(session: Session, application_id: str) -> list[Entry]:
    """An application's history, oldest first: its own entries and its batches, by time
    (a batch before an own entry of the same moment, then in the order written)."""
    e, b, m = ApplicationEvent.__table__, EventBatch.__table__, EventBatchMember.__table__
    cols = ("at", "actor", "action", "from_state", "to_state", "details")
    own = select(*(e.c[c] for c in cols), literal(1).label("source"), e.c.id.label("seq")) \
        .where(e.c.application_id == application_id)
    batched = select(*(b.c[c] for c in cols), literal(0).label("source"), b.c.id.label("seq")) \
        .join(m, m.c.batch_id == b.c.id).where(m.c.application_id == application_id)
    q = union_all(own, batched).subquery()
    rows = session.execute(select(*(q.c[c] for c in cols)).order_by(q.c.at, q.c.source, q.c.seq)).all()
    return [Entry(*r) for r in rows]
