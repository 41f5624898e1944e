"""Result models: the contract's eligibility response (shared/contract/api.md), plus fields
the notices and pages need (threshold, materials per criterion, window, notes)."""
from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["eligible", "ineligible", "needs_info", "not_in_force"]
Outcome = Literal["pass", "fail", "unknown"]

STATUS_ZH = {"eligible": "符合条件", "ineligible": "不符合条件", "needs_info": "需补充信息",
             "not_in_force": "不在政策有效期内"}
OUTCOME_ZH = {"pass": "满足", "fail": "不满足", "unknown": "待补充"}
PROVISIONAL_NOTE = "参考金额，以当期申报通知为准"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Subject(_Model):
    type: Literal["certificate"]
    id: str


class CriterionResult(_Model):
    id: str
    text: str
    outcome: Outcome
    observed: dict[str, Any]
    threshold: str | None = None
    legal_basis: list[str]
    materials: list[str]


class MaterialRef(_Model):
    id: str
    name: str
    description: str | None = None
    proves: list[str]


class WindowRef(_Model):
    id: str
    label: str
    opens_on: date
    closes_on: date
    coverage_from: date
    coverage_to: date
    provisional: bool


class BenefitResult(_Model):
    benefit_id: str
    title: str
    kind: Literal["grant", "tax"]
    subject: Subject | None
    status: Status
    status_text: str
    amount_cny: float | None = None
    amount_provisional: bool = False
    amount_note: str | None = None
    criteria: list[CriterionResult]
    missing_facts: list[str]
    required_materials: list[MaterialRef]
    missing_materials: list[str]
    window: WindowRef | None = None
    note: str | None = None


class EligibilityResponse(_Model):
    as_of: date
    ruleset_version: str
    results: list[BenefitResult]


class TaxItem(BenefitResult):
    how_to_claim: str
    records_to_keep: list[str]
    keep_until: date


class Conflict(_Model):
    benefits: list[str]
    reason: str


class TaxSelfAssessment(_Model):
    tax_year: int
    as_of: date
    ruleset_version: str
    items: list[TaxItem]
    conflicts: list[Conflict]
