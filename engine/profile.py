"""The enterprise profile of shared/contract/profile.md (pydantic v2).

None (or an absent key) means *unknown*; ``[]``, ``false`` and ``0`` are real values.
Typing is strict in the JSON sense: numbers must be numbers, booleans must be booleans,
dates must be ``YYYY-MM-DD`` strings. Keys the contract does not know are ignored.

Use :func:`parse_profile` for user input: it reports every problem at once, each with
a contract path (``device_registrations[0].obtained_on``) and a Chinese message.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from engine.messages import kind_of, pydantic_message
from engine.certno import ParsedCertNo, parse_certificate_no
from engine.uscc import validate_uscc

__all__ = [
    "Profile",
    "DeviceRegistration",
    "Violation",
    "HnteCertificate",
    "Problem",
    "ProfileError",
    "parse_profile",
    "shanghai_today",
    "canonical_json",
    "CONTEXT_TODAY",
]

CONTEXT_TODAY = "today"  # validation-context key holding the reference date
_TZ = ZoneInfo("Asia/Shanghai")

DeviceClass = Literal["I", "II", "III"]
_CLASS_NAMES = {"I": "第一类", "II": "第二类", "III": "第三类"}


def shanghai_today() -> date:
    return datetime.now(_TZ).date()


def _today(info: ValidationInfo) -> date:
    ctx = info.context
    if isinstance(ctx, dict) and isinstance(ctx.get(CONTEXT_TODAY), date):
        return ctx[CONTEXT_TODAY]
    return shanghai_today()


# --- field types -----------------------------------------------------------------

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _parse_iso_date(v: Any) -> Any:
    if v is None:
        return v
    if isinstance(v, datetime):
        raise PydanticCustomError("yagu_date_format", "必须是日期（YYYY-MM-DD），不能带时间")
    if isinstance(v, date):
        return v
    if not isinstance(v, str) or not _ISO_DATE.match(v.strip()):
        raise PydanticCustomError(
            "yagu_date_format", "必须是 YYYY-MM-DD 格式的日期字符串（例如 2025-10-15）"
        )
    try:
        return date.fromisoformat(v.strip())
    except ValueError:
        raise PydanticCustomError(
            "yagu_date_format", "不是有效的日期：{value}", {"value": v.strip()}
        ) from None


def _not_future(v: date, info: ValidationInfo) -> date:
    today = _today(info)
    if v > today:
        raise PydanticCustomError(
            "yagu_future_date", "日期不能晚于今天（{today}）", {"today": today.isoformat()}
        )
    return v


def _two_decimals(v: float) -> float:
    # repr gives the shortest decimal that round-trips, i.e. what the JSON text said.
    if Decimal(repr(v)).as_tuple().exponent < -2:
        raise PydanticCustomError("yagu_money_decimals", "金额最多保留两位小数")
    return v


def _uscc(v: str) -> str:
    try:
        return validate_uscc(v)
    except ValueError as e:
        raise PydanticCustomError("yagu_uscc", str(e)) from None


_INDUSTRY = re.compile(r"^[A-T][0-9]{2,4}$")


def _industry_code(v: str) -> str:
    code = v.upper()
    if not _INDUSTRY.match(code):
        raise PydanticCustomError(
            "yagu_industry_code",
            "行业代码应为一个字母（A–T）加 2 至 4 位数字，例如 C3589",
        )
    return code


PastDate = Annotated[date, BeforeValidator(_parse_iso_date), AfterValidator(_not_future)]
Money = Annotated[float, AfterValidator(_two_decimals)]
NonNegMoney = Annotated[float, Field(ge=0), AfterValidator(_two_decimals)]
Share = Annotated[float, Field(ge=0, le=1)]
NonNegInt = Annotated[int, Field(ge=0)]

_CONFIG = ConfigDict(
    strict=True,
    extra="ignore",
    allow_inf_nan=False,
    str_strip_whitespace=True,
)


# --- models ------------------------------------------------------------------------


class HnteCertificate(BaseModel):
    """高新技术企业证书."""

    model_config = _CONFIG

    number: Optional[str] = Field(None, description="证书编号")
    issued_on: Optional[PastDate] = Field(None, description="发证日期")


class DeviceRegistration(BaseModel):
    """医疗器械注册证 or 第一类备案凭证."""

    model_config = _CONFIG

    certificate_no: Annotated[str, Field(min_length=1, description="注册证编号或备案编号")]
    product_name: Optional[str] = Field(None, description="产品名称")
    device_class: Optional[DeviceClass] = Field(None, description="管理类别；可省略，由编号推断")
    origin: Optional[Literal["self_developed", "introduced"]] = Field(None, description="self_developed 自主研发 / introduced 引进")
    obtained_on: Optional[PastDate] = Field(None, description="取得日期")
    innovative: Optional[bool] = Field(None, description="经创新医疗器械特别审查程序")

    @field_validator("device_class")
    @classmethod
    def _class_matches_number(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        number = info.data.get("certificate_no")
        if v is None or number is None:
            return v
        parsed = parse_certificate_no(number)
        if parsed is not None and parsed.device_class != v:
            raise PydanticCustomError(
                "yagu_class_mismatch",
                "管理类别 {given} 与编号 {number} 所示的{stated}（{stated_code}）不符",
                {
                    "given": v,
                    "number": number,
                    "stated": _CLASS_NAMES[parsed.device_class],
                    "stated_code": parsed.device_class,
                },
            )
        return v

    @property
    def parsed(self) -> ParsedCertNo | None:
        """Parts of the number; None when the number does not follow a known format."""
        return parse_certificate_no(self.certificate_no)

    @property
    def effective_class(self) -> DeviceClass | None:
        """The stated class, else the class the number states, else unknown."""
        if self.device_class is not None:
            return self.device_class
        p = self.parsed
        return p.device_class if p is not None else None


class Violation(BaseModel):
    """违法违规及处罚记录."""

    model_config = _CONFIG

    kind: Optional[
        Literal[
            "tax_evasion",
            "refund_fraud",
            "export_refund_fraud",
            "false_vat_invoice",
            "market_minor",
            "other",
        ]
    ] = Field(None, description="违法违规类型")
    decided_on: Optional[PastDate] = Field(None, description="处罚或认定日期")
    description: Optional[str] = Field(None, description="说明")


_HNTE_OBJECT, _HNTE_FALSE = "hnte_object", "hnte_false"  # union tags, dropped from paths


def _hnte_tag(v: Any) -> str | None:
    if v is False:
        return _HNTE_FALSE
    if isinstance(v, (dict, HnteCertificate)):
        return _HNTE_OBJECT
    return None  # true, strings, numbers …: reported by the translator below


HnteField = Annotated[
    Union[
        Annotated[HnteCertificate, Tag(_HNTE_OBJECT)],
        Annotated[Literal[False], Tag(_HNTE_FALSE)],
    ],
    Discriminator(
        _hnte_tag,
        custom_error_type="yagu_hnte_type",
        custom_error_message="必须是对象（含 number、issued_on）、false（未持有）或 null（未知）",
    ),
]


def _duplicate_numbers(numbers: list[Any]) -> list[tuple[int, int, str]]:
    """(later index, first index, number) for every repeated certificate number."""
    first: dict[str, int] = {}
    dups = []
    for i, n in enumerate(numbers):
        if not isinstance(n, str):
            continue
        key = n.strip()
        if key in first:
            dups.append((i, first[key], key))
        else:
            first[key] = i
    return dups


def _duplicate_message(first_index: int, number: str) -> str:
    return f"注册证编号 {number} 与 device_registrations[{first_index}] 重复"


class Profile(BaseModel):
    """Enterprise profile (企业画像), shared/contract/profile.md."""

    model_config = _CONFIG

    uscc: Annotated[str, AfterValidator(_uscc), Field(description="统一社会信用代码")]
    name: Annotated[str, Field(min_length=1, max_length=200, description="企业名称")]
    in_park: Optional[bool] = Field(None, description="注册地在资阳高新区（中国牙谷）")
    industry_code: Optional[Annotated[str, AfterValidator(_industry_code)]] = Field(None, description="国民经济行业分类代码（GB/T 4754-2017），如 C3589")
    established_on: Optional[PastDate] = Field(None, description="成立日期")
    tax_collection: Optional[Literal["audit", "deemed"]] = Field(None, description="征收方式：audit 查账征收 / deemed 核定征收")
    employees_avg: Optional[NonNegInt] = Field(None, description="全年季度平均从业人数")
    total_assets_avg_cny: Optional[NonNegMoney] = Field(None, description="全年季度平均资产总额（元）")
    taxable_income_cny: Optional[Money] = Field(None, description="年度应纳税所得额（元），可为负数")
    restricted_industry: Optional[bool] = Field(None, description="从事国家限制或禁止行业")
    rd_excluded_industry: Optional[bool] = Field(None, description="属研发费用加计扣除负面清单行业且收入占比超过50%")
    rd_expense_cny: Optional[NonNegMoney] = Field(None, description="当年研发费用（元）")
    four_industries_sales_share: Optional[Share] = Field(None, description="近12个月四类行业增值税销售额占比（0–1）")
    vat_credit_positive_months: Optional[NonNegInt] = Field(None, description="连续期末留抵税额大于零的月数")
    vat_credit_increase_cny: Optional[Money] = Field(None, description="第6个月期末留抵税额较上年末新增额（元）")
    tax_credit_rating: Optional[Literal["A", "B", "M", "C", "D"]] = Field(None, description="纳税信用级别")
    immediate_refund_since_2019_04: Optional[bool] = Field(None, description="2019年4月1日起享受过即征即退、先征后返（退）")
    hnte_certificate: Optional[HnteField] = Field(None, description="高新技术企业证书；false = 未持有，null = 未知")
    western_encouraged_share: Optional[Share] = Field(None, description="西部地区鼓励类产业项目主营业务收入占比（0–1）")
    export_refund_class: Optional[Annotated[int, Field(ge=0, le=4)]] = Field(None, description="出口退（免）税企业分类（1–4），0 = 非出口企业")
    on_serious_dishonest_list: Optional[bool] = Field(None, description="被列入严重失信主体名单")
    device_registrations: Optional[list[DeviceRegistration]] = Field(None, description="医疗器械注册证及第一类备案凭证；[] = 没有，null = 未知")
    violations: Optional[list[Violation]] = Field(None, description="违法违规及处罚记录；[] = 没有，null = 未知")

    @field_validator("device_registrations")
    @classmethod
    def _unique_numbers(cls, v: Optional[list[DeviceRegistration]]):
        if v:
            dups = _duplicate_numbers([r.certificate_no for r in v])
            if dups:
                later, first, number = dups[0]
                raise PydanticCustomError(
                    "yagu_duplicate_certificate_no",
                    "device_registrations[{later}]：" + _duplicate_message(first, number),
                    {"later": later},
                )
        return v

    def profile_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the profile, for decision records."""
        return hashlib.sha256(canonical_json(self.model_dump(mode="json")).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text kept as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- errors ------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str  # contract path, e.g. device_registrations[0].obtained_on; "" = the whole profile
    message: str  # Chinese


class ProfileError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(
            "企业画像有 {} 处问题：\n{}".format(
                len(problems),
                "\n".join(f"{p.path or '（根）'}：{p.message}" for p in problems),
            )
        )


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in (_HNTE_OBJECT, _HNTE_FALSE):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out








_FIELD_ORDER = {name: i for i, name in enumerate(Profile.model_fields)}


def _order(problem: Problem) -> tuple:
    """Contract field order, then list index, so related problems sit together."""
    m = re.match(r"^([a-z0-9_]*)(?:\[(\d+)\])?", problem.path)
    head, index = m.group(1), m.group(2)
    return (_FIELD_ORDER.get(head, -1), int(index) if index else -1)





def parse_profile(data: Any, today: date | None = None) -> Profile:
    """Validate user input into a Profile, or raise ProfileError listing every problem."""
    if isinstance(data, Profile):
        data = data.model_dump(mode="json")
    if not isinstance(data, dict):
        raise ProfileError([Problem("", f"企业画像必须是 JSON 对象，不能是{kind_of(data)}")])
    ref = today or shanghai_today()
    problems: list[Problem] = []

    # Duplicates are checked on the raw input so they are reported even when other
    # entries fail (pydantic skips a list's validator once an item has failed).
    regs = data.get("device_registrations")
    dup_paths = []
    if isinstance(regs, list):
        numbers = [r.get("certificate_no") if isinstance(r, dict) else None for r in regs]
        for later, first, number in _duplicate_numbers(numbers):
            path = f"device_registrations[{later}].certificate_no"
            dup_paths.append(Problem(path, _duplicate_message(first, number)))

    try:
        profile = Profile.model_validate(data, context={CONTEXT_TODAY: ref})
    except ValidationError as e:
        for err in e.errors():
            if err["type"] == "yagu_duplicate_certificate_no":
                continue  # reported per entry above
            problems.append(Problem(_path(err["loc"]), pydantic_message(err)))
        profile = None
    problems.extend(dup_paths)
    if problems:
        raise ProfileError(sorted(problems, key=_order))  # stable: pydantic order kept
    assert profile is not None
    return profile
