"""Request models and worked examples for the OpenAPI document (/docs)."""
from __future__ import annotations

from datetime import date
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

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

PROFILE_DESCRIPTION = (
    "企业画像（字段见 profile.md）：`null` 或缺省表示未知，未知事实使相关条件为“待补充”而非“不符合”。"
)


class EligibilityRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"profile": EXAMPLE_PROFILE, "as_of": "2026-03-31",
         "benefits": ["device-registration-grant", "small-low-profit-cit"]}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    as_of: Optional[date] = Field(None, description="判定基准日（YYYY-MM-DD），缺省为北京时间今天")
    benefits: Optional[list[str]] = Field(
        None, max_length=100, description="只判定这些政策（政策编号），缺省为全部政策")


class TaxSelfAssessmentRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"profile": EXAMPLE_PROFILE, "tax_year": 2025}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    # Retention rules (留存备查) in the shipped rules start with tax year 2018.
    tax_year: int = Field(ge=2018, le=2100, description="纳税年度（2018 年起），例如 2025")


# Window dates the shipped rules cover (tax notices read the year before as_of, from 2018).
MIN_DATE, MAX_DATE = date(2019, 1, 1), date(2099, 12, 31)


class WindowCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "2026-H1", "label": "2026年上半年集中申报", "opens_on": "2026-03-01",
        "closes_on": "2026-03-31", "as_of": "2026-03-31", "coverage_from": "2025-07-01",
        "coverage_to": "2025-12-31", "amounts": {}}]})

    id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z_.-]*$",
                    description="申报批次编号，例如 2026-H1")
    label: Optional[str] = Field(None, max_length=200, description="批次名称")
    opens_on: date = Field(ge=MIN_DATE, le=MAX_DATE, description="受理开始日")
    closes_on: date = Field(ge=MIN_DATE, le=MAX_DATE, description="受理截止日")
    as_of: date = Field(ge=MIN_DATE, le=MAX_DATE, description="判定基准日")
    coverage_from: date = Field(ge=MIN_DATE, le=MAX_DATE, description="本批次覆盖的取证起始日")
    coverage_to: date = Field(ge=MIN_DATE, le=MAX_DATE, description="本批次覆盖的取证截止日")
    amounts: Optional[dict[str, Any]] = Field(
        None, description="本批次通知确定的参数（参数编号或“政策编号.参数编号” → 取值），覆盖规则中的参考值；"
                          "查表参数（如 grant_amounts）须给出与规则相同结构的对象")


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "profile": EXAMPLE_PROFILE, "claims": ["川械注准20252170031"]}]})

    profile: dict[str, Any] = Field(description=PROFILE_DESCRIPTION)
    claims: Optional[list[str]] = Field(
        None, max_length=500, description="申报的注册证编号；缺省为画像中的全部注册证")


class NoticeRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "application_id": "A-2026-H1-000001", "kind": "one_time", "format": "html"}]})

    application_id: str = Field(min_length=1, max_length=100, description="申报编号")
    kind: Literal["one_time", "award", "non_support", "tax_self_assessment"] = Field(
        description="告知书类型：one_time 一次性告知书，award 拟支持通知，non_support 不予支持告知书，"
                    "tax_self_assessment 税收优惠自评表")
    format: Literal["html", "pdf"] = Field("html", description="输出格式")


class TokenCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "staff", "label": "受理窗口"}]})

    role: Literal["staff", "admin"] = Field(description="角色：staff 经办人员，admin 管理员")
    label: Optional[str] = Field(None, max_length=200, description="备注")


ERROR_EXAMPLE = {"detail": "提交的数据有误，共 1 处问题",
                 "errors": [{"path": "profile.uscc", "message": "统一社会信用代码校验位不正确"}]}


def error_responses(*codes: int) -> dict[int, dict]:
    """OpenAPI response entries for the uniform error body."""
    desc = {400: "请求格式错误（JSON 无效、非 UTF-8）", 401: "未提供令牌", 403: "令牌无此权限",
            404: "未找到", 409: "状态冲突", 413: "请求体过大", 415: "内容类型不是 JSON",
            422: "数据校验未通过，列出每一处问题"}
    schema = {"type": "object", "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}}}}}
    return {c: {"description": desc.get(c, "错误"),
                "content": {"application/json": {"schema": schema, "example": ERROR_EXAMPLE}}}
            for c in codes}
