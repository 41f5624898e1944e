"""Chinese working-day calendar (工作日).

A working day is (Mon–Fri and not a holiday) or a listed 调休 make-up day. Periods follow
《民法典》第二百零一条: the starting day is not counted, counting begins the next day.

Sources of a year's schedule, in order:
1. ``rules/workdays/YYYY.yaml`` (staff fill it from the State Council notice) — overrides the library;
2. the ``chinese_calendar`` package (chinesecalendar 1.11.0 knows 2004–2026);
3. otherwise :class:`UnknownYearError`, naming the year and the file to fill. There is
   deliberately no Mon–Fri fallback: a wrong deadline on an official notice is worse than none.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import chinese_calendar
import yaml
from chinese_calendar import constants

from engine.loader import rules_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEDULE_DIR = REPO_ROOT / "rules" / "workdays"
LIMITS_FILE_NAME = "service-limits.yaml"


class WorkdayError(Exception):
    """Base class; str() is a Chinese message for users."""


class UnknownYearError(WorkdayError):
    def __init__(self, year: int, path: Path):
        self.year = year
        self.path = path
        super().__init__(
            f"缺少 {year} 年的节假日安排，无法计算工作日：请按国务院办公厅关于{year}年部分节假日安排的通知"
            f"填写 {_display_path(path)}（格式见 {_display_path(path.parent / 'README.md')}）"
        )


class ScheduleFileError(WorkdayError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("节假日安排文件有误：\n" + "\n".join(problems))


class UnknownLimitError(WorkdayError):
    pass


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class YearSchedule:
    year: int
    holidays: frozenset[dt.date]
    makeup_workdays: frozenset[dt.date]
    source: str  # "file:<path>" or "chinese_calendar"
    names: dict[dt.date, str] = field(default_factory=dict, compare=False)

    def is_workday(self, d: dt.date) -> bool:
        if d in self.makeup_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays


def _as_date(value, where: str, problems: list[str]) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(f"{where}: 应为日期（写成如 2027-01-01），实际为 {value!r}")
    return None


def load_schedule_file(path: Path) -> YearSchedule:
    """Parse and validate one ``YYYY.yaml``; every problem is reported as ``file:line: message``."""
    from engine.yamlsource import YamlSyntaxError, load_yaml

    name = _display_path(path)
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        raise ScheduleFileError([f"{name}:{exc.line}: {exc.message}"]) from None
    data = doc.data
    if not isinstance(data, dict):
        raise ScheduleFileError([f"{name}:1: 文件应为一个映射（year / notice / holidays / workdays）"])
    problems: list[str] = []

    def at(*loc) -> str:
        return f"{name}:{doc.line_of(loc)}"

    expected_year = int(path.stem) if path.stem.isdigit() else None
    for key in ("year", "notice", "holidays", "workdays"):
        if key not in data:
            problems.append(f"{name}:1: 缺少字段 {key}")
    for key in data:
        if key not in ("year", "notice", "holidays", "workdays"):
            problems.append(f"{at(key)}: 未知字段 {key}")
    year = None
    if "year" in data:
        year = data["year"]
        if not isinstance(year, int) or isinstance(year, bool):
            problems.append(f"{at('year')}: year 应为整数年份")
            year = None
        elif expected_year is not None and year != expected_year:
            problems.append(f"{at('year')}: year 为 {year}，与文件名 {path.name} 不符")
    year = expected_year or year  # the file name decides which year the file serves
    notice = data.get("notice")
    if "notice" in data:
        if not isinstance(notice, dict):
            problems.append(f"{at('notice')}: notice 应为映射（title / doc_no / published_on）")
        else:
            if not notice.get("title"):
                problems.append(f"{at('notice')}: notice.title 必填（国务院办公厅通知标题）")
            if not notice.get("published_on"):
                problems.append(f"{at('notice')}: notice.published_on 必填（通知发布日期）")
            else:
                _as_date(notice["published_on"], f"{at('notice', 'published_on')}: notice.published_on", problems)
    holidays: set[dt.date] = set()
    names: dict[dt.date, str] = {}
    if "holidays" in data:
        entries = data["holidays"]
        if not isinstance(entries, list):
            problems.append(f"{at('holidays')}: holidays 应为列表")
            entries = []
        for i, entry in enumerate(entries):
            where = at("holidays", i)
            if not isinstance(entry, dict):
                problems.append(f"{where}: 每个放假安排应为 {{name, from, to}}")
                continue
            unknown = set(entry) - {"name", "from", "to"}
            if unknown:
                problems.append(f"{where}: 未知字段 {', '.join(sorted(map(str, unknown)))}")
            if not entry.get("name"):
                problems.append(f"{where}: name 必填（节日名称）")
            start = _as_date(entry.get("from"), f"{where}: from", problems)
            end = _as_date(entry.get("to", entry.get("from")), f"{where}: to", problems)
            if start is None or end is None:
                continue
            if end < start:
                problems.append(f"{where}: to（{end}）早于 from（{start}）")
                continue
            d = start
            while d <= end:
                if year is not None and d.year != year:
                    problems.append(f"{where}: {d} 不在 {year} 年内")
                    break
                holidays.add(d)
                names[d] = str(entry.get("name"))
                d += dt.timedelta(days=1)
    makeup: set[dt.date] = set()
    if "workdays" in data:
        entries = data["workdays"]
        if not isinstance(entries, list):
            problems.append(f"{at('workdays')}: workdays 应为列表（可为空列表 []）")
            entries = []
        for i, entry in enumerate(entries):
            where = at("workdays", i)
            raw = entry.get("date") if isinstance(entry, dict) else entry
            d = _as_date(raw, f"{where}: date", problems)
            if d is None:
                continue
            if year is not None and d.year != year:
                problems.append(f"{where}: {d} 不在 {year} 年内")
            elif d.weekday() < 5:
                problems.append(f"{where}: {d} 是周{'一二三四五'[d.weekday()]}，调休上班日应为周六或周日")
            elif d in holidays:
                problems.append(f"{where}: {d} 同时列为放假日和调休上班日")
            else:
                makeup.add(d)
    if problems:
        raise ScheduleFileError(problems)
    return YearSchedule(year, frozenset(holidays), frozenset(makeup), f"file:{name}", names)


def _library_schedule(year: int) -> YearSchedule | None:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))  # raises NotImplementedError outside its range
    except NotImplementedError:
        return None
    hol = {d: n for d, n in constants.holidays.items() if d.year == year}
    work = {d for d in constants.workdays if d.year == year}
    return YearSchedule(year, frozenset(hol), frozenset(work), "chinese_calendar",
                        {d: getattr(n, "value", str(n)) for d, n in hol.items()})


class WorkdayCalendar:
    """Working-day arithmetic over year schedules; thread-safe, caches each year once."""

    def __init__(self, schedule_dir: Path | str | None = None):
        if schedule_dir is None:
            schedule_dir = os.environ.get("YAGU_WORKDAYS_DIR") or rules_dir() / "workdays"
        self.schedule_dir = Path(schedule_dir)
        self._years: dict[int, YearSchedule] = {}
        self._lock = threading.Lock()

    def schedule(self, year: int) -> YearSchedule:
        sched = self._years.get(year)
        if sched is not None:
            return sched
        with self._lock:
            if year in self._years:
                return self._years[year]
            path = self.schedule_dir / f"{year}.yaml"
            if path.exists():
                sched = load_schedule_file(path)
            else:
                sched = _library_schedule(year)
                if sched is None:
                    raise UnknownYearError(year, path)
            self._years[year] = sched
            return sched

    def is_workday(self, d: dt.date) -> bool:
        return self.schedule(d.year).is_workday(_to_date(d))

    def add_workdays(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (``start`` itself is not counted)."""
        start = _to_date(start)
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"工作日数应为非负整数，实际为 {n!r}")
        d = start
        left = n
        while left > 0:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        return d

    def workdays_between(self, a: dt.date, b: dt.date) -> int:
        """Working days in (a, b]: a is the starting day, not counted; negative if b < a."""
        a, b = _to_date(a), _to_date(b)
        if b < a:
            return -self.workdays_between(b, a)
        count = 0
        d = a
        while d < b:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                count += 1
        return count

    def due_date(self, start: dt.date, limit_name: str) -> dt.date:
        limit = service_limits(self.schedule_dir).get(limit_name)
        if limit is None:
            known = "、".join(service_limits(self.schedule_dir))
            raise UnknownLimitError(f"未知的办理时限 {limit_name!r}；可用：{known}")
        return self.add_workdays(start, limit.workdays)


