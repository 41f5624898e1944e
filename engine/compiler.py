"""Compile criteria into durable_rules rules, Kleene-style.

Each criterion becomes two rules over one flat fact per subject: `p<i>` fires when the
criterion passes, `f<i>` when it fails; `unknown` is "neither fired". For a comparison leaf
the fail rule is the negated comparison; neither matches a null, which is how durable_rules
treats a null or absent property (checked against the oracle in tests/test_engine_oracle.py).
Combinators follow Kleene logic: pass(all) = and(pass), fail(all) = or(fail); any is the
dual; not swaps pass and fail.

What goes into a fact ("slots") is computed before asserting (PITFALLS 20: the engine cannot
count or do date arithmetic):
* `value`  — a fact's value, normalized: dates → day ordinals, bools → 1/0, numbers → whole
             numbers in the fact's fixed point (value × 10^decimals). The C engine is never
             handed a float: it segfaults on some spellings of them (tests/test_adapter.py), and
             fixed point keeps float rounding out of the verdicts;
* `diff`   — a date minus a date relative to the evaluation or window (as_of − 36 months,
             coverage_from, ...) in days, compared with 0 — so rules never depend on as_of;
* `cmin`/`cmax` — for `count`, the number of list items whose `where` passed, and passed or
  was unknown; the `where` conditions are themselves compiled and decided by durable_rules in
  a first pass over one fact per list item.
Parameter values are constants in the rules, so a ruleset is compiled per set of parameter
values in force (few: bounded by the dated values in the rule files) and cached.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Callable

from engine.adapter import NEVER
from engine.conditions import (All, Any_, AsOf, Compare, Cond, Count, FactDate, Literal_, Not, Param,
                               Value, WindowDate, leaves)
from engine.registry import FieldRegistry

NEG = {"eq": "ne", "ne": "eq", "lt": "gte", "gte": "lt", "lte": "gt", "gt": "lte"}
DR_OP = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte", "ne": "$neq"}


def normalize(v: Any, scale: int = 1) -> Any:
    """The engine-side form of a plain value (one representation per type, PITFALLS 14/15):
    bools 1/0, dates day ordinals, numbers whole numbers in fixed point. Numbers were
    validated to carry at most the field's decimals, so rounding only removes float noise."""
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, date):
        return v.toordinal()
    if isinstance(v, float) or (isinstance(v, int) and scale != 1):
        return int(round(v * scale))
    return v


def _cmp(slot: str, op: str, const: Any) -> dict:
    if op == "eq":
        return {slot: const}
    return {DR_OP[op]: {slot: const}}


def _and(xs: list[dict]) -> dict:
    return xs[0] if len(xs) == 1 else {"$and": xs}


def _or(xs: list[dict]) -> dict:
    return xs[0] if len(xs) == 1 else {"$or": xs}


@dataclass(frozen=True)
class Slot:
    """How to compute one fact property. kind: value | diff | cmin | cmax | awarded."""
    kind: str
    path: str = ""              # catalogue path, or item field
    rhs: Value | None = None    # for diff
    count: int = -1             # count index for cmin/cmax
    benefit: str = ""           # for awarded


@dataclass
class SlotTable:
    keys: dict[Slot, str] = field(default_factory=dict)

    def key(self, slot: Slot) -> str:
        if slot not in self.keys:
            self.keys[slot] = f"s{len(self.keys)}"
        return self.keys[slot]


Params = Callable[[str], Any]   # param name → constant in force (None when no value in force)


