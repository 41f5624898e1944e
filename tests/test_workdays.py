"""Working-day calendar: State Council 2026 schedule facts, 民法典 第二百零一条 counting,
schedule files for unknown years, and the Plan's service limits."""
import datetime as dt
import textwrap

import chinese_calendar
import pytest
from hypothesis import given, settings, strategies as st

from engine.workdays import (DEFAULT_SCHEDULE_DIR, ScheduleFileError, UnknownLimitError,
                              UnknownYearError, WorkdayCalendar, add_workdays, due_date,
                              load_schedule_file, service_limits, workdays_between)

D = dt.date


# Facts from 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04).
@pytest.mark.parametrize("start,n,expected", [
    (D(2026, 9, 30), 3, D(2026, 10, 10)),   # 国庆 10/1–10/7 off; Sat 10/10 is a make-up workday
    (D(2026, 9, 30), 6, D(2026, 10, 14)),   # Sun 10/11 is not
    (D(2026, 2, 13), 1, D(2026, 2, 14)),    # Sat 2/14 make-up day before 春节
    (D(2026, 2, 14), 1, D(2026, 2, 24)),    # 春节 2/15–2/23 off
    (D(2026, 1, 2), 1, D(2026, 1, 4)),      # Sun 1/4 make-up day after 元旦
    (D(2026, 4, 30), 1, D(2026, 5, 6)),     # 劳动节 5/1–5/5
    (D(2026, 3, 6), 1, D(2026, 3, 9)),      # ordinary weekend skipped
    (D(2026, 3, 6), 0, D(2026, 3, 6)),
])
def test_add_workdays_2026_schedule(start, n, expected):
    assert add_workdays(start, n) == expected


def test_start_day_not_counted_even_if_workday():
    # 民法典 第二百零一条: issuing on a Monday, 1 working day later is Tuesday, not Monday.
    assert add_workdays(D(2026, 3, 9), 1) == D(2026, 3, 10)


def test_shipped_2026_file_agrees_with_chinesecalendar_day_by_day():
    # Two independent transcriptions of the same State Council notice must agree.
    sched = load_schedule_file(DEFAULT_SCHEDULE_DIR / "2026.yaml")
    d = D(2026, 1, 1)
    disagreements = []
    while d.year == 2026:
        if sched.is_workday(d) != chinese_calendar.is_workday(d):
            disagreements.append(d)
        d += dt.timedelta(days=1)
    assert disagreements == []
    assert sum(1 for i in range(365) if sched.is_workday(D(2026, 1, 1) + dt.timedelta(days=i))) == 248


def test_unknown_year_fails_naming_year_and_file(tmp_path):
    cal = WorkdayCalendar(tmp_path)
    with pytest.raises(UnknownYearError) as exc:
        cal.add_workdays(D(2026, 12, 28), 5)     # runs into 2027
    assert exc.value.year == 2027
    assert "2027" in str(exc.value) and "2027.yaml" in str(exc.value)
    with pytest.raises(UnknownYearError):
        cal.workdays_between(D(2027, 1, 4), D(2027, 1, 8))


def test_the_shipped_schedules_have_no_2027_guess():
    # (the tests themselves run with a stand-in for the years after: tests/conftest.py)
    with pytest.raises(UnknownYearError, match=r"rules/workdays/2027\.yaml"):
        WorkdayCalendar(DEFAULT_SCHEDULE_DIR).add_workdays(D(2027, 3, 1), 1)


def _write_2027(dirpath):
    (dirpath / "2027.yaml").write_text(textwrap.dedent("""\
        year: 2027
        notice: {title: 测试用2027年节假日安排, doc_no: ~, published_on: 2026-11-01}
        holidays:
          - {name: 元旦, from: 2027-01-01, to: 2027-01-03}
          - {name: 测试假, from: 2027-03-01, to: 2027-03-03}
        workdays:
          - {date: 2027-03-06, note: 调休上班（周六）}
        """), encoding="utf-8")


