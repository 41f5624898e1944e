"""Award and decision lists as .xlsx and .csv (UTF-8 with BOM, so Excel reads the Chinese).

Spreadsheet injection: in .xlsx every text is written as a string cell (never a formula,
whatever it starts with); in .csv, which has no types, every field is quoted and a text that
a spreadsheet would read as a formula (= + - @ in half- or full-width, tab, CR) is prefixed
with an apostrophe. The .xlsx is written in streaming mode: linear in the number of rows.

Money is whole yuan as an integer, else two decimals (500000, 500000.50): never a float's
repr. Totals follow the list as a small table of their own (what, 项数, 金额).
"""
from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from engine.vocabulary import CHANNEL, STATUS
from store import rulesets
from store import windows as W
from store.awards import AwardList, grant_decisions, list_awards
from store.decisions import plain
from store.db import Database
from store.models import Evaluation, Review

PROVISIONAL = "参考金额（未经正式文件确定）"
REVIEWED = "复核确定（规则未给出金额）"


def _amount_kind(a) -> str:
    """金额性质 of an award or a decision's amount."""
    return REVIEWED if a.amount_reviewed else PROVISIONAL if a.amount_provisional else "正式金额"


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")

AWARD_HEADERS = ["序号", "统一社会信用代码", "企业名称", "申报编号", "事项", "注册证编号", "管理类别", "来源",
                 "金额（元）", "金额性质", "申报渠道"]
DECISION_HEADERS = ["统一社会信用代码", "企业名称", "申报编号", "事项", "注册证编号", "规则判定", "复核后结论",
                    "金额（元）", "金额性质", "复核理由", "复核人"]
AWARD_TOTAL_HEADERS = ["汇总", "项数", "金额（元）", "说明"]
DECISION_TOTAL_HEADERS = ["复核后结论", "项数"]
AWARDS_SHEET, PROPOSED_SHEET = "兑现名单", "拟支持名单"


