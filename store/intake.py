"""Spreadsheet intake (.xlsx / .csv): the import template, parsing with a row-level report,
and the import itself (all-or-nothing unless skip_invalid).

An .xlsx file has up to three sheets: 企业信息 (one row per enterprise), 注册证 (one row per
certificate, linked by 统一社会信用代码) and 违法违规记录 (optional). A .csv file is one table
with the same columns side by side: each row carries enterprise columns, and optionally one
certificate and/or one violation; rows with the same USCC are merged.

A sheet that is present means "this is the complete list": an enterprise with no certificate
rows has ``device_registrations: []``. An absent sheet (or absent CSV columns) means unknown.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Optional

from store.db import Database
from store.errors import RowProblem, ValidationFailed

SHEET_ENT = "企业信息"
SHEET_CERT = "注册证"
SHEET_VIOL = "违法违规记录"
CSV_SHEET = "CSV"

_TRUE = {"是", "有", "y", "yes", "true", "1", "√", "✓", "t"}
_FALSE = {"否", "无", "n", "no", "false", "0", "×", "f"}

TAX_COLLECTION = {"查账征收": "audit", "核定征收": "deemed", "audit": "audit", "deemed": "deemed"}
ORIGIN = {"自主研发": "self_developed", "引进": "introduced", "self_developed": "self_developed",
          "introduced": "introduced"}
DEVICE_CLASS = {"I": "I", "II": "II", "III": "III", "1": "I", "2": "II", "3": "III",
                "第一类": "I", "第二类": "II", "第三类": "III", "一类": "I", "二类": "II",
                "三类": "III", "Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅰ类": "I", "Ⅱ类": "II",
                "Ⅲ类": "III", "I类": "I", "II类": "II", "III类": "III"}
VIOLATION_KIND = {"偷税": "tax_evasion", "骗取留抵退税": "refund_fraud",
                  "骗取出口退税": "export_refund_fraud", "虚开增值税专用发票": "false_vat_invoice",
                  "市场监管轻微违法": "market_minor", "其他": "other"}
VIOLATION_KIND.update({v: v for v in list(VIOLATION_KIND.values())})
RATINGS = {"A": "A", "B": "B", "M": "M", "C": "C", "D": "D"}


@dataclass(frozen=True)
class Col:
    field: str
    header: str
    kind: str  # str bool date int money share enum uscc
    required: bool = False
    choices: Optional[dict] = None
    example: Any = None
    note: str = ""


ENT_COLS = [
    Col("uscc", "统一社会信用代码", "uscc", True, example="91512000MA62XY001U"),
    Col("name", "企业名称", "str", True, example="资阳示例口腔医疗器械有限公司"),
    Col("in_park", "注册地在资阳高新区（是/否）", "bool", example="是"),
    Col("industry_code", "国民经济行业分类代码", "str", example="C3589"),
    Col("established_on", "成立日期", "date", example="2019-05-20"),
    Col("tax_collection", "企业所得税征收方式（查账征收/核定征收）", "enum", choices=TAX_COLLECTION, example="查账征收"),
    Col("employees_avg", "全年季度平均从业人数", "int", example=86),
    Col("total_assets_avg_cny", "全年季度平均资产总额（元）", "money", example=32000000),
    Col("taxable_income_cny", "年度应纳税所得额（元）", "money", example=1800000),
    Col("restricted_industry", "从事国家限制或禁止行业（是/否）", "bool", example="否"),
    Col("rd_excluded_industry", "属研发费用加计扣除负面清单行业（是/否）", "bool", example="否"),
    Col("rd_expense_cny", "当年研发费用（元）", "money", example=2500000),
    Col("four_industries_sales_share", "四类行业增值税销售额占比（0–1）", "share", example=0.95),
    Col("vat_credit_positive_months", "连续期末留抵税额大于零的月数", "int", example=6),
    Col("vat_credit_increase_cny", "新增留抵税额（元）", "money", example=120000),
    Col("tax_credit_rating", "纳税信用级别（A/B/M/C/D）", "enum", choices=RATINGS, example="A"),
    Col("immediate_refund_since_2019_04", "2019年4月起享受过即征即退或先征后返（是/否）", "bool", example="否"),
    Col("hnte_held", "持有高新技术企业证书（是/否）", "bool", example="是"),
    Col("hnte_number", "高新技术企业证书编号", "str", example="GR202451000123"),
    Col("hnte_issued_on", "高新技术企业证书发证日期", "date", example="2024-12-06"),
    Col("western_encouraged_share", "西部鼓励类产业主营业务收入占比（0–1）", "share", example=0.8),
    Col("export_refund_class", "出口退（免）税企业分类（0–4，0=非出口企业）", "int", example=0),
    Col("on_serious_dishonest_list", "被列入严重失信主体名单（是/否）", "bool", example="否"),
]
CERT_COLS = [
    Col("uscc", "统一社会信用代码", "uscc", True, example="91512000MA62XY001U"),
    Col("certificate_no", "注册证编号", "str", True, example="川械注准20252170031"),
    Col("product_name", "产品名称", "str", example="无托槽隐形矫治器"),
    Col("device_class", "管理类别（第一类/第二类/第三类）", "enum", choices=DEVICE_CLASS, example="第二类"),
    Col("origin", "来源（自主研发/引进）", "enum", choices=ORIGIN, example="自主研发"),
    Col("obtained_on", "取得日期", "date", example="2025-10-15"),
    Col("innovative", "创新医疗器械（是/否）", "bool", example="否"),
    Col("claimed", "本次申报（是/否，留空为是）", "bool", example="是"),
]
VIOL_COLS = [
    Col("uscc", "统一社会信用代码", "uscc", True, example="91512000MA62XY001U"),
    Col("kind", "类型（偷税/骗取留抵退税/骗取出口退税/虚开增值税专用发票/市场监管轻微违法/其他）",
        "enum", True, choices=VIOLATION_KIND, example="市场监管轻微违法"),
    Col("decided_on", "处罚或认定日期", "date", example="2024-06-01"),
    Col("description", "说明", "str", example="标签标识不规范，已整改"),
]
# CSV: certificate/violation columns that share a header with the enterprise sheet are
# read once (统一社会信用代码).
CSV_CERT_COLS = [replace(c, required=False) for c in CERT_COLS if c.field != "uscc"]
CSV_VIOL_COLS = [Col("kind", "违法违规类型", "enum", choices=VIOLATION_KIND, example=""),
                 Col("decided_on", "违法违规处罚或认定日期", "date", example=""),
                 Col("description", "违法违规说明", "str", example="")]


def _norm_header(h: Any) -> str:
    return re.sub(r"\s+", "", str(h or "")).replace("(", "（").replace(")", "）").replace("-", "–")


def _header_index(cols: list[Col]) -> dict[str, Col]:
    idx = {}
    for c in cols:
        idx[_norm_header(c.header)] = c
        idx[_norm_header(c.header.split("（")[0])] = c  # header without the hint in brackets
        idx[c.field] = c
    return idx


# --- cell parsing --------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def _cell(c: Col, v: Any) -> Any:
    """Parse one cell; return the value (None for blank) or raise ValueError(Chinese)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, str):
        v = v.strip()
    k = c.kind
    if k in ("str", "uscc"):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        s = str(v)
        if k == "uscc":
            from engine.uscc import validate_uscc

            return validate_uscc(s)
        return s
    if k == "bool":
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ValueError(f"应填“是”或“否”，不能是“{v}”")
    if k == "date":
        if isinstance(v, datetime):
            if v.time() != datetime.min.time():
                raise ValueError(f"应为日期，不能带时间：{v}")
            return v.date().isoformat()
        if isinstance(v, date):
            return v.isoformat()
        m = _DATE_RE.match(str(v))
        if not m:
            raise ValueError(f"无法识别的日期“{v}”，应为 YYYY-MM-DD（例如 2025-10-15）")
        try:
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            raise ValueError(f"不存在的日期“{v}”") from None
    if k in ("int", "money", "share"):
        if isinstance(v, bool):
            raise ValueError(f"应为数字，不能是“{v}”")
        pct = False
        if isinstance(v, str):
            s = v.replace(",", "").replace("，", "").replace("元", "").strip()
            if s.endswith("%") and k == "share":
                s, pct = s[:-1].strip(), True
            try:
                num = float(s)
            except ValueError:
                raise ValueError(f"应为数字，不能是“{v}”") from None
        else:
            num = float(v)
        if num != num or num in (float("inf"), float("-inf")):
            raise ValueError(f"应为有限的数字，不能是“{v}”")
        if pct:
            num /= 100
        if k == "int":
            if not num.is_integer():
                raise ValueError(f"应为整数，不能是“{v}”")
            return int(num)
        if k == "money":
            r = round(num, 2)
            if abs(r - num) > 1e-9:
                raise ValueError(f"金额最多保留两位小数：“{v}”")
            return int(r) if r.is_integer() else r
        return num
    if k == "enum":
        key = str(v).strip()
        if isinstance(v, float) and v.is_integer():
            key = str(int(v))
        for cand in (key, key.upper(), key.lower()):
            if cand in c.choices:
                return c.choices[cand]
        options = "、".join(dict.fromkeys(k2 for k2 in c.choices if not k2.isascii() or k2.isupper()))
        raise ValueError(f"取值“{v}”无效，应为以下之一：{options}")
    raise AssertionError(k)