class _Emitter:
    """Turns one condition tree into (pass, fail) expressions against a slot table."""

    def __init__(self, slots: SlotTable, params: Params, count_index: Callable[[Count], int], benefit: str,
                 registry: FieldRegistry):
        self.slots, self.params, self.count_index, self.benefit = slots, params, count_index, benefit
        self.registry = registry

    def operand(self, leaf: Compare, v: Value) -> tuple[str, Any]:
        """(slot key, constant) comparing the leaf's fact with one right-hand value; the
        constant is None when a parameter has no value in force (the leaf is then unknown)."""
        if isinstance(v, FactDate) and isinstance(v.years, Param):
            years = self.params(v.years.name)
            if years is None:
                return "", None
            v = replace(v, years=int(years))
        if isinstance(v, (AsOf, WindowDate, FactDate)):
            # the fact's day ordinal minus the reference day's (a fact date: per subject)
            return self.slots.key(Slot("diff", leaf.path, rhs=v)), 0
        fact = self.registry.facts.get(leaf.path) if not leaf.item_list else None
        if fact is not None and fact.spec.derive == "award_ledger":
            key = self.slots.key(Slot("awarded", leaf.path, benefit=self.benefit))
        else:
            key = self.slots.key(Slot("value", leaf.path))
        if isinstance(v, Param):
            value = self.params(v.name)
            return key, None if value is None else normalize(value, leaf.scale)
        assert isinstance(v, Literal_)
        return key, normalize(v.value, leaf.scale)

    def emit(self, c: Cond) -> tuple[dict, dict]:
        if isinstance(c, All):
            parts = [self.emit(ch) for ch in c.children]
            return _and([p for p, _ in parts]), _or([f for _, f in parts])
        if isinstance(c, Any_):
            parts = [self.emit(ch) for ch in c.children]
            return _or([p for p, _ in parts]), _and([f for _, f in parts])
        if isinstance(c, Not):
            p, f = self.emit(c.child)
            return f, p
        if isinstance(c, Count):
            return self.count(c)
        return self.compare(c)

    def compare(self, c: Compare) -> tuple[dict, dict]:
        ops = [self.operand(c, v) for v in c.values]
        if c.op in ("in", "not_in") and ops and isinstance(ops[0][1], list):
            (slot, codes), = ops          # a code-list parameter: one comparison per code
            ops = [(slot, normalize(code)) for code in codes]
        if any(k is None for _, k in ops):    # a parameter with no value in force: unknown
            return NEVER, NEVER
        if c.op in ("in", "not_in"):
            p = _or([_cmp(s, "eq", k) for s, k in ops])
            f = _and([_cmp(s, "ne", k) for s, k in ops])
            return (p, f) if c.op == "in" else (f, p)
        if c.op == "between":
            (s_lo, lo), (s_hi, hi) = ops
            return (_and([_cmp(s_lo, "gte", lo), _cmp(s_hi, "lte", hi)]),
                    _or([_cmp(s_lo, "lt", lo), _cmp(s_hi, "gt", hi)]))
        (s, k), = ops
        return _cmp(s, c.op, k), _cmp(s, NEG[c.op], k)

    def count(self, c: Count) -> tuple[dict, dict]:
        i = self.count_index(c)
        lo, hi = self.slots.key(Slot("cmin", count=i)), self.slots.key(Slot("cmax", count=i))
        v = c.value
        k = self.params(v.name) if isinstance(v, Param) else normalize(v.value)  # type: ignore[union-attr]
        if k is None:
            return NEVER, NEVER
        if c.op == "lt":
            return _cmp(hi, "lt", k), _cmp(lo, "gte", k)
        if c.op == "lte":
            return _cmp(hi, "lte", k), _cmp(lo, "gt", k)
        if c.op == "gt":
            return _cmp(lo, "gt", k), _cmp(hi, "lte", k)
        if c.op == "gte":
            return _cmp(lo, "gte", k), _cmp(hi, "lt", k)
        return (_and([_cmp(lo, "eq", k), _cmp(hi, "eq", k)]),
                _or([_cmp(lo, "gt", k), _cmp(hi, "lt", k)]))


@dataclass
class Target:
    """One compiled condition: a criterion (benefit, criterion id) or a count's `where`."""
    kind: str          # "criterion" | "where"
    scope: str         # "E" (enterprise), "S:<subject>" (a subject list's item), "I:<list>" (list item)
    benefit: str = ""
    criterion: str = ""
    count: int = -1


@dataclass
class Plan:
    """Everything compiled from a rulebook, independent of parameter values."""
    targets: list[Target]
    conds: list[Cond]
    counts: list[Count]
    subject_slots: dict[str, SlotTable]          # "E" / "S:<subject>"
    item_slots: dict[str, SlotTable]             # list name → slots of its item facts
    count_ids: dict[int, int]                    # id(count node in a criterion) → count index


def count_nodes(conds: list[Cond]) -> list[Count]:
    out: list[Count] = []
    for c in conds:
        for leaf in leaves(c):
            if isinstance(leaf, Count) and leaf not in out:
                out.append(leaf)
    return out


def scope_of(unit: str) -> str:
    return "E" if unit == "enterprise" else f"S:{unit}"


def build_rules(book_benefits: dict, params_of: Callable[[str], Params], registry: FieldRegistry
                ) -> tuple[dict[str, dict], Plan]:
    """Compile every criterion of every benefit (and every count's `where`) to rule bodies."""
    targets: list[Target] = []
    conds: list[Cond] = []
    for b in book_benefits.values():
        scope = scope_of(b.spec.unit)
        for c in b.criteria:
            targets.append(Target("criterion", scope, benefit=b.id, criterion=c.id))
            conds.append(c.cond)
    counts = count_nodes(conds)
    subject_slots = {"E": SlotTable(), **{scope_of(s): SlotTable() for s in registry.subjects}}
    item_slots = {name: SlotTable() for name in registry.lists}
    rules: dict[str, dict] = {}
    index = {id(c): i for i, c in enumerate(counts)}

    def count_index(c: Count) -> int:
        return index[id(c)] if id(c) in index else counts.index(c)

    for i, (t, cond) in enumerate(zip(targets, conds)):
        em = _Emitter(subject_slots[t.scope], params_of(t.benefit), count_index, t.benefit, registry)
        p, f = em.emit(cond)
        rules[f"p{i}"] = {"$and": [{"t": t.scope}, p]}
        rules[f"f{i}"] = {"$and": [{"t": t.scope}, f]}
    owner = {}
    for t, cond in zip(targets, conds):
        for leaf in leaves(cond):
            if isinstance(leaf, Count):
                owner.setdefault(count_index(leaf), t.benefit)
    for ci, cnode in enumerate(counts):
        if cnode.where is None:
            continue
        i = len(targets)
        scope = f"I:{cnode.list}"
        targets.append(Target("where", scope, benefit=owner[ci], count=ci))
        conds.append(cnode.where)
        em = _Emitter(item_slots[cnode.list], params_of(owner[ci]), count_index, owner[ci], registry)
        p, f = em.emit(cnode.where)
        rules[f"p{i}"] = {"$and": [{"t": scope}, p]}
        rules[f"f{i}"] = {"$and": [{"t": scope}, f]}
    count_ids = {id(leaf): count_index(leaf) for cond in conds for leaf in leaves(cond)
                 if isinstance(leaf, Count)}
    plan = Plan(targets, conds, counts, subject_slots, item_slots, count_ids)
    return rules, plan
