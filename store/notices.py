"""Notice kinds (one declaration each) and notice numbers.

A kind says what it is called, the character of its number, which results it reports and
which template renders it; the notices package and the console read this table and nothing
else. Numbers are gapless per year and kind — the two windows of a year share one sequence, so
no two documents carry the same number — and stable across re-renders:
``资高新惠{字}〔{年}〕第{seq:04d}号`` with the window's year.

Concurrency: numbering a kind in a year takes a transaction-scoped lock (PostgreSQL advisory
lock; SQLite transactions here always take the write lock at BEGIN), so the max(seq)+1 read and
the insert cannot interleave; a rolled-back transaction leaves no gap because the number is only
the row.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from store.bulk import insert_rows
from store.errors import NotFound
from store.models import Notice, Window, utcnow

Covers = Literal["grant_open", "grant_awarded", "grant_refused", "tax", "all"]


@dataclass(frozen=True)
class NoticeKind:
    id: str
    title: str
    char: str            # the character of its number; "" = not an official, numbered notice
    covers: Covers       # grant_open: grant results not (yet) eligible; tax: tax self-assessment; all
    template: str        # notices/templates/<template>
    signed: bool = True  # carries the issuing body's name and date (a self-check does not)


KINDS: dict[str, NoticeKind] = {k.id: k for k in (
    NoticeKind("one_time", "一次性告知书", "告", "grant_open", "one_time.j2"),
    NoticeKind("award", "兑现通知书", "兑", "grant_awarded", "award.j2"),
    NoticeKind("non_support", "不予支持告知书", "不", "grant_refused", "non_support.j2"),
    NoticeKind("tax_self_assessment", "税收优惠自行判别结果", "税", "tax", "tax_self_assessment.j2"),
    NoticeKind("selfcheck", "自测结果", "", "all", "selfcheck.j2", signed=False),
)}


def format_number(kind: str, year: int, seq: int) -> str:
    return f"资高新惠{KINDS[kind].char}〔{year}〕第{seq:04d}号"


def window_year(window: Window) -> int:
    head = window.id.split("-", 1)[0]
    return int(head) if head.isdigit() and len(head) == 4 else window.opens_on.year


def assign_numbers(session: Session, window_id: str, application_ids: list[str], kind: str,
                   issued_on: date) -> int:
    """Number the notices of this kind for many applications at once, in the order given
    (a window's close): the window row is locked once, applications that already hold one
    keep it, the rest take the next numbers in one insert. Returns how many were numbered."""
    if kind not in KINDS or not KINDS[kind].char:
        raise ValueError(f"未知的告知书类型：{kind}")
    window = session.execute(select(Window).where(Window.id == window_id)).scalar_one_or_none()
    if window is None:
        raise NotFound(f"申报批次 {window_id} 不存在")
    year, now = window_year(window), utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # one numbering of a kind at a time in a year, whichever window (a lock on the rows of
        # the year's windows would deadlock with a close that holds its own window's row)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(f"notice:{kind}:{year}".encode())})
    same_year = [w.id for w in session.execute(select(Window)).scalars() if window_year(w) == year]
    held = set(session.scalars(select(Notice.application_id).where(Notice.window_id == window_id,
                                                                   Notice.kind == kind)))
    todo = [a for a in application_ids if a not in held]
    seq = session.scalar(select(func.max(Notice.seq)).where(Notice.window_id.in_(same_year),
                                                            Notice.kind == kind)) or 0
    rows = [(window_id, a, kind, seq + i, format_number(kind, year, seq + i), issued_on, now)
            for i, a in enumerate(todo, 1)]
    if rows:
        insert_rows(session.connection(), Notice.__table__,
                    ("window_id", "application_id", "kind", "seq", "number", "issued_on", "created_at"), rows)
    return len(rows)


def assign_number(session: Session, window_id: str, application_id: str, kind: str,
                  issued_on: date) -> Notice:
    """This application's notice of this kind: the existing one on re-render, else the next
    number in sequence. Runs in the caller's transaction."""
    assign_numbers(session, window_id, [application_id], kind, issued_on)
    return session.execute(select(Notice).where(Notice.application_id == application_id,
                                                Notice.kind == kind)).scalar_one()