# --- reading files ---------------------------------------------------------------------


@dataclass
class Table:
    sheet: str
    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (row number as shown, cells)


def _read_csv(data: bytes) -> list[Table]:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValidationFailed([RowProblem("文件编码无法识别，请另存为 UTF-8 编码的 CSV", sheet=CSV_SHEET)])
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = list(reader)
    if not rows:
        raise ValidationFailed([RowProblem("文件为空", sheet=CSV_SHEET)])
    return [Table(CSV_SHEET, rows[0], [(i, r) for i, r in enumerate(rows[1:], start=2)])]


def _read_xlsx(data: bytes) -> list[Table]:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise ValidationFailed([RowProblem(f"不是有效的 Excel（.xlsx）文件：{e}")]) from None
    out = []
    try:
        for ws in wb.worksheets:
            it = ws.iter_rows(values_only=True)
            header = next(it, None)
            if header is None:
                continue
            rows = [(i, list(r)) for i, r in enumerate(it, start=2)]
            out.append(Table(ws.title.strip(), [("" if h is None else str(h)) for h in header], rows))
    finally:
        wb.close()
    return out


# --- assembling profiles ------------------------------------------------------------------


@dataclass
class _Ent:
    uscc: str
    fields: dict
    refs: dict  # field → (sheet, row, header)
    row: tuple  # (sheet, row) of its first row
    certs: list = field(default_factory=list)  # (fields, refs, (sheet,row))
    viols: list = field(default_factory=list)
    bad: bool = False


