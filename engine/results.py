"""Result records: the eligibility response of docs/api.md, plus fields the notices and pages
need (threshold, materials per criterion, window, notes).

Plain slotted dataclasses, not pydantic: a batch builds tens of thousands of them from data
the engine already validated, and pydantic construction cost more than the rule engine
itself. `model_dump(mode="json")` gives the contract's JSON (field order is stable).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any, Literal

Status = Literal["eligible", "ineligible", "needs_info", "not_in_force"]
Outcome = Literal["pass", "fail", "unknown"]


_FIELDS: dict[type, tuple[str, ...]] = {}     # record class → field names (filled below)


def to_json(v: Any) -> Any:
    """Plain JSON data (dicts, lists, ISO dates) of a record tree."""
    t = type(v)
    names = _FIELDS.get(t)
    if names is not None:
        return {n: to_json(getattr(v, n)) for n in names}
    if t is list:
        return [to_json(x) for x in v]
    if t is dict:
        return {k: to_json(x) for k, x in v.items()}
    if t is date:
        return v.isoformat()
    return v


def _shallow(v: Any) -> Any:
    """json.dumps hook: the C encoder walks lists and dicts; only records and dates come here."""
    names = _FIELDS.get(type(v))
    if names is not None:
        return {n: getattr(v, n) for n in names}
    if isinstance(v, date):
        return v.isoformat()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


class _Record:
    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return to_json(self)

    def model_dump_json(self) -> str:
        return json.dumps(self, default=_shallow, ensure_ascii=False)

    def model_copy(self, update: dict[str, Any] | None = None):
        return replace(self, **(update or {}))  # type: ignore[type-var]


@dataclass(slots=True)
class Subject(_Record):
    type: str          # the subject of a per-item benefit, e.g. certificate
    id: str            # its key, e.g. the certificate number


@dataclass(slots=True)
class CriterionResult(_Record):
    id: str
    text: str
    outcome: Outcome
    observed: dict[str, Any]
    threshold: str | None
    legal_basis: list[str]
    materials: list[str]
    provisional: bool = False       # a condition no official text sets (以当期申报通知为准)
    provisional_note: str | None = None   # where it comes from, in the rule file's words


@dataclass(slots=True)
class MaterialRef(_Record):
    id: str
    name: str
    description: str | None
    proves: list[str]


@dataclass(slots=True)
class WindowRef(_Record):
    id: str
    label: str
    opens_on: date
    closes_on: date
    coverage_from: date
    coverage_to: date
    provisional: bool


@dataclass(slots=True)
class Suggestion(_Record):
    """What would change a failed or unknown criterion, computed from the criterion itself:
    guidance, not a promise."""
    criterion: str | None        # the criterion it concerns (None: the benefit as a whole)
    text: str                    # plain Chinese, values in the reader's units
    fact: str | None = None      # the input to change or supply (a profile path)
    value: Any = None            # a single value that would make the criterion pass, if there is one


@dataclass(slots=True)
class RouteResult(_Record):
    id: str
    title: str
    binding: str              # must | may
    legal_basis: list[str]
    note: str | None
    criteria: list[str] = field(default_factory=list)   # the criteria this route rests on


@dataclass(slots=True)
class BenefitResult(_Record):
    benefit_id: str
    title: str
    kind: str
    subject: Subject | None
    status: Status
    status_text: str
    amount_cny: float | int | None
    amount_provisional: bool
    amount_note: str | None
    criteria: list[CriterionResult]
    missing_facts: list[str]
    required_materials: list[MaterialRef]
    missing_materials: list[str]
    window: WindowRef | None = None
    note: str | None = None
    tax_year: int | None = None     # the tax year a tax preference is judged for
    route: RouteResult | None = None                  # for benefits with alternative outcomes
    suggestions: list[Suggestion] = field(default_factory=list)   # what would change the verdict


@dataclass(frozen=True, slots=True)
class Verdict:
    """One benefit's decision with no words: what a decision record stores (store.decisions).
    The explanation around it (texts, citations, thresholds, materials) belongs to the
    ruleset and is rebuilt from it, so a batch that only stores decisions skips it."""
    benefit_id: str
    subject_id: str                 # "" for enterprise-level benefits
    kind: str
    status: str
    amount_cny: float | int | None
    amount_provisional: bool
    outcomes: str                   # one letter (p/f/u) per criterion, in the result's order
    observed: list[dict]
    missing_facts: list[str] | None   # None: not derived (a batch's record; rebuilt when worded)


OUTCOME_CODE = {"pass": "p", "fail": "f", "unknown": "u"}


@dataclass(slots=True)
class EligibilityResponse(_Record):
    as_of: date
    ruleset_version: str
    results: list[BenefitResult]


@dataclass(slots=True)
class TaxItem(BenefitResult):
    how_to_claim: str = ""
    records_to_keep: list[str] = field(default_factory=list)
    keep_until: date | None = None
    keep_until_note: str | None = None   # e.g. the calendar of that year is not published yet


@dataclass(slots=True)
class Conflict(_Record):
    benefits: list[str]
    reason: str
    choice: str | None = None     # which one costs less, where the taxable income is known


@dataclass(slots=True)
class TaxSelfAssessment(_Record):
    tax_year: int
    as_of: date
    ruleset_version: str
    items: list[TaxItem]
    conflicts: list[Conflict]


for _cls in (Subject, CriterionResult, MaterialRef, WindowRef, Suggestion, RouteResult, BenefitResult,
             EligibilityResponse, TaxItem, Conflict, TaxSelfAssessment):
    _FIELDS[_cls] = tuple(f.name for f in fields(_cls))
