"""Spreadsheet intake (.xlsx / .csv): the import template, the reading of a filled one, and the
file's contents (store.applications imports them). Every column, header and accepted spelling
comes from the field registry (rules/fields.yaml); nothing here names a profile fact.

Layout
- .xlsx: sheet 企业信息 has one row per enterprise and a column per top-level fact (`column`,
  else `label`); an object whose `false` means something (高新技术企业证书, `false_means`) has
  a yes/no column (its `column`) and a column per sub-field. Each list has its own sheet (its
  `sheet`), one row per item, linked to the enterprise by 统一社会信用代码; a list whose items
  are subjects of benefits (注册证) also carries the application's column
  本次申报（是/否，留空为是）, which is not a profile fact. Sheets 填写示例 (the example rows)
  and 说明 are never read, so the untouched template imports nothing.
- .csv: one table: the enterprise columns, then each list's columns (headers prefixed with the
  list's `csv_prefix`); a row carries at most one item of each list, and rows with the same
  统一社会信用代码 are merged. The CSV template is headers only: its example is the .xlsx
  template's 填写示例 sheet.
- A list sheet (CSV: any column of the list) that is present is the complete list: an
  enterprise without rows there has none. Absent means unknown.

Headers are accepted as the column text, that text without its bracketed hint, the label, any
synonym and the field id (CSV list columns: with the prefix, or `list.field`). Cells are read by
the field's type: 是/否/有/无/Y/N/√/× for yes/no; an enum's id, label or `value_synonyms`
(ASCII case-insensitive, full-width forms folded); numbers with the field's decimals, and for
元 "4,200万", "4200万元", "1.5亿", for 比例 "92%"; dates as YYYY-MM-DD, YYYY/MM/DD,
YYYY年M月D日 or real Excel dates.

Limits (`IntakeLimits`, defined in store.spreadsheet; callers read YAGU_MAX_IMPORT_ROWS,
YAGU_MAX_IMPORT_PROBLEMS, YAGU_MAX_IMPORT_CELL_CHARS, YAGU_MAX_IMPORT_PART_BYTES,
YAGU_MAX_IMPORT_SHEET_BYTES, YAGU_MAX_IMPORT_TOTAL_BYTES and YAGU_MAX_IMPORT_RATIO with
`IntakeLimits.from_env()`; store.applications does): at most `max_rows` data rows (200,000)
are read, and past them one problem names the cap and nothing of the file is imported; at most
`max_problems` (200) problems are listed, then "另有 N 处问题未列出"; a cell holds at most
`max_cell_chars` (1,000) characters; .xlsx parts are bounded in unpacked size and compression
ratio. Messages name the sheet, the row as Excel shows it and the column header, and quote at
most 20 characters of a value.
"""
from __future__ import annotations

import csv
import difflib
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, Callable, Optional

from openpyxl import Workbook as XlsxWriter
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from engine import vocabulary as vocab
from engine.formats import FORMATS
from engine.profile import range_problem
from engine.registry import FieldRegistry, FieldSpec
from store.errors import RowProblem, ValidationFailed
from store.spreadsheet import CSV_SHEET, IntakeLimits, Sheet, open_sheets

__all__ = ["IntakeLimits", "ParsedFile", "ImportedEnterprise", "parse_file", "template_bytes"]

ENTERPRISE_KEY = "uscc"          # the contract's enterprise identifier: links rows to enterprises
CLAIM = "#claim"                 # key of the application's claim column on a subject list's sheet
CLAIM_HEADER = "本次申报（是/否，留空为是）"
SHEET_ENTERPRISES = "企业信息"
SHEET_EXAMPLE = "填写示例"
SHEET_NOTES = "说明"
QUOTED_CHARS = 20
_MEMO_LIMIT = 4096
_TRUE = frozenset({"是", "有", "y", "yes", "true", "t", "1", "√", "✓"})
_FALSE = frozenset({"否", "无", "n", "no", "false", "f", "0", "×", "✗"})
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_MONEY_SCALE = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}
_BAD = object()     # a cell whose problem is reported
_ITEM_PATH = re.compile(r"^([a-z0-9_]+)\[(\d+)\](?:\.(.+))?$")


def _clip(value: Any) -> str:
    """A value as quoted in a message: at most QUOTED_CHARS characters."""
    s = vocab.yes_no(value) if isinstance(value, bool) else str(value)
    return s[:QUOTED_CHARS] + "…" if len(s) > QUOTED_CHARS else s


def _quote(value: Any) -> str:
    return f"“{_clip(value)}”"