@dataclass
class ParsedFile:
    enterprises: list[_Ent]
    problems: list[RowProblem]
    rows: int
    has_certs: bool
    has_viols: bool


def _map_header(t: Table, cols: list[Col], problems: list[RowProblem], extra: list[Col] = ()) -> dict[int, Col]:
    idx = _header_index(list(cols) + list(extra))
    mapping: dict[int, Col] = {}
    seen: dict[str, str] = {}
    for i, h in enumerate(t.header):
        nh = _norm_header(h)
        if not nh:
            if any(i < len(r) and r[i] not in (None, "") for _, r in t.rows):
                problems.append(RowProblem("该列有数据但没有列名", sheet=t.sheet, row=1,
                                           column=f"第{i + 1}列"))
            continue
        c = idx.get(nh)
        if c is None:
            problems.append(RowProblem("无法识别的列名（请使用导入模板中的列名）", sheet=t.sheet, row=1, column=str(h)))
            continue
        if c.field in seen:
            problems.append(RowProblem(f"列重复（与“{seen[c.field]}”相同）", sheet=t.sheet, row=1, column=str(h)))
            continue
        seen[c.field] = nh
        mapping[i] = c
    have = {c.field for c in mapping.values()}
    for c in cols:
        if c.required and c.field not in have:
            problems.append(RowProblem("缺少必需的列", sheet=t.sheet, row=1, column=c.header))
    return mapping


_MEMO_LIMIT = 4096
_memo: dict[tuple, Any] = {}