@dataclass(frozen=True)
class ServiceLimit:
    id: str
    name: str
    workdays: int
    kind: str
    source: str
    note: str = ""


_limits_cache: dict[Path, dict[str, ServiceLimit]] = {}


def service_limits(schedule_dir: Path | None = None) -> dict[str, ServiceLimit]:
    """The Plan's service time limits; read from the schedule dir, else the shipped file."""
    path = Path(schedule_dir or DEFAULT_SCHEDULE_DIR) / LIMITS_FILE_NAME
    if not path.exists():
        path = DEFAULT_SCHEDULE_DIR / LIMITS_FILE_NAME
    if path not in _limits_cache:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        problems = []
        out = {}
        for key, v in (data.get("limits") or {}).items():
            if not isinstance(v, dict) or not isinstance(v.get("workdays"), int) or v["workdays"] < 0:
                problems.append(f"{_display_path(path)}: {key}.workdays 应为非负整数")
                continue
            if not v.get("source"):
                problems.append(f"{_display_path(path)}: {key}.source 必填（时限出处）")
                continue
            out[key] = ServiceLimit(key, v.get("name", key), v["workdays"], v.get("kind", "max"),
                                    v["source"], v.get("note", ""))
        if problems:
            raise ScheduleFileError(problems)
        _limits_cache[path] = out
    return _limits_cache[path]


def _to_date(d) -> dt.date:
    if isinstance(d, dt.datetime):
        return d.date()
    if isinstance(d, dt.date):
        return d
    raise TypeError(f"应为日期，实际为 {d!r}")


_default: WorkdayCalendar | None = None


def default_calendar() -> WorkdayCalendar:
    global _default
    if _default is None:
        _default = WorkdayCalendar()
    return _default


def is_workday(d: dt.date) -> bool:
    return default_calendar().is_workday(d)


def add_workdays(start: dt.date, n: int) -> dt.date:
    return default_calendar().add_workdays(start, n)


def workdays_between(a: dt.date, b: dt.date) -> int:
    return default_calendar().workdays_between(a, b)


def due_date(start: dt.date, limit_name: str) -> dt.date:
    return default_calendar().due_date(start, limit_name)
