"""The reference semantics of the condition language: a plain-Python interpreter with Kleene
three-valued logic.

It is the definition the durable_rules path is proven equal to (tests/test_engine_oracle.py),
and the explainer: for a criterion the engine reports as unknown it tells, in the same pass,
which facts are missing — the one-time notice's promise to name everything at once.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from engine.conditions import All, Any_, Compare, Cond, Count, FactDate, Not, Param
from engine.dates import resolve_date, shift_fact_date
from engine.profile import Profile
from engine.registry import AWARD_LEDGER, FieldRegistry

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le,
    "gt": operator.gt, "gte": operator.ge,
}


@dataclass
class Ctx:
    registry: FieldRegistry
    profile: Profile
    as_of: date
    window: Any
    params: Callable[[str], Any]
    benefit: str = ""
    subject: Any = None                 # the list item a per-subject result is about
    subject_list: str | None = None     # its list (device_registrations)
    subject_index: int = -1
    awarded: frozenset[str] | None = None
    counts: dict[int, tuple[int, int] | None] | None = None   # id(count node) → range, if known
    # the profile's facts already read for one profile's results, shared by its benefits
    reads: dict[str, Any] | None = None

    @property
    def subject_key(self) -> str:
        return self.registry.lists[self.subject_list].key_of(self.subject) if self.subject_list else ""


def read(path: str, ctx: Ctx) -> Any:
    fact = ctx.registry.facts[path]
    if fact.spec.derive == "award_ledger":
        if ctx.awarded is None or ctx.subject is None:
            return None
        return f"{ctx.benefit}|{ctx.subject_key}" in ctx.awarded
    return fact.read(ctx.profile if fact.scope == "enterprise" else ctx.subject)


_NO_PARAM = object()      # a parameter with no value in force on the date


def _rhs(v: Any, ctx: Ctx) -> Any:
    if isinstance(v, Param):
        return ctx.params(v.name)
    if isinstance(v, FactDate):
        years = ctx.params(v.years.name) if isinstance(v.years, Param) else None
        if isinstance(v.years, Param) and years is None:
            return _NO_PARAM
        return shift_fact_date(v, read(v.path, ctx), None if years is None else int(years))
    return resolve_date(v, ctx.as_of, ctx.window) if not hasattr(v, "value") else v.value


def _source(c: Compare, ctx: Ctx, item: Any, item_index: int) -> str:
    """The profile input whose absence made this leaf unknown."""
    if c.item_list:
        fact = ctx.registry.lists[c.item_list].items[c.path]
        return f"{c.item_list}[{item_index}].{fact.ask(item)}"
    fact = ctx.registry.facts[c.path]
    if fact.scope == "enterprise":
        return fact.ask(ctx.profile)
    asked = fact.ask(ctx.subject)
    return asked if asked == AWARD_LEDGER else f"{ctx.subject_list}[{ctx.subject_index}].{asked}"


def _anchor_source(path: str, ctx: Ctx) -> str:
    fact = ctx.registry.facts[path]
    if fact.scope == "enterprise":
        return fact.ask(ctx.profile)
    return f"{ctx.subject_list}[{ctx.subject_index}].{fact.ask(ctx.subject)}"


def evaluate(c: Cond, ctx: Ctx, item: Any = None, item_list: str | None = None,
             item_index: int = -1) -> tuple[str, list[str]]:
    """(outcome, missing facts). Missing facts are named only where they matter: a decided
    child, or one that cannot change its parent's outcome, asks for nothing."""
    if isinstance(c, (All, Any_)):
        parts = [evaluate(ch, ctx, item, item_list, item_index) for ch in c.children]
        outs = [o for o, _ in parts]
        decisive = FAIL if isinstance(c, All) else PASS
        if decisive in outs:
            return decisive, []
        if UNKNOWN in outs:
            return UNKNOWN, [p for o, miss in parts if o == UNKNOWN for p in miss]
        return (PASS if isinstance(c, All) else FAIL), []
    if isinstance(c, Not):
        out, miss = evaluate(c.child, ctx, item, item_list, item_index)
        return {PASS: FAIL, FAIL: PASS, UNKNOWN: UNKNOWN}[out], miss
    if isinstance(c, Count):
        return _count(c, ctx)
    x = ctx.registry.lists[c.item_list].items[c.path].read(item) if c.item_list else read(c.path, ctx)
    rhs = [_rhs(v, ctx) for v in c.values]
    if any(r is _NO_PARAM for r in rhs):
        return UNKNOWN, []
    if x is None:
        return UNKNOWN, [_source(c, ctx, item, item_index)]
    if any(r is None for r in rhs):
        # An anchor date that is unknown: the comparisons with the known values still decide
        # where they can (x ∉ [?, hi] when x > hi), as the engine's per-comparison rules do.
        known = [r for r in rhs if r is not None]
        asked = [_anchor_source(v.path, ctx) for v, r in zip(c.values, rhs)
                 if r is None and isinstance(v, FactDate)]
        if c.op == "in" and x in known or c.op == "not_in" and x in known:
            return (PASS if c.op == "in" else FAIL), []
        if c.op == "between" and (rhs[0] is not None and x < rhs[0] or rhs[1] is not None and x > rhs[1]):
            return FAIL, []
        return UNKNOWN, asked
    if c.op in ("in", "not_in") and isinstance(rhs[0], list):
        rhs = rhs[0]                  # a code-list parameter
    if c.op == "in":
        ok = x in rhs
    elif c.op == "not_in":
        ok = x not in rhs
    elif c.op == "between":
        ok = rhs[0] <= x <= rhs[1]
    else:
        ok = _OPS[c.op](x, rhs[0])
    return (PASS if ok else FAIL), []


def _items(c: Count, ctx: Ctx) -> list[tuple[str, list[str]]] | None:
    items = getattr(ctx.profile, c.list)
    if items is None:
        return None
    return [(PASS, []) if c.where is None else evaluate(c.where, ctx, it, c.list, j)
            for j, it in enumerate(items)]


def _count(c: Count, ctx: Ctx) -> tuple[str, list[str]]:
    k = _rhs(c.value, ctx)
    outs = _items(c, ctx)
    if outs is None:
        return UNKNOWN, [c.list]
    if k is None:
        return UNKNOWN, []
    sure = sum(1 for o, _ in outs if o == PASS)
    maybe = sum(1 for o, _ in outs if o == UNKNOWN)
    # The count is some n in [sure, sure + maybe]: pass/fail only if every n agrees.
    holds = {_OPS[c.op](n, k) for n in range(sure, sure + maybe + 1)}
    if holds == {True}:
        return PASS, []
    if holds == {False}:
        return FAIL, []
    return UNKNOWN, [p for o, miss in outs if o == UNKNOWN for p in miss]


def count_range(c: Count, ctx: Ctx) -> tuple[int, int] | None:
    """How many items match the count's `where`: at least, at most (unknown items counted in
    the upper bound); None when the list itself is unknown."""
    if ctx.counts is not None and id(c) in ctx.counts:
        return ctx.counts[id(c)]     # already decided by the engine
    outs = _items(c, ctx)
    if outs is None:
        return None
    sure = sum(1 for o, _ in outs if o == PASS)
    return sure, sure + sum(1 for o, _ in outs if o == UNKNOWN)