def _cell_memo(c: Col, raw: Any) -> Any:
    """_cell, remembered for repeated cells (是/否, dates, codes, enums repeat in every row).
    Keyed by type too: True == 1 == 1.0 must not share an entry. Identifiers (uscc,
    free text) are unique per row and not worth remembering."""
    if c.kind in ("uscc", "str"):
        return _cell(c, raw)
    key = (c.kind, id(c.choices), type(raw), raw)  # choices: module-level tables
    try:
        return _memo[key]
    except KeyError:
        pass
    except TypeError:  # unhashable cell value
        return _cell(c, raw)
    v = _cell(c, raw)  # errors are not remembered: each bad cell is reported
    if len(_memo) < _MEMO_LIMIT:
        _memo[key] = v
    return v


class _RowRefs:
    """Where each field of one row came from: refs[field] == (sheet, row, column header).
    One small object per row instead of a tuple per cell (a 100,000-row import keeps them
    all until every row is checked)."""

    __slots__ = ("sheet", "row", "headers")

    def __init__(self, sheet: str, row: int, headers: dict[str, str]):
        self.sheet, self.row, self.headers = sheet, row, headers

    def __getitem__(self, field: str) -> tuple:
        return self.sheet, self.row, self.headers[field]

    def get(self, field: str, default=None):
        h = self.headers.get(field)
        return default if h is None else (self.sheet, self.row, h)


class _EntRefs(dict):
    """field → the _RowRefs of the row that supplied it; reads give (sheet, row, header)."""

    def __getitem__(self, field: str) -> tuple:
        return dict.__getitem__(self, field)[field]

    def get(self, field: str, default=None):
        r = dict.get(self, field)
        return default if r is None else r[field]


def _headers(t: Table, mapping: dict[int, Col]) -> dict[str, str]:
    cache = t.__dict__.setdefault("_headers", {})
    h = cache.get(id(mapping))
    if h is None:
        h = cache[id(mapping)] = {c.field: t.header[i] for i, c in mapping.items()}
    return h


def _drain(t: Table):
    """The rows of a table, each released once handled."""
    rows, t.rows = t.rows, []
    rows.reverse()
    while rows:
        yield rows.pop()


def _row_values(t: Table, r: list, mapping: dict[int, Col], rowno: int, problems: list) -> tuple[dict, _RowRefs, bool]:
    vals, ok = {}, True
    refs = _RowRefs(t.sheet, rowno, _headers(t, mapping))
    for i, c in mapping.items():
        raw = r[i] if i < len(r) else None
        try:
            v = _cell_memo(c, raw)
        except ValueError as e:
            problems.append(RowProblem(str(e), sheet=t.sheet, row=rowno, column=t.header[i]))
            ok = False
            continue
        if v is None and c.required:
            problems.append(RowProblem("必填，不能为空", sheet=t.sheet, row=rowno, column=t.header[i]))
            ok = False
        vals[c.field] = v
    return vals, refs, ok


def _blank(r: list) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in r)


