"""The self-check HTML form <-> profile dict. Presentation only: validation is the engine's.

Empty inputs mean *unknown* and are left out of the profile. Inputs that do not parse as the
expected type are passed through as text, so the engine's validator names them.
"""
from __future__ import annotations

from typing import Any

# (key, label, kind, hint). kind: text | date | int | money | share | bool | choice:<a,b,...>
FIELDS: list[tuple[str, str, str, str]] = [
    ("uscc", "统一社会信用代码", "text", "18位，必填"),
    ("name", "企业名称", "text", "必填"),
    ("in_park", "注册地在资阳高新区（中国牙谷）", "bool", ""),
    ("industry_code", "国民经济行业分类代码", "text", "例如 C3589"),
    ("established_on", "成立日期", "date", ""),
    ("tax_collection", "企业所得税征收方式", "choice:audit=查账征收,deemed=核定征收", ""),
    ("employees_avg", "全年季度平均从业人数", "int", "人"),
    ("total_assets_avg_cny", "全年季度平均资产总额", "money", "元"),
    ("taxable_income_cny", "年度应纳税所得额", "money", "元，亏损填负数"),
    ("restricted_industry", "从事国家限制或禁止行业", "bool", ""),
    ("rd_excluded_industry", "主营业务属研发费用加计扣除负面清单行业", "bool", ""),
    ("rd_expense_cny", "当年研发费用", "money", "元"),
    ("four_industries_sales_share", "四类行业增值税销售额占比", "share", "0 到 1 之间的小数"),
    ("vat_credit_positive_months", "连续期末留抵税额大于零的月数", "int", "月"),
    ("vat_credit_increase_cny", "第6个月期末新增留抵税额", "money", "元"),
    ("tax_credit_rating", "纳税信用级别", "choice:A=A级,B=B级,M=M级,C=C级,D=D级", ""),
    ("immediate_refund_since_2019_04", "2019年4月1日起享受过即征即退、先征后返（退）", "bool", ""),
    ("western_encouraged_share", "西部鼓励类产业主营业务收入占比", "share", "0 到 1 之间的小数"),
    ("export_refund_class", "出口退（免）税企业分类", "choice:0=非出口企业,1=一类,2=二类,3=三类,4=四类", ""),
    ("on_serious_dishonest_list", "被列入严重失信主体名单", "bool", ""),
]

REG_FIELDS = [
    ("certificate_no", "注册证/备案编号", "text"),
    ("product_name", "产品名称", "text"),
    ("device_class", "管理类别", "choice:I=第一类,II=第二类,III=第三类"),
    ("origin", "来源", "choice:self_developed=自主研发,introduced=引进"),
    ("obtained_on", "取得日期", "date"),
    ("innovative", "创新医疗器械", "bool"),
]

VIOL_FIELDS = [
    ("kind", "类型", "choice:tax_evasion=偷税,refund_fraud=骗取留抵退税,export_refund_fraud=骗取出口退税,"
                     "false_vat_invoice=虚开增值税专用发票,market_minor=市场监管轻微违法,other=其他"),
    ("decided_on", "处罚或认定日期", "date"),
    ("description", "说明", "text"),
]

LABELS = {k: label for k, label, *_ in FIELDS}
LABELS.update({"device_registrations": "医疗器械注册证", "violations": "违法违规记录",
               "hnte_certificate": "高新技术企业证书", "hnte_certificate.number": "高企证书编号",
               "hnte_certificate.issued_on": "高企证书发证日期"})
REG_LABELS = {k: label for k, label, _ in REG_FIELDS}
VIOL_LABELS = {k: label for k, label, _ in VIOL_FIELDS}


def choices(kind: str) -> list[tuple[str, str]]:
    return [tuple(c.split("=", 1)) for c in kind.split(":", 1)[1].split(",")]


def _convert(kind: str, raw: str) -> Any:
    raw = raw.strip()
    if raw == "":
        return None
    if kind == "bool":
        return {"true": True, "false": False}.get(raw, raw)
    if kind == "int" or kind == "choice:0=非出口企业,1=一类,2=二类,3=三类,4=四类":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind in ("money", "share"):
        try:
            v = float(raw.replace(",", ""))
            return int(v) if v.is_integer() and kind == "money" else v
        except ValueError:
            return raw
    return raw


def _rows(form, prefix: str, fields) -> list[dict]:
    keys = [k for k, *_ in fields]
    n = 0
    for k in keys:
        n = max(n, len(form.getlist(f"{prefix}_{k}")))
    rows = []
    for i in range(n):
        row = {}
        for k, _label, kind in fields:
            vals = form.getlist(f"{prefix}_{k}")
            v = _convert(kind, vals[i]) if i < len(vals) else None
            if v is not None:
                row[k] = v
        if row:
            rows.append(row)
    return rows


def profile_from_form(form) -> dict:
    profile: dict[str, Any] = {}
    for key, _label, kind, _hint in FIELDS:
        v = _convert(kind, form.get(key, "") or "")
        if v is not None:
            profile[key] = v
    hnte = form.get("hnte_state", "")
    if hnte == "none":
        profile["hnte_certificate"] = False
    elif hnte == "held":
        cert = {}
        if (form.get("hnte_number") or "").strip():
            cert["number"] = form.get("hnte_number").strip()
        if (form.get("hnte_issued_on") or "").strip():
            cert["issued_on"] = form.get("hnte_issued_on").strip()
        profile["hnte_certificate"] = cert
    if form.get("regs_known") == "yes":
        profile["device_registrations"] = _rows(form, "reg", REG_FIELDS)
    if form.get("viol_known") == "yes":
        profile["violations"] = _rows(form, "viol", VIOL_FIELDS)
    return profile


def label_for_path(path: str) -> str:
    """'profile.device_registrations[0].obtained_on' → '医疗器械注册证 第1行 取得日期'."""
    import re
    p = path[len("profile."):] if path.startswith("profile.") else path
    m = re.match(r"^(device_registrations|violations)\[(\d+)\]\.?(.*)$", p)
    if m:
        group, idx, leaf = m.group(1), int(m.group(2)), m.group(3)
        sub = (REG_LABELS if group == "device_registrations" else VIOL_LABELS).get(leaf, leaf)
        return f"{LABELS[group]} 第{idx + 1}行" + (f" {sub}" if sub else "")
    if p in LABELS:
        return LABELS[p]
    try:  # the notices package names every fact path (certificate.*, derived facts)
        from notices.fields import field_name
        return field_name(p) or p
    except Exception:
        return p or "企业画像"


def field_value(profile: dict, key: str) -> str:
    v = profile.get(key)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
