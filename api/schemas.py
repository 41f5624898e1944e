"""The HTTP contract's own models: request bodies (with their bounds), the response records the
store and the engine do not already define, and the OpenAPI examples — the response examples
are computed by the engine from EXAMPLE_PROFILE, so /docs shows what the API really answers.

Every request value is bounded here, the same way on every endpoint: dates are YYYY-MM-DD
between DATE_MIN and DATE_MAX (no time part), ids and counters fit a database integer, and
no text carries a NUL character.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from pydantic_core import PydanticCustomError

from engine import Evaluator
from engine.vocabulary import APPLICATION_STATE, KIND, STATUS
from store.notices import KINDS as NOTICE_KINDS
from store.views import AwardView, Totals

EXAMPLE_AS_OF = date(2026, 3, 31)
EXAMPLE_PROFILE: dict[str, Any] = {
    "uscc": "91512000MA62XY001U",
    "name": "资阳示例口腔医疗器械有限公司",
    "in_park": True,
    "industry_code": "C3589",
    "tax_collection": "audit",
    "employees_avg": 120,
    "total_assets_avg_cny": 30000000,
    "taxable_income_cny": 2400000,
    "restricted_industry": False,
    "rd_excluded_industry": False,
    "rd_expense_cny": 1800000,
    "tax_credit_rating": "A",
    "hnte_certificate": False,
    "western_encouraged_share": 0.8,
    "on_serious_dishonest_list": False,
    "device_registrations": [
        {"certificate_no": "川械注准20252170031", "product_name": "无托槽隐形矫治器",
         "origin": "self_developed", "obtained_on": "2025-10-15"}
    ],
    "violations": [],
}
EXAMPLE_REQUEST = {"profile": EXAMPLE_PROFILE, "as_of": EXAMPLE_AS_OF.isoformat()}
PROFILE_DESCRIPTION = ("企业画像（字段见 docs/profile.md）：`null` 或缺省表示未知，未知事实使相关条件为"
                       "“待补充”而非“不满足”；不认识的字段会被指出，并提示最接近的字段名。")

# --- bounded values, one definition for every endpoint ------------------------------------------
DATE_MIN, DATE_MAX = date(2000, 1, 1), date(2100, 12, 31)
DATE_RANGE = f"日期应在 {DATE_MIN.isoformat()} 至 {DATE_MAX.isoformat()} 之间"
MAX_ID = 2 ** 31 - 1            # a database integer: row ids, revisions, offsets
NUL_MESSAGE = "不能包含空字符（\\u0000）"      # the profile validator's words (engine.profile)
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _day(v: Any) -> Any:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if not isinstance(v, str) or not _ISO_DAY.match(v):
        raise PydanticCustomError("yagu_date", "必须是“年-月-日”格式的日期（如 2026-03-31），不能带时间")
    try:
        d = date.fromisoformat(v)
    except ValueError:
        raise PydanticCustomError("yagu_date", "不是有效的日期：{value}", {"value": v}) from None
    if not DATE_MIN <= d <= DATE_MAX:
        raise PydanticCustomError("yagu_date", DATE_RANGE)
    return d


def parse_day(raw: str) -> date:
    """A date as every endpoint and form reads it; ValueError with the Chinese message."""
    try:
        return _day(raw)
    except PydanticCustomError as e:
        raise ValueError(e.message()) from None


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise PydanticCustomError("yagu_nul", NUL_MESSAGE)
    return v


Day = Annotated[date, BeforeValidator(_day)]
Text = Annotated[str, AfterValidator(_no_nul)]
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="编号")]
WindowId = Annotated[str, Path(max_length=32, description="申报批次编号，例如 2026-H1")]
ApplicationId = Annotated[str, Path(max_length=32, description="申报编号（受理时发放）")]
JobId = Annotated[str, Path(max_length=32, description="任务编号（提交任务时返回）")]
RuleId = Annotated[str, Path(max_length=64, description="事项编号，见 GET /v1/rules")]
FileName = Annotated[str, Path(max_length=200, description="文件名，见任务的 files")]
Revision = Annotated[int, Field(ge=0, le=MAX_ID)]
REVISION_TEXT = "所依据的申报版本（并发保护：版本已变时返回 409，写明当前状态）"
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="跳过前多少条")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------------
class EligibilityRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {**EXAMPLE_REQUEST, "benefits": ["device-registration-grant", "small-low-profit-cit"]}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    as_of: Optional[Day] = Field(None, description="判定日期（YYYY-MM-DD），缺省为北京时间今天")
    benefits: Optional[list[Annotated[Text, Field(max_length=64)]]] = Field(
        None, max_length=100, description="只判定这些事项（事项编号），缺省为全部")
    tax_year: Optional[int] = Field(None, ge=2018, le=2100,
                                    description="税收优惠按哪个纳税年度判定；缺省为判定日期所在的汇算清缴期对应的年度")


class TaxSelfAssessmentRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"profile": EXAMPLE_PROFILE, "tax_year": EXAMPLE_AS_OF.year - 1}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    tax_year: int = Field(ge=2018, le=2100, description="纳税年度（2018 年起），例如 2025")


class WindowCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "2026-H1", "label": "2026年上半年集中申报", "opens_on": "2026-03-01", "closes_on": "2026-03-31",
        "as_of": "2026-03-31", "coverage_from": "2025-10-01", "coverage_to": "2026-03-31"}]})

    # Bounds the store checks with the dates and amounts (one answer lists every problem) are
    # documented here, not enforced twice: enforced here, they were said alone.
    id: Text = Field(description="申报批次编号，例如 2026-H1（有默认日历的编号可省略日期）",
                     json_schema_extra={"minLength": 1, "maxLength": 32, "pattern": r"^[0-9A-Za-z][0-9A-Za-z_.-]*$"})
    label: Optional[Text] = Field(None, description="批次名称", json_schema_extra={"maxLength": 100})
    opens_on: Optional[Day] = Field(None, description="受理开始日")
    closes_on: Optional[Day] = Field(None, description="受理截止日")
    as_of: Optional[Day] = Field(None, description="判定日期，缺省为受理截止日")
    coverage_from: Optional[Day] = Field(None, description="本批次覆盖的取证起始日")
    coverage_to: Optional[Day] = Field(None, description="本批次覆盖的取证截止日")
    correction_workdays: Optional[int] = Field(None, description="补正期限（工作日）",
                                               json_schema_extra={"minimum": 1, "maximum": 60})
    publicity_workdays: Optional[int] = Field(None, description="公示期（工作日）",
                                              json_schema_extra={"minimum": 1, "maximum": 60})
    amounts: Optional[dict[str, Any]] = Field(
        None, description="本批次通知确定的参数（参数编号或“事项编号.参数编号” → 取值），覆盖规则中的参考值；"
                          "查表参数（如 grant_amounts）须给出与规则相同结构的对象")


class ApplicationCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "profile": EXAMPLE_PROFILE, "claims": ["川械注准20252170031"]}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    claims: Optional[list[Annotated[Text, Field(max_length=100)]]] = Field(
        None, max_length=500, description="申报的注册证编号；缺省为画像中的全部注册证。列出了全部注册证的，按缺省保存：申报详情的 claims 为 null")


class ReviewRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "benefit_id": "device-registration-grant", "subject_id": "川械注准20252170031", "action": "override",
        "status": "eligible", "reason": "企业补交的研发记录证明产品为自主研发", "revision": 3}]})

    benefit_id: Text = Field(max_length=64, description="事项编号")
    subject_id: Text = Field("", max_length=100, description="注册证编号；按企业判定的事项为空")
    action: Literal["confirm", "override"] = Field(description="confirm 维持判定；override 改变判定（须写理由）")
    status: Optional[Literal["eligible", "ineligible"]] = Field(None, description="改变后的结论")
    reason: Optional[Text] = Field(None, max_length=2000, description="理由")
    amount_cny: Optional[Decimal] = Field(
        None, description="支持金额（元，最多两位小数）：仅当规则未能计算金额、复核结论为符合条件时填写，且此时必填")
    revision: Optional[Revision] = Field(None, description=REVISION_TEXT)


class MaterialReview(_Strict):
    accept: StrictBool = Field(description="true 通过；false 不通过（须写理由，期限内重新开放补正）")
    reason: Optional[Text] = Field(None, max_length=1000, description="不通过的理由")
    revision: Optional[Revision] = Field(None, description=REVISION_TEXT)


class Objection(_Strict):
    text: Text = Field(min_length=1, max_length=2000, description="异议内容")


class ObjectionResolution(_Strict):
    resolution: Text = Field(min_length=1, max_length=2000, description="处理意见（需要改变结论的，先复核）")


class AccessCodeRequest(_Strict):
    reason: Text = Field(min_length=2, max_length=500,
                         description="重新生成的原因和核验来人身份的方式（记入办理记录，不含查询码）")


class NewAccessCode(BaseModel):
    application_id: str = Field(description="申报编号")
    access_code: str = Field(description="新查询码：只返回这一次，原查询码已作废")


class AmountsRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"amounts": {"grant_amounts": {
        "false": {"self_developed": {"II": 300000, "III": 500000}, "introduced": {"II": 150000, "III": 250000}},
        "true": {"self_developed": {"II": 1000000, "III": 2000000}, "introduced": {"II": 500000, "III": 1000000}}}}}]})

    amounts: dict[str, Any] = Field(description="当期申报通知确定的参数（如 grant_amounts），与规则中的参数结构相同")


class CloseRequest(_Strict):
    reason: Optional[Text] = Field(None, max_length=500, description="公示期未满时提前关闭的理由（必填）")


class ImpactRequest(_Strict):
    rules_dir: Optional[Text] = Field(None, max_length=500, description=(
        "另一套规则：服务器上规则草稿目录（数据目录下的 rules-drafts，或 YAGU_RULES_DRAFTS）中的一个目录名；"
        "其他路径不受理（422）"))
    as_of: Optional[Day] = Field(None, description="另一个判定日期")


# the notices of an application (a self-check is printed from its web page; it is no notice)
APPLICATION_NOTICES = {k: v for k, v in NOTICE_KINDS.items() if v.char}
NoticeKindId = Literal[tuple(APPLICATION_NOTICES)]  # type: ignore[valid-type]


class NoticeRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "application_id": "A1F3C9D2E4B5A6978", "kind": "one_time", "format": "pdf"}]})

    application_id: Text = Field(min_length=1, max_length=32, description="申报编号")
    kind: NoticeKindId = Field(description="告知书类型：" + "，".join(f"{k} {v.title}" for k, v in APPLICATION_NOTICES.items()))
    format: Literal["html", "pdf"] = Field("html", description="输出格式")


class TokenCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "staff", "label": "受理窗口", "days": 180}]})

    role: Literal["staff", "admin"] = Field(description="角色：staff 经办人员，admin 管理员")
    label: Text = Field(min_length=1, max_length=100, description="用途说明，例如使用人")
    days: int = Field(365, ge=1, le=3650, description="有效期（天）；到期后令牌不能再使用，需新建")


ApplicationState = Literal[tuple(APPLICATION_STATE)]  # type: ignore[valid-type]
Status = Literal[tuple(STATUS)]  # type: ignore[valid-type]


# --- responses the store and the engine do not define ----------------------------------------------
class Health(BaseModel):
    status: str = Field(description="ok")
    database: str = Field(description="ok：数据库可读写")
    ruleset_version: str = Field(description="现行规则版本")


class RuleSummary(BaseModel):
    id: str
    title: str
    kind: str = Field(description="类别：" + " / ".join(f"{k} {v}" for k, v in KIND.items()))
    unit: str = Field(description="判定单位：enterprise 企业 / certificate 注册证（逐证判定）/ case 违法行为（逐项办理）")
    in_force: dict[str, Optional[date]] = Field(description="有效期：from 起，to 止（null 为未定）")
    legal_basis: list[dict[str, Any]]


class JobRef(BaseModel):
    job_id: str = Field(description="任务编号；进度见 GET /v1/jobs/{job_id}")


class Recorded(BaseModel):
    """What a POST that records something answers: 201 when it was recorded now, 200 when the
    same request had already been recorded (a retry after a timeout) and nothing was added."""
    id: int = Field(description="记录编号（复核、材料或异议的编号，与申报详情中的 id 相同）")
    created: bool = Field(description="true：本次新登记；false：同一内容此前已登记（重复提交），本次未重复登记")


class Issued(BaseModel):
    issued: int = Field(description="本次发出的一次性告知书份数")


class DecisionTable(BaseModel):
    title: str
    headers: list[str]
    rows: list[list[Any]] = Field(description="每行对应 headers 的各列")


class ProactiveBenefit(BaseModel):
    benefit_id: str
    title: str
    subject_id: str
    amount_cny: Optional[float] = None
    amount_provisional: bool = False


class ProactiveEntry(BaseModel):
    uscc: str
    name: str
    benefits: list[ProactiveBenefit]
    total_amount_cny: float
    amount_provisional: bool


class HeldAward(BaseModel):
    application_id: str = Field(description="申报编号")
    enterprise_name: str = Field(description="企业名称")
    benefit_id: str = Field(description="事项编号")
    subject_id: str = Field(description="注册证编号（企业级事项为空）")
    materials: list[str] = Field(description="未通过审核的材料名称")


class PendingMaterials(BaseModel):
    application_id: str
    enterprise_name: str
    materials: list[str] = Field(description="尚未审核的材料（名称）")


class OpenCommitment(BaseModel):
    application_id: str
    enterprise_name: str
    material: str = Field(description="承诺补交的材料（名称）")
    due_on: date = Field(description="承诺期限")


class OpenObjection(BaseModel):
    id: int = Field(description="异议编号")
    application_id: str = Field(description="申报编号")
    enterprise_name: str = Field(description="企业名称")
    text: str = Field(description="异议内容")
    raised_at: datetime = Field(description="登记时间")


class ClosePreview(BaseModel):
    awards: int = Field(description="将写入兑现台账的项数")
    amount_cny: float = Field(description="兑现金额合计（元）")
    already_awarded: int = Field(description="符合条件但已在其他批次兑现、不再支持的项数")
    provisional_awards: int = Field(0, description="其中金额为参考金额（没有正式文件确认、批次也未设定当期金额）的项数")
    provisional_criteria: list[str] = Field(default_factory=list, description=(
        "规则中的暂定条件（工作方案未规定、没有正式文件确认），附其来源：据此不予支持的，应以当期申报通知为依据"))
    provisional_amount_cny: float = Field(0, description="这些参考金额的合计（元）")
    non_support_notices: int = Field(description="将发出的不予支持告知书份数")
    early: bool = Field(description="公示期未满（提前关闭须写明理由）")
    stale: int = Field(description="未按现行规则判定的申报数（须先批量判定）")
    state: str = Field(description="批次当前状态")
    rejected_materials: list[HeldAward] = Field(
        default_factory=list, description="因材料未通过审核而暂不兑现（也不公示）的拟支持事项；须先审核补交的材料或复核")
    corrections_running: int = Field(0, description="补正期限尚未届满的申报数")
    corrections_until: Optional[date] = Field(None, description="其中最晚的补正期限")
    unreviewed_refusals: int = Field(0, description="将不予支持、但没有任何复核记录的申报数")
    pending_materials: int = Field(0, description="已上传、尚未审核的材料份数（关闭后不能再审核）")
    pending_material_applications: list[PendingMaterials] = Field(
        default_factory=list, description="这些材料所属的申报：申报编号、企业名称、各份材料的名称")
    unsupplied_commitments: list[OpenCommitment] = Field(
        default_factory=list, description="已签署容缺承诺、尚未补交的材料（关闭后企业仍可在承诺期限内补交）")
    open_objections: list[OpenObjection] = Field(
        default_factory=list, description="公示期登记、尚未写明处理意见的异议（处理前不能关闭）")
    blocked: list[str] = Field(default_factory=list, description="现在不能关闭的原因，每条一句；为空时可以关闭")


class CloseOutcome(BaseModel):
    window_id: str
    awards: list[AwardView]
    already_awarded: list[dict[str, Any]]
    non_support_notices: int
    totals: Totals


class ErrorItem(BaseModel):
    path: str = Field(description="出错的字段，例如 profile.uscc")
    message: str = Field(description="中文说明")
    label: str = Field("", description="出错字段的中文名称，可与说明一起显示给用户（例如“统一社会信用代码”“注册证第1项的来源”）；"
                                       "不对应某个字段时为空")


class ErrorBody(BaseModel):
    detail: str = Field(description="中文概述")
    errors: list[ErrorItem] = Field(description="每一处问题")


ERROR_TEXT = {400: "请求格式错误（JSON 无效、非 UTF-8）", 401: "未提供令牌或令牌无效", 403: "令牌无此权限",
              404: "未找到", 409: "状态冲突（说明写明当前状态）", 413: "请求体过大", 415: "内容类型不是 JSON",
              422: "数据校验未通过，列出每一处问题", 500: "服务器内部错误（例如规则引擎未能判定）",
              503: "数据库暂不可用，可稍后重试"}
ERROR_EXAMPLES = {
    400: "JSON 格式错误：第 1 行第 14 列",
    401: "未登录，或令牌无效、已过期、已吊销：请在 Authorization 头中提供有效的 Bearer 令牌",
    403: "无权限：此操作需要管理员角色",
    404: "申报批次 2026-H1 不存在",
    409: "申报批次 2026-H1 当前为“公示中”，不能再发出一次性告知书",
    413: "请求体过大：上限 2 MB（2097152 字节）",
    415: "请求体须为 JSON，Content-Type 应为 application/json（UTF-8）",
    422: "提交的数据有误，共 1 处问题",
    500: "规则引擎未能判定这份企业画像，本次请求未完成；服务仍在运行，请稍后重试或联系系统管理员",
    503: "数据库暂不可用（无法连接或写入数据库），本次操作未执行，请稍后重试；如持续出现，请联系系统管理员检查数据库",
}
FIELD_PROBLEM = {"path": "profile.uscc", "message": "统一社会信用代码校验码错误：第18位为 A，应为 U"}


def error_entry(code: int) -> dict:
    """The OpenAPI response entry of one error status: the uniform body and a real message."""
    example = {"detail": ERROR_EXAMPLES.get(code, "请求失败"), "errors": [FIELD_PROBLEM] if code == 422 else []}
    return {"description": ERROR_TEXT.get(code, "错误"), "model": ErrorBody,
            "content": {"application/json": {"example": example}}}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI response entries for the uniform error body."""
    return {c: error_entry(c) for c in codes}


def file_response(*media_types: str, description: str = "文件") -> dict[int | str, dict]:
    return {200: {"description": description, "content": {m: {} for m in media_types}}}


def live_examples(ev: Evaluator) -> dict[str, Any]:
    """Response examples computed by the engine: what POST /v1/eligibility answers for
    EXAMPLE_REQUEST (with an empty award ledger), the tax self-assessment of the year before, and
    the first rule file."""
    resp = ev.with_suggestions(EXAMPLE_PROFILE, ev.evaluate(EXAMPLE_PROFILE, EXAMPLE_AS_OF, awarded=set()),
                               awarded=set()).model_dump(mode="json")
    tax = ev.tax_self_assessment(EXAMPLE_PROFILE, EXAMPLE_AS_OF.year - 1).model_dump(mode="json")
    rule = next(iter(ev.book.benefits.values())).spec.model_dump(mode="json", by_alias=True)
    return {"/v1/eligibility": resp, "/v1/tax/self-assessment": tax, "/v1/rules/{rule_id}": rule}