def money(v: Any) -> int | float | None:
    """An amount as exported: whole yuan as an int, else the float of its two decimals."""
    if v is None:
        return None
    return plain(Decimal(str(v)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _csv_text(v: Any) -> Any:
    """A number as a CSV field: an integer, or two decimals (never 500000.0)."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.2f}"
    if isinstance(v, Decimal):
        return _csv_text(float(v))
    return v


def neutralise(v: Any) -> Any:
    """A CSV field a spreadsheet will not read as a formula."""
    if isinstance(v, str) and v.startswith(_DANGEROUS):
        return "'" + v
    return v


def _labels(book, field: str) -> dict:
    spec = book.fields.field_at(f"device_registrations[0].{field}")
    return dict(spec.values) if spec else {}


def award_table(db: Database, window_id: str) -> tuple[str, list[list], list[list]]:
    """(title, rows, totals): the award list (兑现名单 once closed, else 拟支持名单) and its
    totals, each total row under AWARD_TOTAL_HEADERS."""
    return _award_table(list_awards(db, window_id), db)


def _award_table(al: AwardList, db: Database) -> tuple[str, list[list], list[list]]:
    book = rulesets.book_for(db, al.window.ruleset_version)     # the words of the rules that judged it
    classes, origins = _labels(book, "device_class"), _labels(book, "origin")
    rows = [[i, a.uscc, a.enterprise_name, a.application_id, a.title, a.subject_id if a.subject_id != a.uscc else "",
             classes.get(a.device_class, "未知"), origins.get(a.origin, "未知"), money(a.amount_cny),
             _amount_kind(a), CHANNEL.get(a.channel or "", a.channel or "")]
            for i, a in enumerate(al.awards, start=1)]
    t = al.totals
    totals = [["合计", t.count, money(t.amount_cny),
               f"其中参考金额 {t.provisional_count} 项" if t.provisional_count else ""]]
    totals += [[f"按管理类别：{classes.get(k, '未知')}", v["count"], money(v["amount_cny"]), ""]
               for k, v in sorted(t.by_class.items())]
    totals += [[f"按来源：{origins.get(k, '未知')}", v["count"], money(v["amount_cny"]), ""]
               for k, v in sorted(t.by_origin.items())]
    title = f"{al.window.label}（{al.window.id}）{'兑现名单' if al.final else '拟支持名单（批次尚未关闭）'}"
    return title, rows, totals


def decision_table(db: Database, window_id: str) -> tuple[str, list[list], list[list]]:
    """(title, rows, totals): every claimed grant decision with the engine's and the reviewed
    verdict; the amount only where the reviewed verdict can still pay. Totals count the
    reviewed verdicts (DECISION_TOTAL_HEADERS)."""
    with db.read_session() as s:
        w = W.get(s, window_id)
        titles = {b.id: b.spec.title for b in rulesets.book_for(db, w.ruleset_version).benefits.values()}
        reviews = {}            # (application, benefit, subject) → the latest review's reason and reviewer
        for app, b, sub, reason, actor in s.execute(
                select(Review.application_id, Review.benefit_id, Review.subject_id, Review.reason, Review.actor)
                .join(Evaluation, Evaluation.id == Review.evaluation_id)
                .where(Evaluation.window_id == window_id).order_by(Review.id)):
            reviews[(app, b, sub)] = [reason or "", actor]
        rows, counts = [], {}
        for c in grant_decisions(s, window_id):
            counts[c.status] = counts.get(c.status, 0) + 1
            amount = None if c.status == "ineligible" else money(c.amount_cny)   # reviewed to 不符合条件: nothing
            rows.append([c.uscc, c.enterprise_name, c.application_id, titles.get(c.benefit_id, c.benefit_id),
                         c.subject_id if c.subject_id != c.uscc else "",
                         STATUS.get(c.engine_status, ""), STATUS.get(c.status, c.status), amount,
                         _amount_kind(c) if amount is not None else "",
                         *reviews.get((c.application_id, c.benefit_id, "" if c.subject_id == c.uscc else c.subject_id),
                                      ["", ""])])
        totals = [[STATUS.get(k, k), v] for k, v in sorted(counts.items())]
        return f"{w.label}（{w.id}）资金支持判定结论", rows, totals


def csv_bytes(title: str, headers: list[str], rows: list[list], totals: list[list] = (),
              total_headers: list[str] = ()) -> bytes:
    buf = io.StringIO(newline="")
    wr = csv.writer(buf, quoting=csv.QUOTE_ALL)
    wr.writerow([neutralise(title)])
    wr.writerow(headers)
    wr.writerows([neutralise(_csv_text(v)) for v in r] for r in rows)
    if totals:
        wr.writerow([])
        if total_headers:
            wr.writerow(total_headers)
        wr.writerows([neutralise(_csv_text(v)) for v in r] for r in totals)
    return buf.getvalue().encode("utf-8-sig")


def _width(v: Any) -> int:
    text = v if isinstance(v, str) else f"{v:,}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def xlsx_bytes(title: str, sheet: str, headers: list[str], rows: list[list], totals: list[list] = (),
               total_headers: list[str] = ()) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.freeze_panes = "A3"
    # printed: landscape, as wide as the page, the column names on every page
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "2:2"
    # each column as wide as its header and its widest value in the first rows (a CJK
    # character is two), so that names and 事项 are not cut off; at most 60
    for i, h in enumerate(headers):
        seen = [h] + [r[i] for r in [*rows[:500], *totals, total_headers] if i < len(r) and r[i] is not None]
        ws.column_dimensions[get_column_letter(i + 1)].width = min(60, max(8, max(map(_width, seen)) + 2))
    money_columns = {i for i, h in enumerate(headers) if "元" in h}
    money_totals = {i for i, h in enumerate(total_headers) if "元" in h}

    def cell(v: Any, money: bool = False, **style) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value=v)
        if isinstance(v, str):
            c.data_type = "s"        # text, never a formula
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            # amounts with thousands separators; counts and 序号 as plain numbers
            c.number_format = "#,##0.00" if isinstance(v, float) else "#,##0" if money else "0"
        for k, val in style.items():
            setattr(c, k, val)
        return c

    ws.append([cell(title, font=Font(bold=True, size=14))])
    ws.append([cell(h, font=Font(bold=True), fill=PatternFill("solid", fgColor="DDEBF7")) for h in headers])
    red = Font(color="C00000")
    for r in rows:
        ws.append([cell(v, i in money_columns, font=red) if v == PROVISIONAL else cell(v, i in money_columns)
                   for i, v in enumerate(r)])
    if totals:
        ws.append([])
        if total_headers:
            ws.append([cell(h, font=Font(bold=True)) for h in total_headers])
        for r in totals:
            ws.append([cell(v, font=Font(bold=True)) if i == 0 else cell(v, i in money_totals) for i, v in enumerate(r)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _export(table: tuple[str, list[list], list[list]], sheet: str, headers: list[str], total_headers: list[str],
            fmt: str) -> bytes:
    title, rows, totals = table
    if fmt == "csv":
        return csv_bytes(title, headers, rows, totals, total_headers)
    if fmt == "xlsx":
        return xlsx_bytes(title, sheet, headers, rows, totals, total_headers)
    raise ValueError(f"不支持的导出格式：{fmt}（应为 xlsx 或 csv）")


def export_awards(db: Database, window_id: str, fmt: str = "xlsx") -> bytes:
    al = list_awards(db, window_id)
    return _export(_award_table(al, db), AWARDS_SHEET if al.final else PROPOSED_SHEET, AWARD_HEADERS,
                   AWARD_TOTAL_HEADERS, fmt)


def awards_filename(db: Database, window_id: str, ext: str) -> str:
    """The award list's file name: 兑现名单 once the window closed, 拟支持名单 before."""
    with db.read_session() as s:
        closed = W.get(s, window_id).state == "closed"
    return f"{AWARDS_SHEET if closed else PROPOSED_SHEET}-{window_id}.{ext}"


def export_decisions(db: Database, window_id: str, fmt: str = "xlsx") -> bytes:
    return _export(decision_table(db, window_id), "判定结论", DECISION_HEADERS, DECISION_TOTAL_HEADERS, fmt)
