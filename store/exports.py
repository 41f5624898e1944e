"""Award and decision lists as .xlsx and .csv (UTF-8 with BOM, so Excel reads the Chinese).

Spreadsheet injection: in .xlsx every text is written as a string cell (never a formula,
whatever it starts with); in .csv, which has no types, every field is quoted and a text that
a spreadsheet would read as a formula (= + - @ in half- or full-width, tab, CR) is prefixed
with an apostrophe. The .xlsx is written in streaming mode: linear in the number of rows.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from engine.vocabulary import STATUS
from store import rulesets
from store import windows as W
from store.awards import AwardList, grant_decisions, list_awards
from store.db import Database
from store.models import Decision

PROVISIONAL = "参考金额（未经正式文件确定）"
CHANNEL_NAMES = {"web": "网上申报", "import": "批量导入", "api": "接口"}
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")

AWARD_HEADERS = ["序号", "统一社会信用代码", "企业名称", "申报编号", "政策", "注册证编号", "管理类别", "来源",
                 "金额（元）", "金额性质", "申报渠道"]
DECISION_HEADERS = ["统一社会信用代码", "企业名称", "申报编号", "政策", "注册证编号", "规则引擎结论", "复核后结论",
                    "金额（元）", "金额性质"]


def neutralise(v: Any) -> Any:
    """A CSV field a spreadsheet will not read as a formula."""
    if isinstance(v, str) and v.startswith(_DANGEROUS):
        return "'" + v
    return v


def _labels(book, field: str) -> dict:
    spec = book.fields.field_at(f"device_registrations[0].{field}")
    return dict(spec.values) if spec else {}


def award_table(db: Database, window_id: str) -> tuple[str, list[list], list[list]]:
    al: AwardList = list_awards(db, window_id)
    book = rulesets.book_for(db, al.window.ruleset_version)     # the words of the rules that judged it
    classes, origins = _labels(book, "device_class"), _labels(book, "origin")
    rows = [[i, a.uscc, a.enterprise_name, a.application_id, a.title, a.subject_id if a.subject_id != a.uscc else "",
             classes.get(a.device_class, "未知"), origins.get(a.origin, "未知"), a.amount_cny,
             PROVISIONAL if a.amount_provisional else "正式金额", CHANNEL_NAMES.get(a.channel or "", a.channel or "")]
            for i, a in enumerate(al.awards, start=1)]
    t = al.totals
    totals = [["合计", "", "", "", "", "", "", "", t.amount_cny,
               f"其中参考金额 {t.provisional_count} 项" if t.provisional_count else "", f"{t.count} 项"]]
    totals += [[f"按管理类别：{classes.get(k, '未知')}", "", "", "", "", "", "", "", v["amount_cny"], "", f"{v['count']} 项"]
               for k, v in sorted(t.by_class.items())]
    totals += [[f"按来源：{origins.get(k, '未知')}", "", "", "", "", "", "", "", v["amount_cny"], "", f"{v['count']} 项"]
               for k, v in sorted(t.by_origin.items())]
    title = f"{al.window.label}（{al.window.id}）{'兑现名单' if al.final else '拟支持名单（批次尚未关闭）'}"
    return title, rows, totals


def decision_table(db: Database, window_id: str) -> tuple[str, list[list], list[list]]:
    with db.read_session() as s:
        w = W.get(s, window_id)
        titles = {b.id: b.spec.title for b in rulesets.book_for(db, w.ruleset_version).benefits.values()}
        engine_status = dict(s.execute(select(Decision.id, Decision.status).where(Decision.window_id == window_id)).all())
        rows, counts = [], {}
        for c in grant_decisions(s, window_id):
            counts[c.status] = counts.get(c.status, 0) + 1
            rows.append([c.uscc, c.enterprise_name, c.application_id, titles.get(c.benefit_id, c.benefit_id),
                         c.subject_id if c.subject_id != c.uscc else "",
                         STATUS.get(engine_status[c.decision_id], ""), STATUS.get(c.status, c.status), c.amount_cny,
                         (PROVISIONAL if c.amount_provisional else "正式金额") if c.amount_cny is not None else ""])
        totals = [[f"{STATUS.get(k, k)}：{v} 项"] for k, v in sorted(counts.items())]
        return f"{w.label}（{w.id}）资金支持判定结论", rows, totals


def csv_bytes(title: str, headers: list[str], rows: list[list], totals: list[list] = ()) -> bytes:
    buf = io.StringIO(newline="")
    wr = csv.writer(buf, quoting=csv.QUOTE_ALL)
    wr.writerow([neutralise(title)])
    wr.writerow(headers)
    wr.writerows([neutralise(v) for v in r] for r in rows)
    if totals:
        wr.writerow([])
        wr.writerows([neutralise(v) for v in r] for r in totals)
    return buf.getvalue().encode("utf-8-sig")


def xlsx_bytes(title: str, sheet: str, headers: list[str], rows: list[list], totals: list[list] = ()) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.freeze_panes = "A3"
    for i, h in enumerate(headers):
        ws.column_dimensions[get_column_letter(i + 1)].width = max(12, len(h) * 2 + 4)

    def cell(v: Any, **style) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value=v)
        if isinstance(v, str):
            c.data_type = "s"        # text, never a formula
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            c.number_format = "#,##0.00" if isinstance(v, float) or style.pop("money", False) else "0"
        for k, val in style.items():
            setattr(c, k, val)
        return c

    ws.append([cell(title, font=Font(bold=True, size=14))])
    ws.append([cell(h, font=Font(bold=True), fill=PatternFill("solid", fgColor="DDEBF7")) for h in headers])
    red = Font(color="C00000")
    for r in rows:
        ws.append([cell(v, font=red) if v == PROVISIONAL else cell(v) for v in r])
    if totals:
        ws.append([])
        for r in totals:
            ws.append([cell(v, font=Font(bold=True)) if i == 0 else cell(v) for i, v in enumerate(r)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _export(table: tuple[str, list[list], list[list]], sheet: str, headers: list[str], fmt: str) -> bytes:
    title, rows, totals = table
    if fmt == "csv":
        return csv_bytes(title, headers, rows, totals)
    if fmt == "xlsx":
        return xlsx_bytes(title, sheet, headers, rows, totals)
    raise ValueError(f"不支持的导出格式：{fmt}（应为 xlsx 或 csv）")


def export_awards(db: Database, window_id: str, fmt: str = "xlsx") -> bytes:
    return _export(award_table(db, window_id), "拟支持名单", AWARD_HEADERS, fmt)


def export_decisions(db: Database, window_id: str, fmt: str = "xlsx") -> bytes:
    return _export(decision_table(db, window_id), "判定结论", DECISION_HEADERS, fmt)
