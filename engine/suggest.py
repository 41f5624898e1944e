"""What would change a verdict: for each failed or unknown criterion, computed from the criterion
itself — how far a number is from its threshold, from which day a time condition is met, which
list item blocks a count and when it leaves the look-back, and which missing facts decide most.

Guidance, not a promise. A suggestion that names a single value (`fact`, `value`) is kept only if
the reference semantics confirm it: with that value the criterion passes and no other criterion
of the benefit changes.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Callable, Iterable

from engine.conditions import (All, Any_, AsOf, Compare, Cond, Count, FactDate, Literal_, Not, Param,
                               WindowDate, leaves)
from engine.dates import resolve_date, shift
from engine.interpreter import FAIL, PASS, UNKNOWN, Ctx, evaluate, read
from engine.loader import CompiledCriterion
from engine.results import CriterionResult, Suggestion
from engine.vocabulary import cn_date, number

Windows = Callable[[date], Any]     # a date → the default-calendar window whose coverage holds it


class Suggester:
    def __init__(self, registry, params: Callable[[str], Any], window_of: Windows | None, today: date):
        self.registry, self.params, self.window_of, self.today = registry, params, window_of, today

    def suggest(self, ctx: Ctx, criteria: list[CompiledCriterion], results: list[CriterionResult],
                asked_by: dict[str, list[str]]) -> list[Suggestion]:
        out: list[Suggestion] = []
        by_id = {c.id: c for c in criteria}
        outcomes = {r.id: r.outcome for r in results}
        for r in results:       # paid before: nothing to supply or change makes it eligible again
            if r.outcome == FAIL and self._reads_ledger(by_id[r.id].cond):
                return [Suggestion(r.id, "该注册证已获得过本项资金支持；同一注册证只支持一次，不能再次申请")]
        for r in results:
            if r.outcome == FAIL:
                for s in self._failed(ctx, by_id[r.id].cond, r.id):
                    out.append(self._confirmed(s, ctx, criteria, outcomes) if s.value is not None else s)
        out += self._to_decide(ctx, results, asked_by)
        return _dedupe(out)

    def _reads_ledger(self, c: Cond) -> bool:
        if isinstance(c, (All, Any_)):
            return any(self._reads_ledger(ch) for ch in c.children)
        if isinstance(c, Compare):
            fact = self.registry.facts.get(c.path)
            return fact is not None and fact.spec.derive == "award_ledger"
        return False

    # -- a failed criterion --------------------------------------------------------------------
    def _failed(self, ctx: Ctx, c: Cond, cid: str) -> list[Suggestion]:
        if isinstance(c, All):
            return [s for ch in c.children if evaluate(ch, ctx)[0] == FAIL for s in self._failed(ctx, ch, cid)]
        if isinstance(c, Any_):          # every alternative failed: each would do
            return [s for ch in c.children for s in self._failed(ctx, ch, cid)]
        if isinstance(c, Not):
            return []
        if isinstance(c, Count):
            return self._count(ctx, c, cid)
        return self._compare(ctx, c, cid)

    def _compare(self, ctx: Ctx, c: Compare, cid: str) -> list[Suggestion]:
        if c.item_list:
            return []
        fact = self.registry.facts[c.path]
        x = read(c.path, ctx)
        label = fact.label
        rhs = [self._rhs(v, ctx) for v in c.values]
        if x is None or any(v is None for v in rhs):
            return []
        t = c.type.name
        if t in ("int", "number"):
            return self._number(c, fact, x, rhs, cid, ctx)
        if t == "date":
            return self._date(c, x, rhs, cid, label)
        if t in ("bool", "enum") and c.op in ("eq", "in"):
            wanted = rhs[0] if c.op == "eq" else rhs
            wanted = wanted if isinstance(wanted, list) else [wanted]
            text = "、".join(f"“{self.registry.value_text(c.path, w)}”" for w in wanted)
            single = wanted[0] if len(wanted) == 1 else None
            return [Suggestion(cid, f"{label}须为{text}，现为“{self.registry.value_text(c.path, x)}”",
                               self._input(ctx, c.path) if single is not None else None, single)]
        return []

    def _number(self, c: Compare, fact, x: Any, rhs: list, cid: str, ctx: Ctx) -> list[Suggestion]:
        unit, label = fact.spec.unit, fact.label
        step = 1 if fact.type.name == "int" else 10 ** -(fact.spec.decimals or 0)
        lo = hi = None
        if c.op in ("lt", "lte"):
            hi = rhs[0] if c.op == "lte" else rhs[0] - step
        elif c.op in ("gt", "gte"):
            lo = rhs[0] if c.op == "gte" else rhs[0] + step
        elif c.op == "between":
            lo, hi = rhs
        elif c.op == "eq":
            lo = hi = rhs[0]
        else:
            return []
        say = (lambda v: number(v, unit))
        # A strict bound is said as the text says it ("须大于 0元"), not as the next step (0.01元).
        if hi is not None and x > hi:
            need = f"须低于 {say(rhs[0])}" if c.op == "lt" else f"须不超过 {say(hi)}"
            return [Suggestion(cid, f"{label}为 {say(x)}，超出上限 {say(_round(x - hi))}（{need}）",
                               self._input(ctx, c.path), _round(hi))]
        if lo is not None and x < lo:
            if c.op == "gt":
                text = f"{label}为 {say(x)}，须大于 {say(rhs[0])}"
            else:
                text = f"{label}为 {say(x)}，低于下限 {say(_round(lo - x))}（须不低于 {say(lo)}）"
            return [Suggestion(cid, text, self._input(ctx, c.path), _round(lo))]
        return []

    def _date(self, c: Compare, x: date, rhs: list, cid: str, label: str) -> list[Suggestion]:
        out: list[Suggestion] = []
        window_bound = any(isinstance(v, WindowDate) for v in c.values)
        if window_bound and self.window_of is not None:
            w = self.window_of(x)
            if w is not None and w.closes_on < self.today:
                out.append(Suggestion(cid, f"{label}为{cn_date(x)}，属于{w.label}（受理期{cn_date(w.opens_on)}至"
                                           f"{cn_date(w.closes_on)}，已截止），不能再申请"))
            elif w is not None:
                out.append(Suggestion(cid, f"{label}为{cn_date(x)}，不在本批次覆盖期内；可在{w.label}"
                                           f"（受理期{cn_date(w.opens_on)}至{cn_date(w.closes_on)}）申请"))
            return out
        as_of_bound = [(v, r) for v, r in zip(c.values, rhs) if isinstance(v, AsOf)]
        if c.op in ("lt", "lte") and as_of_bound:
            # x ≤ as_of + offset: met from the day x − offset (time cures it)
            v, r = as_of_bound[0]
            first = shift(x, -v.years, -v.months, -v.days) + (timedelta(days=1) if c.op == "lt" else timedelta())
            out.append(Suggestion(cid, f"{label}为{cn_date(x)}，自{cn_date(first)}起满足本条件"))
        return out

    def _count(self, ctx: Ctx, c: Count, cid: str) -> list[Suggestion]:
        """The items that make a count fail (e.g. the violations inside a look-back), each with
        the day it leaves the look-back where the window is measured from the evaluation date."""
        items = getattr(ctx.profile, c.list) or []
        info = self.registry.lists[c.list]
        if c.where is None or c.op not in ("eq", "lt", "lte"):
            return []
        out = []
        for j, it in enumerate(items):
            if evaluate(c.where, ctx, it, c.list, j)[0] != PASS:
                continue
            what = "，".join(f"{f.label} {self.registry.value_text(f'{c.list}[0].{name}', f.read(it))}"
                            for name, f in info.items.items()
                            if f.read(it) is not None and f.type.name in ("enum", "date"))
            leaves_on = self._leaves_on(c.where, it, info, ctx)
            tail = f"，自{cn_date(leaves_on)}起不再计入" if leaves_on else ""
            w = ctx.window if ctx.subject is not None else None
            if leaves_on and w is not None and getattr(w, "closes_on", None) and leaves_on > w.closes_on:
                # a subject judged in one window only: the record is still counted when it closes
                tail += f"（在{w.label}受理期截止前不会移出，本项在该批次不能获得支持）"
            out.append(Suggestion(cid, f"{info.item_label}（{what}）计入本条件{tail}"))
        return out

    def _leaves_on(self, where: Cond, item: Any, info, ctx: Ctx) -> date | None:
        """The first evaluation date on which the item no longer passes a lower bound that moves
        with the evaluation date (`decided_on > as_of − 36 months`)."""
        days = []
        for leaf in leaves(where):
            if not isinstance(leaf, Compare) or leaf.type.name != "date":
                continue
            x = info.items[leaf.path].read(item)
            if x is None:
                continue
            bounds = {"gt": leaf.values[:1], "gte": leaf.values[:1], "between": leaf.values[:1]}.get(leaf.op, ())
            for v in bounds:
                if isinstance(v, AsOf) and not v.start_of and not v.end_of:
                    d = shift(x, -v.years, -v.months, -v.days)
                    days.append(d if leaf.op == "gt" else d + timedelta(days=1))
        return min(days) if days else None

    # -- an undecided benefit ------------------------------------------------------------------
    def _to_decide(self, ctx: Ctx, results: list[CriterionResult], asked_by: dict[str, list[str]]
                   ) -> list[Suggestion]:
        """The missing facts, those that decide the most criteria first."""
        undecided = [r.id for r in results if r.outcome == UNKNOWN]
        if not undecided:
            return []
        weight: dict[str, int] = {}
        order: dict[str, int] = {}
        for cid in undecided:
            for p in dict.fromkeys(asked_by.get(cid, [])):
                weight[p] = weight.get(p, 0) + 1
                order.setdefault(p, len(order))
        ranked = sorted(weight, key=lambda p: (-weight[p], order[p]))
        return [Suggestion(None, f"{self._ask(p, ctx.profile)}（涉及{weight[p]}项待补充的条件）", p) for p in ranked]

    def _ask(self, path: str, profile: Any) -> str:
        """补充 a missing input; 核对 one that was given but could not be read."""
        label = self.registry.label(path, profile)
        given = self.registry.unread_input(path, profile)
        if given is None:
            return f"补充“{label}”"
        spec = self.registry.field_at(path)
        return f"核对“{label}”：填写的“{given}”无法识别" + (f"，{spec.help}" if spec is not None and spec.help else "")

    # -- helpers --------------------------------------------------------------------------------
    def _rhs(self, v: Any, ctx: Ctx) -> Any:
        if isinstance(v, Param):
            return self.params(v.name)
        if isinstance(v, FactDate):
            return None
        if isinstance(v, Literal_):
            return v.value
        return resolve_date(v, ctx.as_of, ctx.window)

    def _input(self, ctx: Ctx, path: str) -> str | None:
        """The profile input behind a fact, when setting it is setting that fact (not derived)."""
        fact = self.registry.facts[path]
        if fact.spec.derive:
            return None
        if fact.scope == "enterprise":
            return fact.ask(ctx.profile)
        return f"{ctx.subject_list}[{ctx.subject_index}].{fact.ask(ctx.subject)}"

    def _confirmed(self, s: Suggestion, ctx: Ctx, criteria: list[CompiledCriterion],
                   outcomes: dict[str, str]) -> Suggestion:
        """Keep the value only if, with it, the criterion passes and nothing else changes."""
        if s.fact is None:
            return replace(s, value=None)
        try:
            changed = with_value(ctx.profile, s.fact, s.value)
        except (ValueError, TypeError):
            return replace(s, value=None, fact=None)
        subject = (getattr(changed, ctx.subject_list)[ctx.subject_index] if ctx.subject_list else None)
        new_ctx = replace(ctx, profile=changed, subject=subject, counts=None)
        got = {c.id: evaluate(c.cond, new_ctx)[0] for c in criteria}
        ok = got.get(s.criterion) == PASS and all(got[k] == v for k, v in outcomes.items() if k != s.criterion)
        return s if ok else replace(s, value=None, fact=None)


def with_value(profile: Any, path: str, value: Any) -> Any:
    """A copy of the profile with one input set (`field`, or `list[i].field`)."""
    if "[" in path:
        head, rest = path.split("[", 1)
        index, field = rest.split("].", 1)
        items = list(getattr(profile, head))
        items[int(index)] = items[int(index)].model_copy(update={field: value})
        return profile.model_copy(update={head: items})
    return profile.model_copy(update={path: value})


def _round(v: Any) -> Any:
    v = round(v, 6)
    return int(v) if float(v).is_integer() else v


def _dedupe(xs: Iterable[Suggestion]) -> list[Suggestion]:
    seen, out = set(), []
    for s in xs:
        key = (s.criterion, s.text)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
