"""Reference interpreter of the condition language in plain Python (Kleene three-valued).

It is the test oracle for the durable_rules path (tests/test_engine_oracle.py) and the
baseline of bench/engine.py. `explain` also uses `missing_facts` to say which unknown facts
made a criterion unknown — the engine only reports outcomes.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from engine.conditions import All, Any_, Cond, Count, Not, Param
from engine.dates import resolve_date
from engine.facts import (ALREADY_AWARDED, CATALOGUE, LISTS, certificate_source,
                          enterprise_source, item_source)
from engine.profile import DeviceRegistration, Profile

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le,
    "gt": operator.gt, "gte": operator.ge,
}


@dataclass
class Ctx:
    profile: Profile
    as_of: date
    window: Any
    params: Callable[[str], Any]
    benefit: str = ""
    reg: DeviceRegistration | None = None
    reg_index: int = -1
    awarded: frozenset[str] | None = None
    counts: dict[int, tuple[int, int] | None] | None = None   # id(count node) → range, if known


def read(path: str, ctx: Ctx) -> Any:
    if path == ALREADY_AWARDED:
        if ctx.awarded is None or ctx.reg is None:
            return None
        return f"{ctx.benefit}|{ctx.reg.certificate_no}" in ctx.awarded
    d = CATALOGUE[path]
    return d.read(ctx.profile) if d.scope == "enterprise" else d.read(ctx.profile, ctx.reg)


def _rhs(v: Any, ctx: Ctx) -> Any:
    if isinstance(v, Param):
        return ctx.params(v.name)
    return resolve_date(v, ctx.as_of, ctx.window) if not hasattr(v, "value") else v.value


def _kleene_all(outs: list[str]) -> str:
    return FAIL if FAIL in outs else UNKNOWN if UNKNOWN in outs else PASS


def _kleene_any(outs: list[str]) -> str:
    return PASS if PASS in outs else UNKNOWN if UNKNOWN in outs else FAIL


def evaluate(c: Cond, ctx: Ctx, item: Any = None, item_list: str | None = None) -> str:
    if isinstance(c, All):
        return _kleene_all([evaluate(ch, ctx, item, item_list) for ch in c.children])
    if isinstance(c, Any_):
        return _kleene_any([evaluate(ch, ctx, item, item_list) for ch in c.children])
    if isinstance(c, Not):
        out = evaluate(c.child, ctx, item, item_list)
        return {PASS: FAIL, FAIL: PASS, UNKNOWN: UNKNOWN}[out]
    if isinstance(c, Count):
        return _count(c, ctx)
    x = LISTS[c.item_list][c.path].read(item) if c.item_list else read(c.path, ctx)
    rhs = [_rhs(v, ctx) for v in c.values]
    if x is None or any(r is None for r in rhs):
        return UNKNOWN
    if c.op == "in":
        ok = x in rhs
    elif c.op == "not_in":
        ok = x not in rhs
    elif c.op == "between":
        ok = rhs[0] <= x <= rhs[1]
    else:
        ok = _OPS[c.op](x, rhs[0])
    return PASS if ok else FAIL


def _count(c: Count, ctx: Ctx) -> str:
    items = getattr(ctx.profile, c.list)
    k = _rhs(c.value, ctx)
    if items is None or k is None:
        return UNKNOWN
    outs = [PASS if c.where is None else evaluate(c.where, ctx, it, c.list) for it in items]
    sure, maybe = outs.count(PASS), outs.count(UNKNOWN)
    # The count is some n in [sure, sure + maybe]: pass/fail only if every n agrees.
    holds = {_OPS[c.op](n, k) for n in range(sure, sure + maybe + 1)}
    return PASS if holds == {True} else FAIL if holds == {False} else UNKNOWN


def count_range(c: Count, ctx: Ctx) -> tuple[int, int] | None:
    if ctx.counts is not None and id(c) in ctx.counts:
        return ctx.counts[id(c)]     # already decided by the engine
    items = getattr(ctx.profile, c.list)
    if items is None:
        return None
    outs = [PASS if c.where is None else evaluate(c.where, ctx, it, c.list) for it in items]
    return outs.count(PASS), outs.count(PASS) + outs.count(UNKNOWN)


def missing_facts(c: Cond, ctx: Ctx, item: Any = None, item_list: str | None = None,
                  item_index: int = -1) -> list[str]:
    """Profile paths whose absence makes `c` unknown (only where it matters: a child that is
    already decided, or that cannot change its parent's outcome, asks for nothing)."""
    if evaluate(c, ctx, item, item_list) != UNKNOWN:
        return []
    if isinstance(c, (All, Any_)):
        return [p for ch in c.children for p in missing_facts(ch, ctx, item, item_list, item_index)]
    if isinstance(c, Not):
        return missing_facts(c.child, ctx, item, item_list, item_index)
    if isinstance(c, Count):
        items = getattr(ctx.profile, c.list)
        if items is None:
            return [c.list]
        return [p for j, it in enumerate(items) if c.where is not None
                for p in missing_facts(c.where, ctx, it, c.list, j)]
    if c.item_list:
        return [item_source(c.item_list, item_index, c.path)]
    if read(c.path, ctx) is None:
        if CATALOGUE[c.path].scope == "certificate":
            return [certificate_source(c.path, ctx.reg_index)]
        return [enterprise_source(c.path, ctx.profile)]
    return []