def parse_file(data: bytes, filename: str) -> ParsedFile:
    """Read and check a file; every problem is collected, nothing is stored."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        tables = _read_csv(data)
    elif suffix in (".xlsx", ".xlsm"):
        tables = _read_xlsx(data)
    else:
        raise ValidationFailed([RowProblem(f"不支持的文件类型“{suffix or filename}”，请上传 .xlsx 或 .csv 文件")])
    problems: list[RowProblem] = []
    ents: dict[str, _Ent] = {}
    certs_seen: dict[str, tuple] = {}
    nrows = 0

    def add_ent(vals, refs, where, ok, merge=False):
        u = vals.get("uscc")
        if u is None:
            return None
        e = ents.get(u)
        if e is None:
            e = ents[u] = _Ent(u, {}, _EntRefs(), where)
        elif not merge:
            problems.append(RowProblem(f"统一社会信用代码 {u} 与第{e.row[1]}行重复", sheet=where[0],
                                       row=where[1], column=refs["uscc"][2]))
            e.bad = True
            return e
        for k, v in vals.items():
            if v is None:
                continue
            if k in e.fields and e.fields[k] != v:
                problems.append(RowProblem(f"与第{e.refs[k][1]}行同一企业的取值不一致（“{e.fields[k]}”）",
                                           sheet=where[0], row=where[1], column=refs[k][2]))
                e.bad = True
                continue
            e.fields[k] = v
            dict.__setitem__(e.refs, k, refs)
        if not ok:
            e.bad = True
        return e

    def add_cert(e: Optional[_Ent], vals, refs, where, ok):
        no = vals.get("certificate_no")
        if no is not None:
            if no in certs_seen:
                problems.append(RowProblem(f"注册证编号 {no} 与第{certs_seen[no][1]}行重复",
                                           sheet=where[0], row=where[1], column=refs["certificate_no"][2]))
                ok = False
            else:
                certs_seen[no] = where
        if e is not None:
            e.certs.append((vals, refs, where))
            if not ok:
                e.bad = True

    has_certs = has_viols = False
    by_name = {t.sheet: t for t in tables}
    if suffix == ".csv":
        t = tables[0]
        mapping = _map_header(t, ENT_COLS, problems, CSV_CERT_COLS + CSV_VIOL_COLS)
        fields = {c.field for c in mapping.values()}
        has_certs = "certificate_no" in fields
        has_viols = "kind" in fields
        ent_fields = {c.field for c in ENT_COLS}
        cert_fields = {c.field for c in CSV_CERT_COLS}
        viol_fields = {c.field for c in CSV_VIOL_COLS}
        if not any(p.row == 1 and p.message == "缺少必需的列" for p in problems):
            for rowno, r in _drain(t):
                if _blank(r):
                    continue
                nrows += 1
                vals, refs, ok = _row_values(t, r, mapping, rowno, problems)
                where = (t.sheet, rowno)
                ev = {k: v for k, v in vals.items() if k in ent_fields}
                e = add_ent(ev, refs, where, ok, merge=True)
                cv = {k: v for k, v in vals.items() if k in cert_fields}
                if any(v is not None for v in cv.values()):
                    if cv.get("certificate_no") is None:
                        problems.append(RowProblem("填写了注册证信息但缺少注册证编号", sheet=t.sheet, row=rowno,
                                                   column=next(c.header for c in CSV_CERT_COLS if c.field == "certificate_no")))
                        if e:
                            e.bad = True
                    else:
                        add_cert(e, cv, refs, where, True)
                vv = {k: v for k, v in vals.items() if k in viol_fields}
                if any(v is not None for v in vv.values()):
                    if vv.get("kind") is None:
                        problems.append(RowProblem("填写了违法违规信息但缺少类型", sheet=t.sheet, row=rowno,
                                                   column=CSV_VIOL_COLS[0].header))
                        if e:
                            e.bad = True
                    elif e:
                        e.viols.append((vv, refs, where))
    else:
        t = by_name.get(SHEET_ENT)
        if t is None:
            problems.append(RowProblem(f"缺少工作表“{SHEET_ENT}”（请使用导入模板）", sheet=SHEET_ENT))
        for other in tables:
            if other.sheet not in (SHEET_ENT, SHEET_CERT, SHEET_VIOL, "说明"):
                problems.append(RowProblem("无法识别的工作表（应为 企业信息、注册证、违法违规记录）", sheet=other.sheet))
        if t is not None:
            mapping = _map_header(t, ENT_COLS, problems)
            if not any(p.sheet == t.sheet and p.message == "缺少必需的列" for p in problems):
                for rowno, r in _drain(t):
                    if _blank(r):
                        continue
                    nrows += 1
                    vals, refs, ok = _row_values(t, r, mapping, rowno, problems)
                    add_ent(vals, refs, (t.sheet, rowno), ok)
        for sheet, cols, target in ((SHEET_CERT, CERT_COLS, "certs"), (SHEET_VIOL, VIOL_COLS, "viols")):
            t2 = by_name.get(sheet)
            if t2 is None:
                continue
            if target == "certs":
                has_certs = True
            else:
                has_viols = True
            mapping = _map_header(t2, cols, problems)
            if any(p.sheet == sheet and p.message == "缺少必需的列" for p in problems):
                continue
            for rowno, r in _drain(t2):
                if _blank(r):
                    continue
                nrows += 1
                vals, refs, ok = _row_values(t2, r, mapping, rowno, problems)
                u = vals.get("uscc")
                e = ents.get(u) if u else None
                if u and e is None:
                    problems.append(RowProblem(f"“{SHEET_ENT}”中没有统一社会信用代码 {u} 的企业",
                                               sheet=sheet, row=rowno, column=refs["uscc"][2]))
                vals.pop("uscc", None)
                if target == "certs":
                    add_cert(e, vals, refs, (sheet, rowno), ok)
                elif e is not None:
                    e.viols.append((vals, refs, (sheet, rowno)))
                    if not ok:
                        e.bad = True
    for e in ents.values():
        if e.fields.get("name") is None and "name" not in {p.column for p in problems if p.row == e.row[1]}:
            hdr = next(c.header for c in ENT_COLS if c.field == "name")
            problems.append(RowProblem("必填，不能为空", sheet=e.row[0], row=e.row[1], column=hdr))
            e.bad = True
    return ParsedFile(list(ents.values()), problems, nrows, has_certs, has_viols)


def build_profile(e: _Ent, has_certs: bool, has_viols: bool) -> tuple[dict, Optional[list[str]]]:
    f = dict(e.fields)
    held, number, issued = f.pop("hnte_held", None), f.pop("hnte_number", None), f.pop("hnte_issued_on", None)
    if held is False:
        f["hnte_certificate"] = False
    elif held is True or number is not None or issued is not None:
        f["hnte_certificate"] = {"number": number, "issued_on": issued}
    claims = None
    if has_certs:
        regs, claims = [], []
        for vals, _, _ in e.certs:
            reg = {k: v for k, v in vals.items() if k != "claimed" and v is not None}
            regs.append(reg)
            if vals.get("claimed") is not False:
                claims.append(vals["certificate_no"])
        f["device_registrations"] = regs
    if has_viols:
        f["violations"] = [{k: v for k, v in vals.items() if v is not None} for vals, _, _ in e.viols]
    return {k: v for k, v in f.items() if v is not None}, claims


_PATH_RE = re.compile(r"^(device_registrations|violations)\[(\d+)\](?:\.(\w+))?")
_HNTE = {"hnte_certificate.number": "hnte_number", "hnte_certificate.issued_on": "hnte_issued_on",
         "hnte_certificate": "hnte_held"}


def _locate(e: _Ent, path: str) -> tuple[str, int, Optional[str]]:
    m = _PATH_RE.match(path)
    if m:
        items = e.certs if m[1] == "device_registrations" else e.viols
        i = int(m[2])
        if i < len(items):
            vals, refs, where = items[i]
            ref = refs.get(m[3] or "")
            return where[0], where[1], ref[2] if ref else None
    key = _HNTE.get(path, path.split(".")[0].split("[")[0])
    ref = e.refs.get(key)
    if ref:
        return ref
    return e.row[0], e.row[1], None


# --- import ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    filename: str
    window_id: Optional[str]
    rows: int
    enterprises: int
    imported: int  # enterprises stored (created or updated)
    created: int
    updated: int
    unchanged: int
    skipped: list[str]  # USCCs not imported because of errors
    problems: list[RowProblem]
    access_codes: list[dict]  # new applications: {uscc, name, application_id, access_code}
    committed: bool

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["problems"] = [p.to_dict() for p in self.problems]
        return d


class ImportRejected(ValidationFailed):
    """The file has errors and nothing was imported; `.report` has every problem."""

    def __init__(self, report: ImportReport):
        self.report = report
        super().__init__(
            report.problems,
            "文件“{}”有 {} 处问题，未导入任何数据：\n{}".format(
                report.filename, len(report.problems), "\n".join(str(p) for p in report.problems)),
        )


def import_applications(
    db: Database, window_id: Optional[str], source: bytes | str | Path, filename: str | None = None,
    *, skip_invalid: bool = False, actor: str | None = None, channel: str = "import",
) -> ImportReport:
    """Import applications of a window from an .xlsx or .csv file (or, with window_id None,
    a registry of enterprises without applications). Idempotent on window + USCC.
    Raises ImportRejected when the file has errors and skip_invalid is false."""
    from engine.profile import ProfileError, parse_profile

    from store.windows import Intake, _get_window, get_evaluator, ingest

    if isinstance(source, (str, Path)):
        path = Path(source)
        filename = filename or path.name
        data = path.read_bytes()
    else:
        data = source
        filename = filename or "upload.xlsx"
    if window_id is not None:
        from store.errors import Conflict

        with db.read_session() as s:
            w = _get_window(s, window_id)
            if w.state == "closed":
                raise Conflict(f"申报窗口 {window_id} 已关闭，不再受理申报")
    pf = parse_file(data, filename)
    problems = list(pf.problems)
    records: list[Intake] = []
    skipped: list[str] = []
    n_ents = len(pf.enterprises)
    ents, pf.enterprises = pf.enterprises, []
    ents.reverse()
    while ents:
        e = ents.pop()  # released once checked: only the compact record stays
        prof, claims = build_profile(e, pf.has_certs, pf.has_viols)
        if e.bad:
            skipped.append(e.uscc)
            continue
        try:
            p = parse_profile(prof, get_evaluator().registry)
        except ProfileError as err:
            for pr in err.problems:
                sheet, row, col = _locate(e, pr.path)
                problems.append(RowProblem(pr.message, path=pr.path, sheet=sheet, row=row, column=col))
            skipped.append(e.uscc)
            continue
        records.append(Intake.compact(p, claims if window_id else None, channel))
    problems.sort(key=lambda p: (p.sheet or "", p.row or 0))
    report = ImportReport(filename, window_id, pf.rows, n_ents, 0, 0, 0, 0,
                          skipped, problems, [], False)
    if problems and not skip_invalid:
        raise ImportRejected(report)
    if not records:
        return report
    results = ingest(db, window_id, records, actor=actor,
                     action="applications.import" if window_id else "registry.import",
                     details={"filename": filename, "problems": len(problems),
                              "skip_invalid": skip_invalid})
    report.committed = True
    report.imported = sum(1 for r in results if r.changed or not window_id)
    report.created = sum(1 for r in results if r.created)
    report.updated = sum(1 for r in results if r.changed and not r.created)
    report.unchanged = len(results) - report.created - report.updated
    report.access_codes = [
        {"uscc": r.uscc, "name": r.name, "application_id": r.application_id, "access_code": r.access_code}
        for r in results if r.access_code
    ]
    return report


def import_registry(db: Database, source, filename: str | None = None, **kw) -> ImportReport:
    """Enterprises known to the park (no application): evaluated proactively (免申即享)."""
    return import_applications(db, None, source, filename, **kw)


# --- template -------------------------------------------------------------------------------


def template_bytes(fmt: str = "xlsx") -> bytes:
    """The import template: Chinese headers and one example row per sheet."""
    if fmt == "csv":
        cols = ENT_COLS + CSV_CERT_COLS + CSV_VIOL_COLS
        buf = io.StringIO(newline="")
        w = csv.writer(buf)
        w.writerow([c.header for c in cols])
        w.writerow(["" if c.example is None else c.example for c in cols])
        return buf.getvalue().encode("utf-8-sig")
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = Workbook()
    first = True
    for sheet, cols in ((SHEET_ENT, ENT_COLS), (SHEET_CERT, CERT_COLS), (SHEET_VIOL, VIOL_COLS)):
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = sheet
        ws.append([c.header for c in cols])
        ws.append([c.example for c in cols])
        for i, c in enumerate(cols, start=1):
            cell = ws.cell(row=1, column=i)
            cell.font = Font(bold=True, color="C00000" if c.required else "000000")
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
            cell.alignment = Alignment(wrap_text=True, vertical="center")
            ws.column_dimensions[cell.column_letter].width = max(14, min(40, len(c.header) * 2))
            if c.kind in ("str", "uscc", "date"):
                for r in range(2, 1001):
                    ws.cell(row=r, column=i).number_format = "@"  # keep codes and dates as text
        ws.freeze_panes = "A2"
    ws = wb.create_sheet("说明")
    for line in (
        "填写说明",
        "1. “企业信息”每行一家企业；“注册证”每行一张注册证或备案凭证，以统一社会信用代码关联企业；“违法违规记录”每行一条记录。",
        "2. 红色列名为必填项。日期格式为 YYYY-MM-DD（如 2025-10-15）；金额单位为元，最多两位小数；占比填 0–1 之间的小数或百分数。",
        "3. 留空表示“未知”，相关条件将判为“需补充信息”；“否”、0 表示确实没有。",
        "4. 某工作表存在即视为完整清单：企业在“注册证”表中没有行，表示未持有注册证。",
        "5. 第2行为示例，请删除或覆盖后再导入。同一文件重复导入不会产生重复申报。",
    ):
        ws.append([line])
    ws.column_dimensions["A"].width = 120
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
