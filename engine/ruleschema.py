"""Pydantic schema of the rule files (`rules/benefits/*.yaml`, `rules/windows.yaml`,
`rules/common.yaml`). Structural checks live here; cross-references and conditions are
checked by `engine.loader`.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BENEFIT_ID = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
PARAM_UNITS = ("元", "人", "比例", "月", "年", "日", "个", "代码")
ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class OptionalPeriod(_Strict):
    from_: dt.date | None = Field(default=None, alias="from")
    to: dt.date | None = None

    def contains(self, d: dt.date) -> bool:
        return (self.from_ is None or self.from_ <= d) and (self.to is None or d <= self.to)


class Document(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str = Field(min_length=1)
    doc_no: str | None = None
    date: dt.date | None = None
    article: str | None = None
    url: str | None = None
    note: str | None = None
    # The decisions this text governs, by evaluation date: outside it the text is not cited
    # (a 2024 decision cites no 2025 公告). A text is never cited before its own date either.
    applies: OptionalPeriod | None = None

    def cited_on(self, d: dt.date) -> bool:
        return (self.date is None or self.date <= d) and (self.applies is None or self.applies.contains(d))

    def citation(self, article: str | None = None) -> str:
        """`《title》（文号）第N条` — the form every output shows."""
        text = f"《{self.title}》"
        if self.doc_no:
            text += f"（{self.doc_no}）"
        elif self.date:
            text += f"（{self.date.year}年{self.date.month}月{self.date.day}日）"
        art = article or self.article
        if art:
            text += art
        return text


class Period(_Strict):
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None
    basis: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"结束日期 {self.to} 早于开始日期 {self.from_}")
        return self

    def contains(self, d: dt.date) -> bool:
        return self.from_ <= d and (self.to is None or d <= self.to)


class Reference(_Strict):
    basis: str
    article: str | None = None
    note: str | None = None


_CN_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(万|亿)?\s*(元|人)?\s*$")


def _as_written(v: Any) -> str:
    """How to write a number the file spells in words ("30万" → 300000), else ""."""
    m = _CN_NUMBER.match(v) if isinstance(v, str) else None
    if not m:
        return ""
    n = float(m.group(1)) * {"万": 10_000, "亿": 100_000_000, None: 1}[m.group(2)]
    return f"，请写成 {int(n) if n.is_integer() else n}"


def _number_or_table(v: Any, where: str = "") -> Any:
    """A parameter's value: a number, a list of codes, or a table (keys → numbers or tables).
    One message, in the file's words, for a value written as text ("30万", which a table
    once took and then gave no amount at all)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, list, dict)):
        shown = f"“{v}”" if isinstance(v, str) else repr(v)
        what = f"金额表 {where} 的取值" if where else "取值"
        raise ValueError(f"{what} {shown} 不是数字{_as_written(v) or '；请写阿拉伯数字，不带单位'}")
    if isinstance(v, list):
        if not all(isinstance(x, str) for x in v):
            raise ValueError("代码列表的每一项都须是文字代码")
    elif isinstance(v, dict):
        for k, x in v.items():
            _number_or_table(x, f"{where} › {k}" if where else str(k))
    return v


class ParamValue(_Strict):
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None
    # a number, a list of codes (compared with `in`), or a table (an amount lookup); checked
    # first by _number_or_table, which says in one message what is wrong
    value: float | int | list[str] | dict[str, Any]
    reference: Reference
    provisional: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _number_or_table(cls, v: Any) -> Any:
        return _number_or_table(v)

    @model_validator(mode="after")
    def _provisional_says_why(self) -> "ParamValue":
        if self.provisional and not self.reference.note:
            raise ValueError("provisional 参数值必须在 reference.note 中说明取值来源")
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"结束日期 {self.to} 早于开始日期 {self.from_}")
        return self

    def contains(self, d: dt.date) -> bool:
        return self.from_ <= d and (self.to is None or d <= self.to)