def test_supplied_2027_file_takes_effect(tmp_path):
    _write_2027(tmp_path)
    cal = WorkdayCalendar(tmp_path)
    # 2027-02-26 is a Friday; Mon–Wed 3/1–3/3 are the (test) holiday, Sat 3/6 a make-up day.
    assert cal.add_workdays(D(2027, 2, 26), 1) == D(2027, 3, 4)
    assert cal.add_workdays(D(2027, 2, 26), 3) == D(2027, 3, 6)
    # Across the year boundary: 2026 from the library, 2027 from the file (元旦 1/1–1/3 off).
    assert cal.add_workdays(D(2026, 12, 31), 1) == D(2027, 1, 4)


def test_schedule_file_overrides_library_for_its_year(tmp_path):
    (tmp_path / "2026.yaml").write_text(textwrap.dedent("""\
        year: 2026
        notice: {title: 覆盖测试, published_on: 2025-11-04}
        holidays: []
        workdays: []
        """), encoding="utf-8")
    cal = WorkdayCalendar(tmp_path)
    assert cal.add_workdays(D(2026, 9, 30), 1) == D(2026, 10, 1)   # no 国庆 in this file


def test_bad_schedule_file_lists_every_problem_with_lines(tmp_path):
    (tmp_path / "2027.yaml").write_text(textwrap.dedent("""\
        year: 2028
        notice: {title: x}
        holidays:
          - {name: 元旦, from: 2027-01-05, to: 2027-01-01}
          - {from: 2027-13-01}
        workdays:
          - {date: 2027-03-03}
        """), encoding="utf-8")
    with pytest.raises(ScheduleFileError) as exc:
        WorkdayCalendar(tmp_path).add_workdays(D(2027, 2, 1), 1)
    text = "\n".join(exc.value.problems)
    assert "2027.yaml:1:" in text and "2028" in text          # year vs file name
    assert "2027.yaml:2:" in text and "published_on" in text
    assert "2027.yaml:4:" in text                             # to before from
    assert "2027.yaml:5:" in text                             # bad date + missing name
    assert "2027.yaml:7:" in text and "周三" in text           # make-up day on a weekday
    assert len(exc.value.problems) >= 5


# the last year with a published schedule is 2026: a start late enough that 25 working days
# stay inside it (a start of 27 November ran into 2027, which has no schedule yet)
dates = st.dates(min_value=D(2004, 1, 1), max_value=D(2026, 11, 15))


@settings(max_examples=200, deadline=None)
@given(start=dates, n=st.integers(min_value=0, max_value=25))
def test_add_then_count_roundtrip(start, n):
    end = add_workdays(start, n)
    assert workdays_between(start, end) == n
    assert end >= start
    if n > 0:
        assert chinese_calendar.is_workday(end)     # a deadline never lands on a rest day


@settings(max_examples=200, deadline=None)
@given(a=dates, b=dates)
def test_workdays_between_matches_library_count(a, b):
    lo, hi = min(a, b), max(a, b)
    expected = len(chinese_calendar.get_workdays(lo + dt.timedelta(days=1), hi)) if hi > lo else 0
    assert workdays_between(lo, hi) == expected
    assert workdays_between(hi, lo) == -expected


def test_service_limits_from_the_plan():
    limits = service_limits()
    assert {k: v.workdays for k, v in limits.items()}.items() >= {
        "vat_credit_refund": 3, "export_refund_normal": 6, "export_refund_class_1": 5,
        "export_refund_class_2": 10, "export_refund_class_3": 15, "export_refund_class_4": 20}.items()
    assert all(v.source for v in limits.values())
    assert due_date(D(2026, 9, 30), "vat_credit_refund") == D(2026, 10, 10)
    assert due_date(D(2026, 9, 30), "export_refund_normal") == D(2026, 10, 14)


def test_unknown_limit_name_lists_the_known_ones():
    with pytest.raises(UnknownLimitError, match="vat_credit_refund"):
        due_date(D(2026, 9, 30), "no_such_limit")
