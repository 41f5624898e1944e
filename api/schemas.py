"""Request models, and the examples of the OpenAPI document (/docs) — made from the engine's own
output when the app starts, so they cannot drift from what the API answers."""
from __future__ import annotations

from datetime import date
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from engine import Evaluator

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
PROFILE_DESCRIPTION = ("企业画像（字段见 docs/profile.md）：`null` 或缺省表示未知，未知事实使相关条件为"
                       "“待补充”而非“不满足”；不认识的字段会被指出。")
DATE_MIN, DATE_MAX = date(2000, 1, 1), date(2100, 12, 31)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EligibilityRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"profile": EXAMPLE_PROFILE, "as_of": EXAMPLE_AS_OF.isoformat(),
         "benefits": ["device-registration-grant", "small-low-profit-cit"]}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    as_of: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX,
                                  description="判定日期（YYYY-MM-DD），缺省为北京时间今天")
    benefits: Optional[list[str]] = Field(None, max_length=100, description="只判定这些事项（事项编号），缺省为全部")
    tax_year: Optional[int] = Field(None, ge=2018, le=2100,
                                    description="税收优惠按哪个纳税年度判定；缺省为判定日期所在的汇算清缴期对应的年度")


class TaxSelfAssessmentRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"profile": EXAMPLE_PROFILE, "tax_year": 2025}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    tax_year: int = Field(ge=2018, le=2100, description="纳税年度（2018 年起），例如 2025")


class WindowCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "2026-H1", "label": "2026年上半年集中申报", "opens_on": "2026-03-01", "closes_on": "2026-03-31",
        "as_of": "2026-03-31", "coverage_from": "2025-10-01", "coverage_to": "2026-03-31"}]})

    id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z_.-]*$",
                    description="申报批次编号，例如 2026-H1（有默认日历的编号可省略日期）")
    label: Optional[str] = Field(None, max_length=100, description="批次名称")
    opens_on: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX, description="受理开始日")
    closes_on: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX, description="受理截止日")
    as_of: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX, description="判定日期，缺省为受理截止日")
    coverage_from: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX, description="本批次覆盖的取证起始日")
    coverage_to: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX, description="本批次覆盖的取证截止日")
    correction_workdays: Optional[int] = Field(None, ge=1, le=60, description="补正期限（工作日）")
    publicity_workdays: Optional[int] = Field(None, ge=1, le=60, description="公示期（工作日）")
    amounts: Optional[dict[str, Any]] = Field(
        None, description="本批次通知确定的参数（参数编号或“事项编号.参数编号” → 取值），覆盖规则中的参考值；"
                          "查表参数（如 grant_amounts）须给出与规则相同结构的对象")


class ApplicationCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "profile": EXAMPLE_PROFILE, "claims": ["川械注准20252170031"]}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    claims: Optional[list[str]] = Field(None, max_length=500, description="申报的注册证编号；缺省为画像中的全部注册证")


class ReviewRequest(_Strict):
    benefit_id: str = Field(max_length=64, description="事项编号")
    subject_id: str = Field("", max_length=100, description="注册证编号；按企业判定的事项为空")
    action: Literal["confirm", "override"] = Field(description="confirm 维持判定；override 改变判定（须写理由）")
    status: Optional[Literal["eligible", "ineligible"]] = Field(None, description="改变后的结论")
    reason: Optional[str] = Field(None, max_length=2000, description="理由")
    revision: Optional[int] = Field(None, description="所依据的申报版本（并发保护：版本已变时返回 409）")


class MaterialReview(_Strict):
    accept: bool = Field(description="true 通过；false 不通过（须写理由，期限内重新开放补正）")
    reason: Optional[str] = Field(None, max_length=1000)
    revision: Optional[int] = None


class Objection(_Strict):
    text: str = Field(min_length=1, max_length=2000, description="异议内容")


class CloseRequest(_Strict):
    reason: Optional[str] = Field(None, max_length=500, description="公示期未满时提前关闭的理由（必填）")


class ImpactRequest(_Strict):
    rules_dir: Optional[str] = Field(None, max_length=500, description="另一套规则目录（服务器上的路径）")
    as_of: Optional[date] = Field(None, ge=DATE_MIN, le=DATE_MAX, description="另一个判定日期")


class NoticeRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "application_id": "A1F3C9D2E4B5A6978", "kind": "one_time", "format": "pdf"}]})

    application_id: str = Field(min_length=1, max_length=32, description="申报编号")
    kind: Literal["one_time", "award", "non_support", "tax_self_assessment"] = Field(
        description="告知书类型：one_time 一次性告知书，award 兑现通知书，non_support 不予支持告知书，"
                    "tax_self_assessment 税收优惠自行判别结果")
    format: Literal["html", "pdf"] = Field("html", description="输出格式")


class TokenCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "staff", "label": "受理窗口"}]})

    role: Literal["staff", "admin"] = Field(description="角色：staff 经办人员，admin 管理员")
    label: str = Field(min_length=1, max_length=100, description="用途说明，例如使用人")


ERROR_EXAMPLE = {"detail": "提交的数据有误，共 1 处问题",
                 "errors": [{"path": "profile.uscc", "message": "统一社会信用代码校验码错误：第18位为 A，应为 U"}]}


def error_responses(*codes: int) -> dict[int, dict]:
    """OpenAPI response entries for the uniform error body."""
    desc = {400: "请求格式错误（JSON 无效、非 UTF-8）", 401: "未提供令牌", 403: "令牌无此权限", 404: "未找到",
            409: "状态冲突", 413: "请求体过大", 415: "内容类型不是 JSON", 422: "数据校验未通过，列出每一处问题",
            503: "数据库暂不可用"}
    schema = {"type": "object", "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}}}}}
    return {c: {"description": desc.get(c, "错误"),
                "content": {"application/json": {"schema": schema, "example": ERROR_EXAMPLE}}}
            for c in codes}


def live_examples(ev: Evaluator) -> dict[str, Any]:
    """Response examples computed by the engine for EXAMPLE_PROFILE (the version elided)."""
    resp = ev.evaluate(EXAMPLE_PROFILE, EXAMPLE_AS_OF, awarded=set()).model_dump(mode="json")
    tax = ev.tax_self_assessment(EXAMPLE_PROFILE, EXAMPLE_AS_OF.year - 1).model_dump(mode="json")
    rule = next(iter(ev.book.benefits.values())).spec.model_dump(mode="json", by_alias=True)
    rule.pop("examples", None)
    return {"eligibility": resp, "tax": tax, "rule": rule}