class Parameter(_Strict):
    description: str = Field(min_length=1)
    unit: Literal[PARAM_UNITS]  # type: ignore[valid-type]
    values: list[ParamValue] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> "Parameter":
        for v in self.values:       # 60 for 60%: read as 6000%
            if self.unit == "比例" and isinstance(v.value, (int, float)) and v.value > 5:
                raise ValueError(f"比例 {v.value} 即 {v.value:g}00%；百分数请写成小数，例如 60% 写作 0.6")
        ordered = sorted(self.values, key=lambda v: v.from_)
        for a, b in zip(ordered, ordered[1:]):
            if a.to is None or a.to >= b.from_:
                raise ValueError(f"参数取值的有效期重叠：{a.from_} 起与 {b.from_} 起")
        return self

    def at(self, d: dt.date) -> ParamValue | None:
        for v in self.values:
            if v.contains(d):
                return v
        return None


class BasisRef(_Strict):
    ref: str
    article: str | None = None


class Provisional(_Strict):
    """A condition no official text of the benefit sets (e.g. one of a 兑现 round's usual
    conditions): shown as 暂定 in every output until the round's notice confirms it."""
    note: str = Field(min_length=1)


class Criterion(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    text: str = Field(min_length=1)
    basis: list[BasisRef] = Field(min_length=1)
    materials: list[str] = []
    applies: OptionalPeriod | None = None
    provisional: Provisional | None = None
    when: Any


class Material(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    description: str | None = None
    issuer: str | None = None
    deferrable: bool = False       # 容缺: may be promised with a signed commitment, supplied later
    # enterprise: one file about the enterprise (a credit report), asked once for all of its
    # certificates; subject (default): one file per certificate
    scope: Literal["subject", "enterprise"] = "subject"
    # asked for only where this condition does not fail (e.g. 注册人变更文件 for 引进 only)
    needed_when: Any = None


class Route(_Strict):
    """One of several alternative outcomes (e.g. 不予处罚 / 可以不予处罚 / 从轻减轻): the first
    route whose criteria all pass applies; criteria not applicable on the date are skipped."""
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    binding: Literal["must", "may"] = "must"     # 应当 / 可以 (the authority's discretion)
    criteria: list[str] = Field(min_length=1)
    applies: OptionalPeriod | None = None
    basis: list[BasisRef] = Field(min_length=1)
    note: str | None = None


class Conflict(_Strict):
    benefit: str
    reason: str


class NumberRef(_Strict):
    param: str


class TaxRate(_Strict):
    of: str                        # the fact the rate applies to
    rate: float | NumberRef


class TaxInfo(_Strict):
    # year: an annual income-tax preference, judged for a tax year (during the 汇算清缴 of
    # year Y, Y itself); date: judged on the day of the claim (e.g. a VAT refund)
    period: Literal["year", "date"] = "year"
    how_to_claim: str = Field(min_length=1)
    # for `period: date`, what the retention of its records rests on (no CIT settlement date)
    records_basis: str | None = None
    # for `period: date`, the years its records are kept after the end of the year of the claim
    records_years: int | None = None
    # the tax rate the preference amounts to (小型微利: 25% × 20% = 5% of the taxable income):
    # where that income is known, a conflict among rate preferences says which one costs less
    rate: "TaxRate | None" = None
    records_to_keep: list[str] = Field(min_length=1)
    conflicts_with: list[Conflict] = []


class Band(_Strict):
    up_to: float | NumberRef | None = None
    rate: float | NumberRef


class Brackets(_Strict):
    of: str
    bands: list[Band] = Field(min_length=1)


class Lookup(_Strict):
    param: str
    keys: list[str] = Field(min_length=1)
    # key → value to use when that fact is unknown (e.g. innovative not stated → the ordinary
    # standard); the result then says which assumption was made
    if_unknown: dict[str, Any] = {}


class Multiply(_Strict):
    fact: str
    by: float | NumberRef


class AmountSpec(_Strict):
    applies: OptionalPeriod | None = None
    materials: list[str] = []      # materials that prove the amount's inputs (e.g. innovative)
    when: Any = None               # optional condition: the amount is only computed where it passes
    lookup: Lookup | None = None
    brackets: Brackets | None = None
    multiply: Multiply | None = None
    # facts the amount is multiplied by (e.g. 进项构成比例); any of them unknown → no amount,
    # and the result says which fact is missing rather than showing a figure that overstates
    times: list[str] = []
    formula: str | None = None     # the method in words, shown with the amount

    @model_validator(mode="after")
    def _exactly_one(self) -> "AmountSpec":
        kinds = [k for k in ("lookup", "brackets", "multiply") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("amount 需要且只能有 lookup、brackets、multiply 中的一种")
        return self


class Example(_Strict):
    name: str = Field(min_length=1)
    as_of: dt.date
    awarded: list[str] | None = []
    window: dict[str, Any] | None = None
    profile: dict[str, Any]
    expect: dict[str, Any]


class BenefitFile(_Strict):
    id: str = Field(pattern=BENEFIT_ID)
    title: str = Field(min_length=1)
    kind: Literal["grant", "tax", "guidance"]   # guidance: neither money nor a tax claim (资格、执法裁量)
    unit: str = Field(pattern=r"^[a-z][a-z0-9_]*$")   # enterprise, or a subject of rules/fields.yaml
    # a per-subject benefit for an enterprise without such subjects: judged ineligible (a grant
    # for certificates), or not shown at all (a case of 首违不罚 the enterprise does not have)
    without_subject: Literal["ineligible", "omit"] = "ineligible"
    summary: str = Field(min_length=1)
    legal_basis: list[Document] = Field(min_length=1)
    responsible_units: list[str] = Field(min_length=1)
    in_force: list[Period] = Field(min_length=1)
    parameters: dict[str, Parameter] = {}
    criteria: list[Criterion] = Field(min_length=1)
    materials: list[Material] = []
    amount: AmountSpec | list[AmountSpec] | None = None
    # alternative outcomes in order of precedence; without them every criterion must pass
    routes: list[Route] = []
    # what the result says when no route applies
    no_route: str | None = None
    # the guidance a one-time notice prints for this benefit (what to prepare, whom to ask)
    notice_text: str | None = None
    tax: TaxInfo | None = None
    examples: list[Example] = []

    @field_validator("parameters")
    @classmethod
    def _param_names(cls, v: dict[str, Parameter]) -> dict[str, Parameter]:
        bad = [k for k in v if not re.match(ID_PATTERN, k)]
        if bad:
            raise ValueError(f"参数名只能用小写字母、数字和下划线：{bad}")
        return v

    @model_validator(mode="after")
    def _tax_block(self) -> "BenefitFile":
        if self.kind == "tax" and self.tax is None:
            raise ValueError("税收优惠（kind: tax）必须有 tax 段：how_to_claim、records_to_keep")
        return self

    def amount_specs(self) -> list[AmountSpec]:
        if self.amount is None:
            return []
        return self.amount if isinstance(self.amount, list) else [self.amount]


# ---- rules/index.yaml ---------------------------------------------------------------------
class IndexFile(_Strict):
    benefits: list[str] = Field(min_length=1)


# ---- rules/windows.yaml ----------------------------------------------------------------
class MonthDay(_Strict):
    year_offset: int = 0
    month_day: str = Field(pattern=r"^\d{2}-\d{2}$")


class WindowTemplate(_Strict):
    half: Literal["H1", "H2"]
    label: str
    opens_on: str = Field(pattern=r"^\d{2}-\d{2}$")
    closes_on: str = Field(pattern=r"^\d{2}-\d{2}$")
    coverage_from: MonthDay
    coverage_to: MonthDay


class CalendarFile(_Strict):
    provisional: bool
    reference: Reference
    windows: list[WindowTemplate] = Field(min_length=1)


# ---- rules/common.yaml -----------------------------------------------------------------
class CommonFile(_Strict):
    legal_basis: list[Document] = []
    parameters: dict[str, Parameter]
