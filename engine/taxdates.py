"""Dates of the tax preferences: the 汇算清缴 deadline of a tax year and how long 留存备查
records are kept.

The annual settlement ends five months after the tax year (企业所得税法 第五十四条: 31 May of
the next year, rules/common.yaml `settlement_end`); a deadline on a rest day moves to the next
working day (征管法实施细则 第一百零九条), read from the working-day calendar. Records are kept
`retention_years` from the day after the settlement ends (2018年第23号).
"""
from __future__ import annotations

from datetime import date, timedelta

from engine.loader import Rulebook
from engine.workdays import UnknownYearError, default_calendar


def settlement_deadline(book: Rulebook, tax_year: int) -> tuple[date | None, bool]:
    """(the 汇算清缴 deadline of `tax_year`, whether the calendar of that year is known so
    a rest-day deadline could be moved); (None, True) before the rules cover the year."""
    end = book.common.parameters["settlement_end"].at(date(tax_year + 1, 1, 1))
    if end is None:
        return None, True
    d = date(tax_year + 1, int(end.value["month"]), int(end.value["day"]))
    cal = default_calendar()
    try:
        while not cal.is_workday(d):
            d += timedelta(days=1)
    except UnknownYearError:
        return date(tax_year + 1, int(end.value["month"]), int(end.value["day"])), False
    return d, True


def keep_until(book: Rulebook, tax_year: int) -> tuple[date | None, bool]:
    """(the last day records of `tax_year` must be kept, whether exact); None for a year the
    retention rule does not cover (before 2018年第23号)."""
    deadline, exact = settlement_deadline(book, tax_year)
    if deadline is None:
        return None, True
    years = book.common.parameters["retention_years"].at(deadline)
    if years is None:
        return None, True
    start = deadline + timedelta(days=1)
    return date(start.year + int(years.value), start.month, start.day) - timedelta(days=1), exact
