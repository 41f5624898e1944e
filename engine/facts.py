"""The fact catalogue: every path a rule condition may read, its type, and how to read it.

A path is resolved to a plain Python value (bool, int, float, str, date) or None (unknown).
Both evaluation paths (durable_rules and the oracle) read facts only through `resolve`, so
the catalogue is the single definition of what a path means.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Literal

from engine.profile import DeviceRegistration, HnteCertificate, Profile

Scope = Literal["enterprise", "certificate", "item"]


@dataclass(frozen=True)
class FactType:
    name: Literal["bool", "int", "number", "date", "string", "enum"]
    domain: tuple[str, ...] = ()

    @property
    def ordered(self) -> bool:
        return self.name in ("int", "number", "date")

    def describe(self) -> str:
        return {"bool": "布尔值", "int": "整数", "number": "数值", "date": "日期", "string": "文本",
                "enum": "枚举（" + "、".join(self.domain) + "）"}[self.name]


BOOL, INT, NUMBER, DATE, STRING = (FactType("bool"), FactType("int"), FactType("number"),
                                   FactType("date"), FactType("string"))


def enum(*values: str) -> FactType:
    return FactType("enum", tuple(values))


@dataclass(frozen=True)
class FactDef:
    path: str
    type: FactType
    label: str                      # Chinese name shown to enterprises
    scope: Scope
    read: Callable[..., Any]        # enterprise: (profile); certificate: (profile, reg); item: (item)
    source: str | None = None       # the profile field an unknown value asks for, if not `path`


def _attr(name: str) -> Callable[[Any], Any]:
    return lambda obj: getattr(obj, name)


def _hnte_held(p: Profile) -> bool | None:
    if p.hnte_certificate is None:
        return None
    return isinstance(p.hnte_certificate, HnteCertificate)


def _hnte_issued(p: Profile) -> date | None:
    h = p.hnte_certificate
    return h.issued_on if isinstance(h, HnteCertificate) else None


def _section(p: Profile) -> str | None:
    return p.industry_code[0] if p.industry_code else None


def _parsed(attr: str) -> Callable[[Profile, DeviceRegistration], Any]:
    def read(_p: Profile, reg: DeviceRegistration) -> Any:
        parsed = reg.parsed
        return getattr(parsed, attr) if parsed is not None else None
    return read


_ENTERPRISE: list[tuple[str, FactType, str]] = [
    ("in_park", BOOL, "注册地在资阳高新区（中国牙谷）"),
    ("industry_code", STRING, "国民经济行业分类代码"),
    ("established_on", DATE, "成立日期"),
    ("tax_collection", enum("audit", "deemed"), "征收方式（查账征收/核定征收）"),
    ("employees_avg", INT, "全年季度平均从业人数"),
    ("total_assets_avg_cny", NUMBER, "全年季度平均资产总额（元）"),
    ("taxable_income_cny", NUMBER, "年度应纳税所得额（元）"),
    ("restricted_industry", BOOL, "是否从事国家限制或禁止行业"),
    ("rd_excluded_industry", BOOL, "是否属于研发费用加计扣除负面清单行业"),
    ("rd_expense_cny", NUMBER, "当年研发费用（元）"),
    ("four_industries_sales_share", NUMBER, "制造业等4个行业增值税销售额占比"),
    ("vat_credit_positive_months", INT, "连续期末留抵税额大于零的月数"),
    ("vat_credit_increase_cny", NUMBER, "第6个月期末新增留抵税额（元）"),
    ("tax_credit_rating", enum("A", "B", "M", "C", "D"), "纳税信用级别"),
    ("immediate_refund_since_2019_04", BOOL, "2019年4月1日起是否享受过即征即退、先征后返（退）"),
    ("western_encouraged_share", NUMBER, "西部地区鼓励类产业主营业务收入占比"),
    ("export_refund_class", INT, "出口退（免）税企业分类"),
    ("on_serious_dishonest_list", BOOL, "是否被列入严重失信主体名单"),
]

VIOLATION_KINDS = ("tax_evasion", "refund_fraud", "export_refund_fraud", "false_vat_invoice",
                   "market_minor", "other")
DEVICE_CLASSES = ("I", "II", "III")
ORIGINS = ("self_developed", "introduced")

CATALOGUE: dict[str, FactDef] = {}


def _add(d: FactDef) -> None:
    CATALOGUE[d.path] = d


for _path, _type, _label in _ENTERPRISE:
    _add(FactDef(_path, _type, _label, "enterprise", _attr(_path)))
_add(FactDef("industry_section", enum(*"ABCDEFGHIJKLMNOPQRST"), "国民经济行业门类", "enterprise",
             _section, source="industry_code"))
_add(FactDef("hnte_certificate.held", BOOL, "是否持有高新技术企业证书", "enterprise",
             _hnte_held, source="hnte_certificate"))
_add(FactDef("hnte_certificate.issued_on", DATE, "高新技术企业证书发证日期", "enterprise",
             _hnte_issued))

_CERT: list[tuple[str, FactType, str, Callable[..., Any], str | None]] = [
    ("certificate_no", STRING, "注册证编号", lambda _p, r: r.certificate_no, None),
    ("registration_type", enum("registration", "filing"), "注册证/备案凭证类型",
     _parsed("kind"), "certificate_no"),
    ("approval", enum("准", "进", "许"), "注册证类别（境内/进口/港澳台）", _parsed("approval"),
     "certificate_no"),
    ("authority", STRING, "审批部门", _parsed("authority"), "certificate_no"),
    ("catalogue_code", STRING, "产品分类编码", _parsed("catalogue_code"), "certificate_no"),
    ("device_class", enum(*DEVICE_CLASSES), "管理类别", lambda _p, r: r.effective_class, None),
    ("origin", enum(*ORIGINS), "来源（自主研发/引进）", lambda _p, r: r.origin, None),
    ("obtained_on", DATE, "注册证取得日期", lambda _p, r: r.obtained_on, None),
    ("innovative", BOOL, "是否经创新医疗器械特别审查程序", lambda _p, r: r.innovative, None),
]
for _name, _type, _label, _read, _src in _CERT:
    _add(FactDef(f"certificate.{_name}", _type, _label, "certificate", _read, source=_src))

# Not a profile fact: the award ledger answers it (see Evaluator `awarded`).
ALREADY_AWARDED = "certificate.already_awarded"
_add(FactDef(ALREADY_AWARDED, BOOL, "该注册证是否已获得过本项资金支持（兑现台账）", "certificate",
             lambda _p, _r: None, source="award_ledger"))

# Lists that `count` may range over, with their item fields.
LISTS: dict[str, dict[str, FactDef]] = {
    "violations": {
        "kind": FactDef("kind", enum(*VIOLATION_KINDS), "违法违规类型", "item", _attr("kind")),
        "decided_on": FactDef("decided_on", DATE, "处罚或认定日期", "item", _attr("decided_on")),
    },
    "device_registrations": {
        name: FactDef(name, CATALOGUE[f"certificate.{name}"].type, CATALOGUE[f"certificate.{name}"].label,
                      "item", (lambda read: lambda reg: read(None, reg))(CATALOGUE[f"certificate.{name}"].read),
                      source=CATALOGUE[f"certificate.{name}"].source)
        for name, *_ in _CERT
    },
}
LIST_LABELS = {"violations": "违法违规及处罚记录", "device_registrations": "医疗器械注册证及备案凭证"}

# Chinese names of enum values, for thresholds and observed values shown to enterprises.
VALUE_LABELS: dict[str, str] = {
    "audit": "查账征收", "deemed": "核定征收", "registration": "注册证", "filing": "备案凭证",
    "self_developed": "自主研发", "introduced": "引进", "I": "第一类", "II": "第二类", "III": "第三类",
    "准": "境内（准）", "进": "进口（进）", "许": "港澳台（许）", "tax_evasion": "偷税",
    "refund_fraud": "骗取留抵退税", "export_refund_fraud": "骗取出口退税",
    "false_vat_invoice": "虚开增值税专用发票", "market_minor": "市场监管轻微违法", "other": "其他",
}

FIELD_LABELS: dict[str, str] = {
    **{d.path: d.label for d in CATALOGUE.values()},
    **LIST_LABELS,
    "hnte_certificate": "高新技术企业证书",
    "award_ledger": "资金兑现台账（本系统无法查询时需人工核对）",
}


def fact_label(path: str) -> str:
    """Chinese name of a profile path such as `device_registrations[0].obtained_on`."""
    if path in FIELD_LABELS:
        return FIELD_LABELS[path]
    head, _, rest = path.partition("[")
    if head in LISTS and rest:
        index, _, field = rest.partition("].")
        item = LISTS[head].get(field)
        name = item.label if item else field
        return f"{LIST_LABELS[head]}第{int(index) + 1}项的{name}"
    return path


def enterprise_source(path: str, profile: Profile) -> str:
    d = CATALOGUE[path]
    if path.startswith("hnte_certificate.") and profile.hnte_certificate is None:
        return "hnte_certificate"   # the whole certificate is unknown, not only its date
    return d.source or d.path


def certificate_source(path: str, index: int) -> str:
    d = CATALOGUE[path]
    if d.source == "award_ledger":
        return "award_ledger"
    field = d.source or path.split(".", 1)[1]
    return f"device_registrations[{index}].{field}"


def item_source(list_name: str, index: int, field: str) -> str:
    d = LISTS[list_name][field]
    return f"{list_name}[{index}].{d.source or field}"
