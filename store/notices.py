"""Notice numbers: gapless per window and kind, stable across re-renders.

Format ``资高新惠{字}〔{年}〕第{seq:04d}号`` with the window's year and one character per kind:

| kind | 字 | 文书 |
|---|---|---|
| one_time | 告 | 一次性告知书 |
| award | 兑 | 兑现通知书 |
| non_support | 不 | 不予支持告知书 |
| tax_self_assessment | 税 | 税收优惠自评告知书 |

Concurrency: the window row is locked (PostgreSQL ``SELECT … FOR UPDATE``; SQLite transactions
here always take the write lock at BEGIN), so the max(seq)+1 read and the insert cannot
interleave; a rolled-back transaction leaves no gap because the number is only the row.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.models import Notice, Window, utcnow

KIND_CHARS = {"one_time": "告", "award": "兑", "non_support": "不", "tax_self_assessment": "税"}


def format_notice_number(kind: str, year: int, seq: int) -> str:
    return f"资高新惠{KIND_CHARS[kind]}〔{year}〕第{seq:04d}号"


def window_year(window: Window) -> int:
    head = window.id.split("-", 1)[0]
    return int(head) if head.isdigit() and len(head) == 4 else window.opens_on.year


def assign_notice_number(
    session: Session, window_id: str, application_id: str, kind: str, issued_on: date
) -> tuple[str, int]:
    """The number of this application's notice of this kind: the existing one on re-render,
    else the next in sequence. Runs in the caller's transaction; the caller commits."""
    if kind not in KIND_CHARS:
        raise ValueError(f"未知的告知书类型：{kind}")
    window = session.execute(
        select(Window).where(Window.id == window_id).with_for_update()
    ).scalar_one_or_none()
    if window is None:
        raise NotFound(f"申报窗口 {window_id} 不存在")
    existing = session.execute(
        select(Notice.number, Notice.seq).where(
            Notice.application_id == application_id, Notice.kind == kind
        )
    ).first()
    if existing:
        return existing.number, existing.seq
    seq = (
        session.scalar(
            select(func.max(Notice.seq)).where(Notice.window_id == window_id, Notice.kind == kind)
        )
        or 0
    ) + 1
    number = format_notice_number(kind, window_year(window), seq)
    session.add(
        Notice(window_id=window_id, application_id=application_id, kind=kind, seq=seq,
               number=number, issued_on=issued_on, created_at=utcnow())
    )
    session.flush()
    return number, seq
