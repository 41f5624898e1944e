"""Chinese names and value formatting for the profile paths of shared/contract/profile.md.

Notices name the facts an enterprise must supply; they must say "纳税信用级别", not
``tax_credit_rating``. The raw path is still shown beside it so staff can find the column.
"""
from __future__ import annotations

import datetime as dt
import re

FIELD_NAMES: dict[str, str] = {
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "in_park": "注册地是否在资阳高新区（中国牙谷）",
    "industry_code": "国民经济行业分类代码",
    "established_on": "成立日期",
    "tax_collection": "企业所得税征收方式",
    "employees_avg": "全年季度平均从业人数",
    "total_assets_avg_cny": "全年季度平均资产总额",
    "taxable_income_cny": "年度应纳税所得额",
    "restricted_industry": "是否从事国家限制或禁止行业",
    "rd_excluded_industry": "是否属研发费用加计扣除负面清单行业",
    "rd_expense_cny": "当年研发费用",
    "four_industries_sales_share": "近12个月制造业等4个行业增值税销售额占比",
    "vat_credit_positive_months": "连续期末留抵税额大于零的月数",
    "vat_credit_increase_cny": "第6个月期末留抵税额较上年末新增额",
    "tax_credit_rating": "纳税信用级别",
    "immediate_refund_since_2019_04": "2019年4月1日起是否享受过即征即退、先征后返（退）",
    "hnte_certificate": "高新技术企业证书",
    "hnte_certificate.number": "高新技术企业证书编号",
    "hnte_certificate.issued_on": "高新技术企业证书发证日期",
    "western_encouraged_share": "西部地区鼓励类产业主营业务收入占比",
    "export_refund_class": "出口退（免）税企业分类",
    "on_serious_dishonest_list": "是否被列入严重失信主体名单",
    "device_registrations": "医疗器械注册证及备案凭证清单",
    "violations": "违法违规及处罚记录",
}

DEVICE_FIELDS = {
    "certificate_no": "注册证编号",
    "product_name": "产品名称",
    "device_class": "管理类别",
    "origin": "来源（自主研发/引进）",
    "obtained_on": "取得日期",
    "innovative": "是否经创新医疗器械特别审查程序",
}
VIOLATION_FIELDS = {"kind": "类别", "decided_on": "处罚或认定日期", "description": "说明"}

ENUMS: dict[str, dict] = {
    "tax_collection": {"audit": "查账征收", "deemed": "核定征收"},
    "origin": {"self_developed": "自主研发", "introduced": "引进"},
    "device_class": {"I": "第一类", "II": "第二类", "III": "第三类"},
    "export_refund_class": {0: "非出口企业", 1: "一类", 2: "二类", 3: "三类", 4: "四类"},
    "kind": {"tax_evasion": "偷税", "refund_fraud": "骗取留抵退税", "export_refund_fraud": "骗取出口退税",
             "false_vat_invoice": "虚开增值税专用发票", "market_minor": "市场监管轻微违法", "other": "其他"},
}

_ITEM = re.compile(r"^(device_registrations|violations)\[(\d+)\](?:\.(\w+))?$")


def field_name(path: str) -> str:
    """Chinese name of a profile path, e.g. ``device_registrations[0].obtained_on`` →
    ``医疗器械注册证第1项的取得日期``. Unknown paths come back unchanged."""
    if path in FIELD_NAMES:
        return FIELD_NAMES[path]
    m = _ITEM.match(path)
    if m:
        lst, idx, sub = m.group(1), int(m.group(2)) + 1, m.group(3)
        if lst == "device_registrations":
            head = f"医疗器械注册证第{idx}项"
            return f"{head}的{DEVICE_FIELDS.get(sub, sub)}" if sub else head
        head = f"违法违规记录第{idx}项"
        return f"{head}的{VIOLATION_FIELDS.get(sub, sub)}" if sub else head
    for prefix, table in (("device_registrations.", DEVICE_FIELDS), ("violations.", VIOLATION_FIELDS)):
        if path.startswith(prefix) and path[len(prefix):] in table:
            return table[path[len(prefix):]]
    label = _engine_labels().get(path)   # derived facts (certificate.device_class), award_ledger
    if label:
        return f"注册证的{label}" if path.startswith("certificate.") and not label.startswith("注册证") else label
    return path


_labels: dict | None = None


def _engine_labels() -> dict:
    global _labels
    if _labels is None:
        from store.windows import get_evaluator
        reg = get_evaluator().registry
        _labels = {path: f.label for path, f in reg.facts.items()}
    return _labels


def _leaf(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1]


def format_value(path: str, value) -> str:
    """Human-readable value of a fact for a notice (money in 元, shares in %, enums in Chinese)."""
    if value is None:
        return "未提供"
    leaf = _leaf(path)
    if isinstance(value, bool):
        return "是" if value else "否"
    if leaf in ENUMS and not isinstance(value, (list, dict)):
        return str(ENUMS[leaf].get(value, value))
    if isinstance(value, str):
        from store.windows import get_evaluator
        reg = get_evaluator().registry
        return reg.value_text(path, value) if reg.field_at(path) else value
    if isinstance(value, (int, float)) and leaf.endswith("_cny"):
        return f"{value:,.2f} 元"
    if isinstance(value, (int, float)) and leaf.endswith("_share"):
        return f"{value * 100:.2f}%".replace(".00%", "%")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    if isinstance(value, list):
        if not value:
            return "无"
        return "；".join(format_value(path, v) for v in value)
    if isinstance(value, dict):
        return "，".join(f"{k}：{format_value(k, v)}" for k, v in value.items())
    return str(value)


def format_money(amount) -> str:
    if amount is None:
        return "—"
    return f"{amount:,.2f} 元"
