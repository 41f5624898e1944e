"""Who did what, when: the window-level audit log and each application's history.

An application's history has two sources: its own entries (application_events: an action
on this one application) and the batches it took part in (event_batches: a step many
applications of a window took at once, which lists them in `members`). `history` merges them
in time order; writers choose with `event` (one) or `events` (many)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
import getpass
import os
from typing import Any, Iterable, Optional
import zlib

import orjson
from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from store.models import Application, ApplicationEvent, AuditLog, EventBatch, utcnow

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


def events(session: Session, window_id: str, rows: list[tuple]) -> None:
    """Many history entries at once (imports, judging a window), for applications of one
    window, each a tuple in the order of EVENT_COLUMNS, in the transaction of the changes they
    record. Entries alike but for the application are stored as one batch that lists them."""
    groups: dict[tuple, dict[str, None]] = {}      # an application listed twice is one member
    for application_id, at, actor, action, from_state, to_state, details in rows:
        key = (at, actor, action, from_state, to_state,
               None if details is None else orjson.dumps(details, option=orjson.OPT_SORT_KEYS))
        groups.setdefault(key, {})[application_id] = None
    if groups:
        session.execute(insert(EventBatch), [
            dict(window_id=window_id, at=at, actor=actor, action=action, from_state=from_state,
                 to_state=to_state, details=None if details is None else orjson.loads(details),
                 members=pack_members(ids))
            for (at, actor, action, from_state, to_state, details), ids in groups.items()])


def pack_members(ids: Iterable[str]) -> bytes:
    """A batch's applications: their ids, sorted, a line each, compressed. A member row per
    application cost 430 bytes an application on PostgreSQL (3.3 batches each; migration 0017)."""
    return zlib.compress("\n".join(sorted(ids)).encode(), 9)


def members(packed: bytes) -> list[str]:
    return zlib.decompress(packed).decode().split("\n")


def _lists(packed: bytes, application_id: str) -> bool:
    # a window of 100,000: its five to ten steps, 40 ms an application's history
    return f"\n{application_id}\n".encode() in b"\n" + zlib.decompress(packed) + b"\n"


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
    """An application's history, oldest first: its own entries and the batches of its window
    that list it, by time (a batch before an own entry of the same moment, then in the order
    written)."""
    e, b = ApplicationEvent.__table__, EventBatch.__table__
    cols = ("at", "actor", "action", "from_state", "to_state", "details")
    own = [(r[0], 1, seq, r) for seq, *r in session.execute(
        select(e.c.id, *(e.c[c] for c in cols)).where(e.c.application_id == application_id))]
    window = select(Application.window_id).where(Application.id == application_id).scalar_subquery()
    batched = [(r[0], 0, seq, r) for seq, packed, *r in session.execute(
        select(b.c.id, b.c.members, *(b.c[c] for c in cols))
        .where(or_(b.c.window_id == window, b.c.window_id.is_(None))))
        if _lists(packed, application_id)]
    return [Entry(*r) for *_, r in sorted(own + batched, key=lambda x: x[:3])]