def _fold(text: str) -> str:
    """A spelling as compared: full-width forms folded (Ｂ, Ⅱ), no spaces, ASCII lower-cased."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _norm_header(text: str) -> str:
    return _fold(text).replace("(", "（").replace(")", "）").replace("-", "–")


def _hintless(text: str) -> str:
    """A header without its bracketed hint: 来源（自主研发/引进） → 来源."""
    return _norm_header(text).split("（")[0]


class CellError(ValueError):
    """A cell that does not hold a value of its column (message in Chinese)."""


# --- cell parsing, by field type --------------------------------------------------------------


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    s = _fold(str(raw))
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise CellError(f"应填“是”或“否”，不能是{_quote(raw)}")


def _parse_date(raw: Any) -> str:
    if isinstance(raw, datetime):
        if raw.time() != time():
            raise CellError(f"应为日期，不能带时间：{_quote(raw)}")
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    m = _DATE.match(unicodedata.normalize("NFKC", str(raw)).strip())
    if m is None:
        raise CellError(f"无法识别的日期{_quote(raw)}，请写成 2025-10-15、2025/10/15 或 2025年10月15日")
    try:
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        raise CellError(f"不存在的日期{_quote(raw)}") from None


def _number_parser(spec: FieldSpec) -> Callable[[Any], int | float]:
    places = 0 if spec.type == "int" else spec.decimals
    what = "整数" if places == 0 else "数字"
    too_fine = ("应为整数：{}" if places == 0 else
                ("金额" if spec.unit == "元" else "该数值") + f"最多保留{'零一两三四五六'[places]}位小数：{{}}")

    def exact(d: Decimal, raw: Any) -> int | float:
        if d.adjusted() > 20:        # far outside any field's bounds: say which bound, as the API does
            raise CellError(range_problem(spec, d) or f"数值过大：{_quote(raw)}")
        if d != d.quantize(Decimal(1).scaleb(-places)):
            raise CellError(too_fine.format(_quote(raw)))
        return int(d) if d == d.to_integral_value() else float(d)

    def parse(raw: Any) -> int | float:
        if isinstance(raw, (bool, date)):
            raise CellError(f"应填{what}，不能是{_quote(raw)}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float):
            if not math.isfinite(raw):
                raise CellError(f"应填有限的{what}")
            # Excel stores binary floats: 1234.56 may arrive as 1234.5600000000002
            rounded = round(raw, places)
            if abs(rounded - raw) > 1e-9 * max(1.0, abs(raw)):
                raise CellError(too_fine.format(_quote(raw)))
            return int(rounded) if rounded.is_integer() else rounded
        s = _fold(str(raw)).replace(",", "")
        scale = Decimal(1)
        if spec.unit == "元":
            s = s.removesuffix("元")
            if s[-1:] in _MONEY_SCALE:
                s, scale = s[:-1], _MONEY_SCALE[s[-1]]
        elif spec.unit == "比例" and s.endswith("%"):
            s, scale = s[:-1], Decimal("0.01")
        elif spec.unit:
            s = s.removesuffix(spec.unit)
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise CellError(f"应填{what}，不能是{_quote(raw)}") from None
        if not d.is_finite():
            raise CellError(f"应填有限的{what}")
        return exact(d * scale, raw)
    return parse


def _value_table(spec: FieldSpec) -> dict[str, Any]:
    """Every accepted spelling of an enum (or labelled int) value → the value."""
    table: dict[str, Any] = {}
    by_text = {str(v): v for v in spec.values}

    def add(spelling: str, value: Any) -> None:
        key = _fold(spelling)
        if table.setdefault(key, value) != value:
            raise ValueError(f"fields.yaml：{spec.id} 的写法“{spelling}”同时对应 {table[key]} 和 {value}")
    for value, label in spec.values.items():
        add(str(value), value)
        add(label, value)
    for value, spellings in spec.value_synonyms.items():
        for spelling in spellings:
            add(spelling, by_text[str(value)])
    return table


def _enum_parser(spec: FieldSpec, fallback: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    table = _value_table(spec)
    options = "、".join(spec.values.values())

    def parse(raw: Any) -> Any:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if not isinstance(raw, bool):
            value = table.get(_fold(str(raw)))
            if value is not None:
                return value
            if fallback is not None:
                return fallback(raw)
        raise CellError(f"取值{_quote(raw)}无效，应为以下之一：{options}")
    return parse


def _string_parser(spec: FieldSpec) -> Callable[[Any], str]:
    check = FORMATS[spec.format] if spec.format else None

    def parse(raw: Any) -> str:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, datetime) and raw.time() == time():
            raw = raw.date()
        s = raw.isoformat() if isinstance(raw, (date, datetime)) else str(raw).strip()
        if check is None:
            return s
        try:
            return check(s)
        except ValueError as e:         # FormatError, or a format's own ValueError
            raise CellError(str(e)) from None
    return parse


def _parser(spec: FieldSpec | None) -> Callable[[Any], Any]:
    if spec is None or spec.type in ("bool", "object"):     # claim / held columns are yes/no
        return _parse_bool
    if spec.type == "date":
        return _parse_date
    if spec.type in ("int", "number"):
        number = _number_parser(spec)
        return _enum_parser(spec, number) if spec.values else number
    if spec.type == "enum":
        return _enum_parser(spec, None)
    return _string_parser(spec)



def read_value(spec: FieldSpec, raw: Any) -> Any:
    """One value as a person writes it (a cell, or a web form's input): the field's value, or
    CellError with a Chinese message. One reading of "4,200万", "92%", 是/否 for every input."""
    return _parser(spec)(raw)

# --- the layout derived from the registry ------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Column:
    """One column of the template."""
    key: str                # in_park; hnte_certificate (held yes/no); hnte_certificate.number;
                            # device_registrations[].origin; device_registrations[].#claim
    header: str             # as the template writes it
    spec: FieldSpec | None  # None: the claim column
    names: tuple[str, ...]  # accepted headers, normalised, the header first
    parse: Callable[[Any], Any]
    list: str | None = None  # the list the column fills (None: the enterprise)
    required: bool = False

    @property
    def field(self) -> str:
        """The item field of a list column (certificate_no), else the key."""
        return self.key.split("[].", 1)[1] if self.list else self.key

    def prefixed(self, prefix: str) -> "Column":
        """The column as the CSV writes it: with its list's prefix."""
        names = tuple(dict.fromkeys([*(_norm_header(prefix) + n for n in self.names),
                                     *(n for n in self.names if n.startswith(_norm_header(prefix))),
                                     _norm_header(f"{self.list}.{self.field}")]))
        return Column(self.key, prefix + self.header, self.spec, names, self.parse, self.list, self.required)


def _column(key: str, spec: FieldSpec, ident: str, *, list_id: str | None = None,
            required: bool = False) -> Column:
    header = spec.column or spec.label
    names = [header, _hintless(header), spec.label, _hintless(spec.label)]
    for s in spec.synonyms:
        names += [s, _hintless(s)]
    names.append(ident)
    return Column(key, header, spec, tuple(dict.fromkeys(_norm_header(n) for n in names)),
                  _parser(spec), list_id, required)


@dataclass(frozen=True, eq=False)
class Group:
    """The enterprise's own columns, or one list's columns (the columns of one sheet)."""
    sheet: str
    spec: FieldSpec | None          # the list; None for the enterprise
    columns: tuple[Column, ...]     # a list sheet starts with the link column

    @property
    def list(self) -> str | None:
        return self.spec.id if self.spec is not None else None


class Layout:
    """The sheets and columns of the import template, derived from a registry."""

    def __init__(self, registry: FieldRegistry):
        self.registry = registry
        key_spec = registry.fields[ENTERPRISE_KEY]
        ent: list[Column] = []
        lists: list[Group] = []
        for f in registry.entered_fields():
            if f.type == "list":
                link = _column(ENTERPRISE_KEY, key_spec, ENTERPRISE_KEY, required=True)
                cols = [_column(f"{f.id}[].{s.id}", s, s.id, list_id=f.id, required=s.required)
                        for s in f.fields if s.entered]
                if f.subject and f.key and f.claimable:
                    cols.append(Column(f"{f.id}[].{CLAIM}", CLAIM_HEADER, None,
                                       (_norm_header(CLAIM_HEADER), _hintless(CLAIM_HEADER)),
                                       _parse_bool, f.id))
                lists.append(Group(f.sheet or f.label, f, (link, *cols)))
            elif f.type == "object":
                if f.false_means is not None:
                    ent.append(_column(f.id, f, f.id))
                ent += [_column(f"{f.id}.{s.id}", s, f"{f.id}.{s.id}") for s in f.fields]
            else:
                ent.append(_column(f.id, f, f.id, required=f.required))
        self.enterprise = Group(SHEET_ENTERPRISES, None, tuple(ent))
        self.lists = tuple(lists)
        self.list_ids = tuple(g.list for g in lists)
        self.objects = tuple((f.id, tuple((s.id, f"{f.id}.{s.id}") for s in f.fields))
                             for f in registry.entered_fields() if f.type == "object")
        self.csv = tuple(ent) + tuple(c.prefixed(g.spec.csv_prefix) if g.spec.csv_prefix else c
                                      for g in lists for c in g.columns[1:])


@cache
def layout(registry: FieldRegistry) -> Layout:
    return Layout(registry)


# --- problems -----------------------------------------------------------------------------------


class ProblemLog:
    """Problems of one file: the first `limit` are listed, the rest only counted."""

    def __init__(self, limit: int):
        self.limit = limit
        self.listed: list[RowProblem] = []
        self.unlisted = 0
        self._sheets: dict[str | None, int] = {None: -1}
        self.cells: set[tuple] = set()     # (sheet, row, column) of every problem, listed or not

    def add(self, problem: RowProblem, *, always: bool = False) -> None:
        self._sheets.setdefault(problem.sheet, len(self._sheets))
        self.cells.add((problem.sheet, problem.row, problem.column))
        if always or len(self.listed) < self.limit:
            self.listed.append(problem)
        else:
            self.unlisted += 1

    @property
    def total(self) -> int:
        return len(self.listed) + self.unlisted

    def report(self) -> list[RowProblem]:
        """Listed problems by sheet (in reading order) and row, then the count of the rest."""
        out = sorted(self.listed, key=lambda p: (self._sheets[p.sheet], p.row or 0))
        if self.unlisted:
            out.append(RowProblem(f"另有 {self.unlisted} 处问题未列出"))
        return out


# --- reading a file -------------------------------------------------------------------------------


class _Table:
    """The columns one sheet of a file has: file column index → template column."""

    __slots__ = ("sheet", "by_index", "header_of", "template")

    def __init__(self, sheet: str, columns: tuple[Column, ...]):
        self.sheet = sheet
        # file column → (template column or None if not understood, memo of parsed values or
        # None, list id or None, item field or key)
        self.by_index: dict[int, tuple[Column | None, dict | None, str | None, str]] = {}
        self.header_of: dict[str, str] = {}     # column key → header as written in the file
        self.template = {c.key: c.header for c in columns}

    def header(self, key: str) -> str | None:
        return self.header_of.get(key) or self.template.get(key)


class ImportedEnterprise:
    """One enterprise read from a file: its profile as JSON data (not yet validated), the
    certificates it claims (None: the file has no claim column), whether its rows were free of
    problems, and `locate(profile path)` → (sheet, row, column header) of the cell a fact came
    from, so a profile problem is reported at its cell."""

    __slots__ = ("uscc", "profile", "claims", "ok", "_home", "_later", "_items")

    def __init__(self, uscc: str, profile: dict, home: tuple[_Table, int], ok: bool):
        self.uscc, self.profile, self.ok = uscc, profile, ok
        self.claims: Optional[list[str]] = None
        self._home = home
        self._later: dict[str, tuple[_Table, int]] | None = None   # facts first given on a later row
        self._items: dict[str, list[tuple[_Table, int]]] | None = None

    def locate(self, path: str) -> tuple[str, int, str | None]:
        m = _ITEM_PATH.match(path)
        if m and self._items and m[1] in self._items:
            rows = self._items[m[1]]
            if int(m[2]) < len(rows):
                table, row = rows[int(m[2])]
                return table.sheet, row, table.header(f"{m[1]}[].{m[3]}") if m[3] else None
        key = path if path in self._home[0].template else re.split(r"[.\[]", path)[0]
        table, row = (self._later or {}).get(key, self._home)
        return table.sheet, row, table.header(key)


@dataclass
class ParsedFile:
    """A file read: its enterprises, its problems (`log`: listed and counted), its data rows."""
    enterprises: list[ImportedEnterprise]
    log: ProblemLog
    rows: int           # data rows read
    complete: bool = True   # False: the file was not wholly understood (a missing column, sheet…)

    @property
    def problems(self) -> list[RowProblem]:
        return self.log.report()


class _Reader:
    def __init__(self, registry: FieldRegistry, limits: IntakeLimits):
        self.registry, self.limits = registry, limits
        self.layout = layout(registry)
        self.log = ProblemLog(limits.max_problems)
        self.enterprises: dict[str, ImportedEnterprise] = {}
        self.item_keys: dict[str, dict[str, int]] = {}     # list → item key → its row
        self.present: set[str] = set()     # lists whose sheet or columns the file has
        self.rows = 0
        self.complete = True               # False: the file was not wholly understood
        self.stopped = False

    def problem(self, message: str, sheet: str | None = None, row: int | None = None,
                column: str | None = None, *, always: bool = False) -> None:
        self.log.add(RowProblem(message, sheet=sheet, row=row, column=column), always=always)

    def fail(self, message: str, sheet: str | None = None, row: int | None = None,
             column: str | None = None) -> None:
        """A problem of the file as a whole: nothing in it is imported."""
        self.problem(message, sheet, row, column)
        self.complete = False

    # -- headers --
    def table(self, sheet: Sheet, columns: tuple[Column, ...], name: str) -> tuple[_Table, int] | None:
        head = sheet.header()
        if head is None:
            self.fail("工作表是空的（缺少表头）", name)
            return None
        header_row, cells = head
        index: dict[str, Column] = {}
        for c in columns:                       # headers first, then the other accepted names
            index.setdefault(c.names[0], c)
        for c in columns:
            for n in c.names[1:]:
                index.setdefault(n, c)
        table = _Table(name, columns)
        for i, raw in sorted(cells.items()):
            text = str(raw).strip()
            if not text:
                continue
            col = index.get(_norm_header(text)) if len(text) <= 200 else None
            if col is None:
                self.problem("无法识别的列名" + self.suggestion(text, index), name, header_row, _clip(text))
            elif col.key in table.header_of:
                self.problem(f"列重复（与“{table.header_of[col.key]}”相同）", name, header_row, text)
                col = None
            else:
                table.header_of[col.key] = text
            memo = {} if col is not None and (col.spec is None or col.spec.type != "string") else None
            table.by_index[i] = (col, memo, col.list if col else None, col.field if col else "")
        lists = {slot[2] for slot in table.by_index.values()}
        missing = [c for c in columns if c.required and c.key not in table.header_of
                   and (c.list is None or c.list in lists)]
        for c in missing:
            self.fail("缺少必需的列", name, header_row, c.header)
        return None if missing else (table, header_row)

    def suggestion(self, text: str, index: dict[str, Column]) -> str:
        if len(self.log.listed) >= self.log.limit:     # not shown: spare the search
            return ""
        close = difflib.get_close_matches(_norm_header(text[:200]), list(index), n=1, cutoff=0.6)
        return f"，是否指“{index[close[0]].header}”？" if close else "（请使用导入模板中的列名）"

    # -- rows --
    def read(self, sheet: Sheet, table: _Table, header_row: int, apply: Callable) -> None:
        wanted = frozenset(table.by_index)
        for rowno, cells in sheet.rows(wanted, header_row):
            if not any(type(v) is not str or v.strip() for v in cells.values()):
                continue
            if self.rows >= self.limits.max_rows:
                self.problem(f"超过 {self.limits.max_rows} 行的上限，从本行起未读取；请分成多个文件导入",
                             table.sheet, rowno, always=True)
                self.complete, self.stopped = False, True
                return
            self.rows += 1
            apply(table, rowno, *self.cells(table, rowno, cells))
        if sheet.stray:
            stray = sorted(sheet.stray)
            shown = "、".join(str(i + 1) for i in stray[:5]) + ("…" if len(stray) > 5 else "")
            self.fail(f"第{shown}列有数据但没有列名（共 {len(stray)} 列）", table.sheet, header_row)
            sheet.stray.clear()

    def cells(self, table: _Table, rowno: int, cells: dict[int, Any]) -> tuple[dict, bool]:
        """The values of one row: enterprise facts by key, each list's item by list id (a dict by
        item field); and whether a cell failed (reported)."""
        values: dict[str, Any] = {}
        failed = False
        for i, raw in cells.items():
            col, memo, group, name = table.by_index[i]
            if memo is None:
                value = self.cell(table, rowno, col, raw)
            else:       # repeated values (是/否, dates, enums) are parsed once
                key = raw if type(raw) is str else (type(raw), raw)
                value = memo.get(key, _BAD)
                if value is _BAD:
                    value = self.cell(table, rowno, col, raw)
                    if value is not _BAD and len(memo) < _MEMO_LIMIT:
                        memo[key] = value
            if value is _BAD:
                failed = True
            elif value is not None:
                if group is None:
                    values[name] = value
                else:
                    values.setdefault(group, {})[name] = value
        return values, failed

    def cell(self, table: _Table, rowno: int, col: Column | None, raw: Any) -> Any:
        """One cell's value (None: blank), or _BAD once its problem is reported."""
        if type(raw) is str:
            message = ("不能包含空字符（\\u0000）" if "\x00" in raw else
                       f"内容超过 {self.limits.max_cell_chars} 个字符：{_quote(raw)}"
                       if len(raw) > self.limits.max_cell_chars else None)
            if message is not None:
                self.problem(message, table.sheet, rowno, table.header(col.key) if col else None)
                return _BAD
            if not raw.strip():
                return None
        if col is None:     # data under a header that is not understood (reported there)
            return _BAD
        try:
            return col.parse(raw)
        except CellError as e:
            self.problem(str(e), table.sheet, rowno, table.header(col.key))
            return _BAD

    # -- assembling enterprises --
    def uscc_of(self, table: _Table, rowno: int, values: dict, failed: bool) -> str | None:
        uscc = values.get(ENTERPRISE_KEY)
        if uscc is None and not failed:
            self.problem("必填，不能为空", table.sheet, rowno, table.header(ENTERPRISE_KEY))
        return uscc

    def enterprise_row(self, table: _Table, rowno: int, values: dict, failed: bool) -> None:
        uscc = self.uscc_of(table, rowno, values, failed)
        if uscc is None:
            return
        e = self.enterprises.get(uscc)
        if e is not None:
            self.problem(f"{self.registry.label(ENTERPRISE_KEY)} {uscc} 与第{e._home[1]}行重复", table.sheet,
                         rowno, table.header(ENTERPRISE_KEY))
            e.ok = False
            return
        self.enterprises[uscc] = ImportedEnterprise(uscc, values, (table, rowno), not failed)

    def list_row(self, group: Group) -> Callable:
        def apply(table: _Table, rowno: int, values: dict, failed: bool) -> None:
            uscc = self.uscc_of(table, rowno, values, failed)
            e = self.enterprises.get(uscc) if uscc is not None else None
            if uscc is not None and e is None:
                self.problem(f"“{SHEET_ENTERPRISES}”中没有{self.registry.label(ENTERPRISE_KEY)} {uscc} 的企业",
                             table.sheet, rowno, table.header(ENTERPRISE_KEY))
            self.item(e, group, table, rowno, values.get(group.list, {}), failed)
        return apply

    def csv_row(self, table: _Table, rowno: int, values: dict, failed: bool) -> None:
        uscc = self.uscc_of(table, rowno, values, failed)
        items = {g: values.pop(g) for g in self.layout.list_ids if g in values}
        facts = values
        e = self.enterprises.get(uscc) if uscc is not None else None
        if e is not None:
            self.merge(e, table, rowno, facts)
            if failed:
                e.ok = False
        elif uscc is not None:
            e = self.enterprises[uscc] = ImportedEnterprise(uscc, facts, (table, rowno), not failed)
        for group in self.layout.lists:
            if group.list in items:
                self.item(e, group, table, rowno, items[group.list], False)

    def merge(self, e: ImportedEnterprise, table: _Table, rowno: int, facts: dict) -> None:
        """Facts of an enterprise given again on a later CSV row: the same, or a problem."""
        for key, v in facts.items():
            old = e.profile.get(key)
            if old is None:
                e.profile[key] = v
                if e._later is None:
                    e._later = {}
                e._later[key] = (table, rowno)
            elif old != v:
                first = (e._later or {}).get(key, e._home)[1]
                self.problem(f"同一企业在第{first}行填的是{_quote(self.registry.value_text(key, old))}，"
                             "两处不一致", table.sheet, rowno, table.header(key))
                e.ok = False

    def item(self, e: ImportedEnterprise | None, group: Group, table: _Table, rowno: int, item: dict,
             failed: bool) -> None:
        """One list item, checked (also when its enterprise is unknown: its key is still taken)."""
        spec = group.spec
        assert spec is not None
        claim = item.pop(CLAIM, None)
        for c in group.columns[1:]:
            if c.required and c.field not in item and not failed:
                self.problem(f"填写了{spec.item_label or spec.label}信息但缺少{c.spec.label}", table.sheet,
                             rowno, table.header(c.key))
                failed = True
        key = item.get(spec.key) if spec.key else None
        if key is not None:
            seen = self.item_keys.setdefault(spec.id, {})
            if key in seen:
                self.problem(f"{spec.item_label or spec.label} {_clip(key)} 与第{seen[key]}行重复", table.sheet,
                             rowno, table.header(f"{spec.id}[].{spec.key}"))
                failed = True
            else:
                seen[key] = rowno
        if e is None:
            return
        if e._items is None:
            e._items = {}
        e.profile.setdefault(spec.id, []).append(item)
        e._items.setdefault(spec.id, []).append((table, rowno))
        if key is not None and claim is not False and spec.subject and spec.claimable:
            if e.claims is None:
                e.claims = []
            e.claims.append(key)
        if failed:
            e.ok = False

    # -- the whole file --
    def finish(self) -> list[ImportedEnterprise]:
        out = []
        subject_lists = {g.list for g in self.layout.lists if g.spec.subject and g.spec.key and g.spec.claimable}
        claims_known = bool(self.present & subject_lists)
        for e in self.enterprises.values():
            e.profile = self.profile(e)
            if claims_known and e.claims is None:
                e.claims = []
            if not self.complete:
                e.ok = False
            out.append(e)
        return out

    def profile(self, e: ImportedEnterprise) -> dict:
        """The JSON profile from the facts collected: objects assembled from their columns, lists
        present in the file complete."""
        facts = e.profile
        for name in self.present:
            facts.setdefault(name, [])
        for obj, subs in self.layout.objects:
            held = facts.pop(obj, None)
            given = {sub: facts.pop(key) for sub, key in subs if key in facts}
            if held is False:
                held_in = (e._later or {}).get(obj, e._home)[0]
                for sub in given:
                    sheet, row, column = e.locate(f"{obj}.{sub}")
                    self.problem(f"“{held_in.header(obj)}”填了“否”，此项应留空", sheet, row, column)
                    e.ok = False
                facts[obj] = False
            elif held or given:
                facts[obj] = given
        return facts


def parse_file(data: bytes, filename: str, registry: FieldRegistry,
               limits: IntakeLimits | None = None) -> ParsedFile:
    """Read and check an .xlsx or .csv file: every problem is collected, nothing is stored.
    Raises ValidationFailed when the file cannot be read at all."""
    limits = limits or IntakeLimits()
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        raise ValidationFailed([RowProblem(
            f"不支持的文件类型{_quote(suffix or filename)}，请上传 .xlsx 或 .csv 文件")])
    r = _Reader(registry, limits)
    sheets = open_sheets(data, suffix, limits)
    lay = r.layout
    if suffix == ".csv":
        sheet = sheets[0]
        made = r.table(sheet, lay.csv, CSV_SHEET)
        if made is not None:
            table, header_row = made
            r.present.update(slot[2] for slot in table.by_index.values() if slot[2] is not None)
            r.read(sheet, table, header_row, r.csv_row)
    else:
        by_name = {s.name: s for s in sheets}
        known = {lay.enterprise.sheet, *(g.sheet for g in lay.lists), SHEET_EXAMPLE, SHEET_NOTES}
        for s in sheets:
            if s.name not in known:
                r.fail(f"无法识别的工作表（应为 {'、'.join(g.sheet for g in (lay.enterprise, *lay.lists))}）",
                       _clip(s.name))
        if lay.enterprise.sheet not in by_name:
            r.fail(f"缺少工作表“{lay.enterprise.sheet}”（请使用导入模板）")
        for group in (lay.enterprise, *lay.lists):
            sheet = by_name.get(group.sheet)
            if sheet is None or r.stopped:
                continue
            if group.list is not None:
                if not r.enterprises:       # items of unreadable enterprises: no storm of problems
                    continue
                r.present.add(group.list)
            made = r.table(sheet, group.columns, group.sheet)
            if made is not None:
                r.read(sheet, made[0], made[1], r.enterprise_row if group.list is None else r.list_row(group))
    if r.rows == 0 and not r.log.total:
        where = f"请从“{lay.enterprise.sheet}”工作表第2行起填写，“{SHEET_EXAMPLE}”工作表仅供参考，不会导入" \
            if suffix != ".csv" else "请在表头下方逐行填写"
        r.problem(f"文件中没有可导入的数据：{where}")
    return ParsedFile(r.finish(), r.log, r.rows, r.complete)


# --- template -----------------------------------------------------------------------------------


def _example(c: Column, registry: FieldRegistry) -> Any:
    if c.spec is None:
        return vocab.YES
    if c.key == ENTERPRISE_KEY:
        return registry.fields[ENTERPRISE_KEY].example
    return c.spec.example


def _accepts(c: Column) -> str:
    """What a column accepts, for the 说明 sheet."""
    s = c.spec
    if s is None or s.type in ("bool", "object"):
        return "是 / 否" + ("，留空为是" if s is None else "")
    if s.values:
        return "、".join(s.values.values())
    if s.type == "date":
        return "日期，如 2025-10-15、2025/10/15、2025年10月15日"
    if s.unit == "元":
        return "金额（元），如 4200000、4,200万、1.5亿"
    if s.unit == "比例":
        return "0–1 的小数或百分数，如 0.92、92%"
    if s.type in ("int", "number"):
        return ("整数" if s.type == "int" else "数字") + (f"（{s.unit}）" if s.unit else "")
    return "文本"


def _choices(c: Column) -> list[str]:
    """The words a column of choices takes (是/否, or its field's values), for a drop-down."""
    s = c.spec
    if s is None or s.type in ("bool", "object"):
        return ["是", "否"]
    if s.values and len(",".join(s.values.values())) < 250:      # Excel's limit for a list
        return list(s.values.values())
    return []


def _column_help(c) -> str:
    """The note of a template column: its field's help, except where that speaks of the web
    form's choices (an object's held/not-held choice is a 是/否 column here)."""
    spec = c.spec
    if spec is None:
        return ""
    if spec.type == "object" and spec.false_means:
        return f"填“是”并在后面各列填写{'、'.join(f.label for f in spec.fields)}；{spec.false_means}的填“否”"
    return spec.help or ""


def template_bytes(registry: FieldRegistry, fmt: str = "xlsx") -> bytes:
    """The import template: one sheet per group with its headers, the example rows on the sheet
    填写示例 and every column explained on 说明 (CSV: the headers only)."""
    lay = layout(registry)
    if fmt == "csv":
        buf = io.StringIO(newline="")
        csv.writer(buf).writerow([c.header for c in lay.csv])
        return buf.getvalue().encode("utf-8-sig")
    wb = XlsxWriter()
    wb.remove(wb.active)
    head_font, head_fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    groups = (lay.enterprise, *lay.lists)
    for g in groups:
        ws = wb.create_sheet(g.sheet)
        ws.append([c.header for c in g.columns])
        for i, c in enumerate(g.columns, start=1):
            cell = ws.cell(row=1, column=i)
            cell.font = Font(bold=True, color="C00000" if c.required else "000000")
            cell.fill = head_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
            ws.column_dimensions[cell.column_letter].width = max(14, min(40, len(c.header) * 2))
            if c.spec is not None and c.spec.type in ("string", "date"):
                for r in range(2, 1001):
                    ws.cell(row=r, column=i).number_format = "@"  # keep codes and dates as text
            choices = _choices(c)
            if choices:         # a drop-down of the words the import reads (typing stays allowed)
                dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True,
                                    showErrorMessage=False, showInputMessage=True, promptTitle=c.header[:32],
                                    prompt=("可选：" + "、".join(choices))[:255])
                dv.add(f"{cell.column_letter}2:{cell.column_letter}1000")
                ws.add_data_validation(dv)
        ws.freeze_panes = "A2"
    ws = wb.create_sheet(SHEET_EXAMPLE)
    for g in groups:
        ws.append([f"工作表“{g.sheet}”的填写示例（本工作表不会导入）"])
        ws.cell(row=ws.max_row, column=1).font = head_font
        ws.append([c.header for c in g.columns])
        ws.append([_example(c, registry) for c in g.columns])
        ws.append([])
    ws = wb.create_sheet(SHEET_NOTES)
    for line in (
        "填写说明",
        f"1. “{lay.enterprise.sheet}”每行一家企业；"
        + "；".join(f"“{g.sheet}”每行一条{g.spec.item_label or g.spec.label}" for g in lay.lists)
        + "，以统一社会信用代码关联企业。",
        "2. 红色列名为必填项。留空表示“未知”，相关条件将判为“需补充信息”；“否”、0 表示确实没有。",
        "3. 某工作表存在即视为完整清单：企业在该表中没有行，表示没有此类记录。",
        f"4. “{SHEET_EXAMPLE}”和“{SHEET_NOTES}”工作表不会导入。同一文件重复导入不会产生重复申报。",
        "5. 使用 CSV 时，各工作表的列并排放在一张表中，每行最多一条记录，同一企业可占多行。",
        "",
    ):
        ws.append([line])
    ws.append(["工作表", "列名", "必填", "填写内容", "说明"])
    for c in range(1, 6):
        ws.cell(row=ws.max_row, column=c).font = head_font
    for g in groups:
        for c in g.columns:
            ws.append([g.sheet, c.header, "是" if c.required else "", _accepts(c), _column_help(c)])
    for letter, width in zip("ABCDE", (14, 40, 6, 40, 60)):
        ws.column_dimensions[letter].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
