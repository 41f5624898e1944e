"""Thin glue between routes and the engine: limits, parsing, evaluation off the event loop."""
from __future__ import annotations

from datetime import date
from typing import Any, Optional

from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.runtime import Runtime, today


def check_profile_limits(profile: Any, rt: Runtime, prefix: str = "profile") -> None:
    """Refuse oversized lists before the (costly) profile validation runs."""
    if not isinstance(profile, dict):
        return
    problems = []
    for key, limit in (("device_registrations", rt.settings.max_certificates),
                       ("violations", rt.settings.max_violations)):
        items = profile.get(key)
        if isinstance(items, list) and len(items) > limit:
            problems.append((f"{prefix}.{key}", f"条目过多：{len(items)} 条，上限 {limit} 条"))
    if problems:
        raise ApiError(422, "企业画像超出限制", problems)


def benefit_problems(benefits: Optional[list[str]], rt: Runtime) -> list[tuple[str, str]]:
    if benefits is None:
        return []
    known = rt.benefit_ids()
    return [(f"benefits[{i}]", f"未知的政策编号：{b}（可用：{'、'.join(sorted(known))}）")
            for i, b in enumerate(benefits) if b not in known]


def parse(profile: Any, rt: Runtime, extra: list[tuple[str, str]] | None = None):
    """The Profile, or one 422 listing every problem of the profile and of `extra`."""
    from engine.profile import ProfileError, parse_profile
    problems = list(extra or [])
    try:
        p = parse_profile(profile, rt.evaluator.registry)
    except ProfileError as e:
        problems = [(f"profile.{x.path}" if x.path and not x.path.startswith("[") else
                     f"profile{x.path}", x.message) for x in e.problems] + problems
        p = None
    if problems:
        raise ApiError(422, f"提交的数据有误，共 {len(problems)} 处问题", problems)
    return p


def _eligibility_sync(rt: Runtime, profile: Any, as_of: date, benefits):
    p = parse(profile, rt, benefit_problems(benefits, rt))
    # The grant's "never awarded before" criterion is answered by the award ledger; if the
    # store cannot answer, the engine reports it as unknown.
    return rt.evaluator.evaluate(p, as_of=as_of, benefits=benefits, awarded=rt.ledger())


async def eligibility(rt: Runtime, profile: Any, as_of: Optional[date],
                      benefits: Optional[list[str]]):
    check_profile_limits(profile, rt)
    return await run_in_threadpool(_eligibility_sync, rt, profile, as_of or today(), benefits)


def _tax_sync(rt: Runtime, profile: Any, tax_year: int):
    p = parse(profile, rt)
    return rt.evaluator.tax_self_assessment(p, tax_year=tax_year)


async def tax_self_assessment(rt: Runtime, profile: Any, tax_year: int):
    check_profile_limits(profile, rt)
    return await run_in_threadpool(_tax_sync, rt, profile, tax_year)
