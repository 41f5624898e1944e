"""Working days as the store counts them (engine.workdays), with the store's errors.

A step that needs a year with no holiday schedule (no rules/workdays/YYYY.yaml and none in the
chinesecalendar library) or a broken schedule file is refused with a Conflict (409 in the API
and the console, one line in the CLI) naming the file to fill: never a generic failure, never
a guessed Mon–Fri deadline. `horizon_warning` is the start-up check: whether the schedules reach far enough ahead for
the 补正 and 公示 periods that may start soon.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from engine.profile import shanghai_today
from engine.workdays import REPO_ROOT, ScheduleFileError, UnknownYearError, WorkdayError, default_calendar
from store.errors import Conflict

WARN_AHEAD_DAYS = 183       # about six months: a window's 补正 and 公示 periods start within it


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _refusal(exc: WorkdayError, doing: str) -> Conflict:
    if isinstance(exc, ScheduleFileError):
        return Conflict(f"无法{doing}：节假日安排文件有误：" + "；".join(exc.problems))
    return Conflict(f"无法{doing}：{exc}")     # UnknownYearError names the file to fill


def add_workdays(start: date, n: int, doing: str) -> date:
    """The n-th working day after `start` (not counted); `doing` names the step refused
    when the calendar cannot say (“发出一次性告知书”)."""
    try:
        return default_calendar().add_workdays(start, n)
    except WorkdayError as exc:
        raise _refusal(exc, doing) from None


def next_workday(day: date, doing: str) -> date:
    """The first working day after `day`: where a period counted from `day` begins."""
    return add_workdays(day, 1, doing)


def horizon_warning(today: date | None = None, ahead_days: int = WARN_AHEAD_DAYS,
                    for_staff: bool = False) -> str | None:
    """A warning (one Chinese line) when the holiday schedules end, or a schedule file is
    broken, within `ahead_days` of today; None when the calendar reaches far enough. The
    administrator's (start-up log) names the file to fill; staff's (`for_staff`, the window's
    page) says what it means for their work and who fills it."""
    today = today or shanghai_today()
    cal = default_calendar()
    for year in range(today.year, (today + timedelta(days=ahead_days)).year + 1):
        try:
            cal.schedule(year)
        except UnknownYearError as exc:
            if for_staff:
                return (f"{year} 年的法定节假日安排尚未录入本系统：期限跨入 {year} 年的一次性告知书（补正期限）、"
                        f"公示和容缺承诺暂不能办理。国务院办公厅公布 {year} 年部分节假日安排后，请系统管理员录入")
            path = _shown(exc.path)
            return (f"节假日安排只到 {year - 1} 年底，缺少 {path}：期限跨入 {year} 年的一次性告知书（补正期限）、"
                    f"公示和容缺承诺将被拒绝办理。请在国务院办公厅公布 {year} 年部分节假日安排后填写 {path}"
                    "（格式见 rules/workdays/README.md）")
        except ScheduleFileError as exc:
            if for_staff:
                return f"{year} 年的节假日安排有误，相关期限暂不能计算：请系统管理员核对（服务日志中有详细说明）"
            return f"{year} 年的节假日安排文件有误，相关期限无法计算：" + "；".join(exc.problems)
    return None
