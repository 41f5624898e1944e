"""What the store returns to its callers: typed records (pydantic), used as the API's response
models as they are, so the HTTP contract, the console and the CLI read one definition."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from engine.vocabulary import APPLICATION_STATE, STATUS, WINDOW_STATE


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WindowCounts(_View):
    applications: int = Field(0, description="申报数")
    by_state: dict[str, int] = Field(default_factory=dict, description="各办理状态的申报数")
    correction_overdue: int = Field(0, description="其中“待补正”而补正期限已过、未补正的申报数")
    grant_decisions: dict[str, int] = Field(
        default_factory=dict, description="规则判定结论计数：资金支持事项按规则引擎的结论（不含复核改变，不含税收优惠）")
    grant_decisions_reviewed: dict[str, int] = Field(
        default_factory=dict, description="复核后结论计数：同上，复核改变了结论的按复核结论计")
    overridden: int = Field(0, description="复核改变了规则判定结论的项数")
    stale: int = Field(0, description="判定已过期（规则或画像有变化）的企业数")
    failed: int = Field(0, description="判定出错的企业数")
    awards: int = Field(0, description="已兑现项数")
    awards_total_cny: float = Field(0, description="已兑现金额（元）")


class WindowView(_View):
    id: str
    label: str
    opens_on: date
    closes_on: date
    as_of: date
    coverage_from: Optional[date]
    coverage_to: Optional[date]
    amounts: dict[str, Any] = Field(default_factory=dict, description="本批次覆盖的参数（如支持金额）")
    state: str = Field(description="open 受理中 / publicity 公示中 / closed 已关闭")
    state_text: str = ""
    ruleset_version: Optional[str] = None
    correction_workdays: int
    publicity_workdays: int
    publicity_from: Optional[date] = None
    publicity_until: Optional[date] = None
    created_at: Optional[datetime] = None
    evaluated_at: Optional[datetime] = None
    published_at: Optional[datetime] = None
    closed_at: Optional[datetime] = None
    close_reason: Optional[str] = None
    counts: Optional[WindowCounts] = None
    calendar_gap: Optional[str] = Field(None, description=(
        "本批次的补正期限、公示期等需要而尚未填写的年度节假日安排（为空表示齐全）：缺少时这些办理会被拒绝"))
    overlaps: list[str] = Field(default_factory=list, description=(
        "覆盖期与本批次重叠的其他批次（名称和覆盖期）：同一注册证会在两个批次都被判定和公示；"
        "兑现台账保证同一注册证只兑现一次"))

    def stage_text(self, today: date) -> str:
        """The window's stage as staff say it: an open window is 受理中 only within its
        acceptance period (受理中（受理期已结束） contradicted itself)."""
        if self.state != "open":
            return self.state_text
        if today < self.opens_on:
            return "尚未开始受理"
        if today > self.closes_on:
            if self.counts is not None and not self.counts.applications:
                return "受理期已结束，无申报"
            return "受理期已结束，待公示"
        return self.state_text

    def model_post_init(self, _ctx: Any) -> None:
        self.state_text = WINDOW_STATE.get(self.state, self.state)


class Submitted(_View):
    application_id: str
    access_code: str = Field(description="查询码：只显示这一次")
    window_id: str
    state: str
    replaced: bool = Field(False, description="再次提交：申报已更新为本次提交的内容，此前的查询码已作废")


class ApplicationRow(_View):
    """A line of the console's application list."""
    application_id: str
    uscc: str
    enterprise_name: str
    channel: str
    state: str
    state_text: str
    submitted_at: datetime
    correction_due: Optional[date] = None
    grant_statuses: dict[str, int] = Field(default_factory=dict)
    reviewed: bool = False
    review_changes: dict[str, int] = Field(default_factory=dict)   # verdicts 复核 changed to, counted
    pending_materials: int = 0


class EventView(_View):
    at: datetime
    actor: str = Field(description="经办人（企业查看时为空）")
    action: str
    action_text: str
    from_state: Optional[str] = None
    to_state: Optional[str] = None
    details: Optional[dict] = Field(None, description="经办记录的细节（企业查看时不提供）")


class MaterialView(_View):
    id: int
    material_id: str
    benefit_id: str
    subject_id: str = Field("", description="所属注册证编号；按企业判定的事项（或早期上传、未记录注册证的）为空")
    name: str
    filename: str
    size: int
    content_type: str
    uploaded_at: datetime
    uploaded_by: str = Field(description="上传人（企业查看时为空）")
    state: str
    state_text: str
    reason: Optional[str] = None


class CommitmentView(_View):
    """容缺承诺: a material promised for later, by whom and until when."""
    material_id: str
    name: str
    subject_id: str = ""
    signer: str
    signed_at: datetime
    due_on: date
    supplied: bool = Field(False, description="承诺的材料已补交（签署后上传、未被审核为不通过）")


class ReviewView(_View):
    id: int = Field(description="复核记录编号（复核接口返回的 id）")
    benefit_id: str
    subject_id: str
    engine_status: str
    status: str
    reason: Optional[str]
    actor: str = Field(description="复核人（企业查看时为空）")
    at: datetime
    amount_cny: Optional[float] = Field(None, description="复核确定的支持金额（规则未能计算金额的事项改为符合条件时）")


class NoticeRef(_View):
    kind: str
    title: str
    number: str
    issued_on: date


class AwardView(_View):
    uscc: str
    enterprise_name: str
    application_id: str
    benefit_id: str
    title: str = ""
    subject_id: str
    amount_cny: Optional[float] = None
    amount_provisional: bool = False
    device_class: Optional[str] = None
    origin: Optional[str] = None
    channel: Optional[str] = None
    amount_reviewed: bool = False       # stated by 复核 (the rules gave no amount)
    device_class_text: str = Field("", description="管理类别（文字）")
    origin_text: str = Field("", description="来源（文字）")
    channel_text: str = Field("", description="申报渠道（文字）")


class Totals(_View):
    count: int
    amount_cny: float
    provisional_count: int
    by_class: dict[str, dict] = Field(default_factory=dict)
    by_origin: dict[str, dict] = Field(default_factory=dict)
    by_benefit: dict[str, dict] = Field(default_factory=dict)


class AwardList(_View):
    window: WindowView
    final: bool = Field(description="true = 已关闭批次的兑现名单；false = 拟支持名单（未关闭）")
    awards: list[AwardView]
    already_awarded: list[dict] = Field(default_factory=list,
                                        description="符合条件但该注册证已在其他批次兑现的")
    totals: Totals


def status_text(status: str) -> str:
    return STATUS.get(status, status)


CORRECTION_EXPIRED = "补正期限已过"     # state `correction` once its deadline has passed


def correction_expired(state: str, correction_due: date | None, today: date | None) -> bool:
    return state == "correction" and correction_due is not None and today is not None and today > correction_due


def state_text(state: str, correction_due: date | None = None, today: date | None = None) -> str:
    """An application's state in words; 待补正 whose deadline has passed reads 补正期限已过."""
    if correction_expired(state, correction_due, today):
        return CORRECTION_EXPIRED
    return APPLICATION_STATE.get(state, state)
