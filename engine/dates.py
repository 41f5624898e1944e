"""Date arithmetic of the condition language (calendar months, start/end of year or month)."""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

from engine.conditions import AsOf, FactDate, Literal_, WindowDate


def add_months(d: date, months: int) -> date:
    """Calendar months; the day is clamped to the month's end (2024-02-29 − 12 months = 2023-02-28)."""
    total = d.year * 12 + (d.month - 1) + months
    y, m = divmod(total, 12)
    m += 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def shift(d: date, years: int = 0, months: int = 0, days: int = 0) -> date:
    return add_months(d, years * 12 + months) + timedelta(days=days)


def resolve_date(v: Any, as_of: date, window: Any) -> date:
    if isinstance(v, AsOf):
        d = shift(as_of, v.years, v.months, v.days)
        if v.start_of == "year":
            d = date(d.year, 1, 1)
        elif v.start_of == "month":
            d = date(d.year, d.month, 1)
        elif v.end_of == "year":
            d = date(d.year, 12, 31)
        elif v.end_of == "month":
            d = date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])
        return d
    if isinstance(v, WindowDate):
        return getattr(window, v.field)
    if isinstance(v, FactDate):
        raise TypeError("a fact date is resolved against its subject: use shift_fact_date")
    if isinstance(v, Literal_):
        return v.value
    raise TypeError(f"not a date value: {v!r}")


def shift_fact_date(v: FactDate, anchor: date | None, years: int | None = None) -> date | None:
    """The anchor shifted by the offsets; `years` when they come from a parameter (None: no
    value in force)."""
    y = v.years if years is None else years
    if anchor is None or not isinstance(y, int):
        return None
    return shift(anchor, v.sign * y, v.sign * v.months, v.sign * v.days)
