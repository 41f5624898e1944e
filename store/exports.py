"""Award and decision lists as .xlsx and .csv (UTF-8 with BOM, so Excel reads the Chinese).

Every text cell that a spreadsheet would read as a formula (starting with = + - @, tab or CR)
is prefixed with an apostrophe.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from store.db import Database
from store.windows import STATUS_NAMES, list_awards, list_decisions, totals_of

CLASS_NAMES = {"I": "第一类", "II": "第二类", "III": "第三类", "unknown": "未知"}
ORIGIN_NAMES = {"self_developed": "自主研发", "introduced": "引进", "unknown": "未知"}
CHANNEL_NAMES = {"web": "网上申报", "import": "批量导入", "api": "接口", "proactive": "免申即享"}
PROVISIONAL = "参考金额（未经正式文件确定）"
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(v: Any) -> Any:
    if isinstance(v, str) and v.startswith(_DANGEROUS):
        return "'" + v
    return v


def _benefit_titles(db: Database, window_id: str) -> dict[str, str]:
    """Benefit titles as the decisions' own results state them."""
    from sqlalchemy import distinct, select

    from store.models import Decision

    out = {}
    with db.read_session() as s:
        for b in s.scalars(select(distinct(Decision.benefit_id)).where(Decision.window_id == window_id)):
            tr = s.scalar(select(Decision.trace).where(Decision.window_id == window_id,
                                                       Decision.benefit_id == b).limit(1))
            out[b] = (tr or {}).get("title") or b
    return out


AWARD_HEADERS = ["序号", "统一社会信用代码", "企业名称", "申报编号", "政策", "证书编号", "管理类别",
                 "来源", "金额（元）", "金额性质", "申报渠道"]
DECISION_HEADERS = ["统一社会信用代码", "企业名称", "申报编号", "政策", "证书编号", "结论",
                    "金额（元）", "金额性质", "规则版本"]


def award_table(db: Database, window_id: str) -> tuple[str, list[list], list[list]]:
    w, awards, final = list_awards(db, window_id)
    titles = _benefit_titles(db, window_id)
    rows = []
    for i, a in enumerate(awards, start=1):
        rows.append([
            i, a["uscc"], a["enterprise_name"], a["application_id"],
            titles.get(a["benefit_id"], a["benefit_id"]),
            a["subject_id"] if a.get("subject_type") == "certificate" else "",
            CLASS_NAMES.get(a.get("device_class") or "unknown", a.get("device_class")),
            ORIGIN_NAMES.get(a.get("origin") or "unknown", a.get("origin")),
            a["amount_cny"], PROVISIONAL if a["amount_provisional"] else "正式金额",
            CHANNEL_NAMES.get(a.get("channel"), a.get("channel")),
        ])
    t = totals_of(awards)
    totals = [["合计", "", "", "", "", "", "", "", t["amount_cny"],
               f"其中参考金额 {t['provisional_count']} 项" if t["provisional_count"] else "", f"{t['count']} 项"]]
    for k, v in sorted(t["by_class"].items()):
        totals.append([f"按管理类别：{CLASS_NAMES.get(k, k)}", "", "", "", "", "", "", "", v["amount_cny"], "", f"{v['count']} 项"])
    for k, v in sorted(t["by_origin"].items()):
        totals.append([f"按来源：{ORIGIN_NAMES.get(k, k)}", "", "", "", "", "", "", "", v["amount_cny"], "", f"{v['count']} 项"])
    title = f"{w['label']}（{w['id']}）{'兑现名单' if final else '拟兑现名单（预览，窗口尚未关闭）'}"
    return title, rows, totals


def decision_table(db: Database, window_id: str) -> tuple[str, list[list], list[list]]:
    from store.windows import get_window

    w = get_window(db, window_id)
    titles = _benefit_titles(db, window_id)
    rows = []
    counts: dict[str, int] = {}
    for d in list_decisions(db, window_id):
        counts[d["status"]] = counts.get(d["status"], 0) + 1
        rows.append([
            d["uscc"], d["enterprise_name"], d["application_id"],
            titles.get(d["benefit_id"], d["benefit_id"]),
            d["subject"]["id"] if d["subject"] else "",
            STATUS_NAMES.get(d["status"], d["status"]), d["amount_cny"],
            (PROVISIONAL if d["amount_provisional"] else "正式金额") if d["amount_cny"] is not None else "",
            d["ruleset_version"],
        ])
    totals = [[f"{STATUS_NAMES.get(k, k)}：{v} 项"] for k, v in sorted(counts.items())]
    return f"{w['label']}（{w['id']}）评估结论", rows, totals


def _csv(title: str, headers: list[str], rows: list[list], totals: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    wr = csv.writer(buf)
    wr.writerow([neutralise(title)])
    wr.writerow(headers)
    for r in rows:
        wr.writerow([neutralise(v) for v in r])
    wr.writerow([])
    for r in totals:
        wr.writerow([neutralise(v) for v in r])
    return buf.getvalue().encode("utf-8-sig")


def _xlsx(title: str, sheet: str, headers: list[str], rows: list[list], totals: list[list]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([neutralise(title)])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(headers)
    for c in ws[2]:
        c.font = Font(bold=True)
        c.fill = PatternFill("solid", fgColor="DDEBF7")
    amount_col = headers.index("金额（元）") + 1 if "金额（元）" in headers else None
    basis_col = headers.index("金额性质") + 1 if "金额性质" in headers else None
    for r in rows:
        ws.append([neutralise(v) for v in r])
        if basis_col and r[basis_col - 1] == PROVISIONAL:
            ws.cell(row=ws.max_row, column=basis_col).font = Font(color="C00000")
    ws.append([])
    for r in totals:
        ws.append([neutralise(v) for v in r])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    if amount_col:
        for row in ws.iter_rows(min_row=3, min_col=amount_col, max_col=amount_col):
            for c in row:
                if isinstance(c.value, (int, float)):
                    c.number_format = "#,##0.00"
    for i, h in enumerate(headers, start=1):
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = max(12, len(h) * 2 + 4)
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _export(table: tuple[str, list[list], list[list]], sheet: str, headers: list[str], fmt: str) -> bytes:
    title, rows, totals = table
    if fmt == "csv":
        return _csv(title, headers, rows, totals)
    if fmt == "xlsx":
        return _xlsx(title, sheet, headers, rows, totals)
    raise ValueError(f"不支持的导出格式：{fmt}（应为 xlsx 或 csv）")


def export_awards(db: Database, window_id: str, fmt: str = "xlsx") -> bytes:
    return _export(award_table(db, window_id), "兑现名单", AWARD_HEADERS, fmt)


def export_decisions(db: Database, window_id: str, fmt: str = "xlsx") -> bytes:
    return _export(decision_table(db, window_id), "评估结论", DECISION_HEADERS, fmt)
