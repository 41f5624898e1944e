"""Turn criterion outcomes into the contract's results: status, every criterion with what it
saw and its legal basis, the missing facts and materials, and the amount."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from engine.adapter import EngineError
from engine.conditions import All, Any_, AsOf, Compare, Count, FactDate, Literal_, Not, Param, WindowDate, leaves
from engine.dates import resolve_date
from engine.interpreter import FAIL, PASS, UNKNOWN, Ctx, count_range, evaluate, read
from engine.loader import Benefit, WindowContext
from engine.registry import FieldRegistry, many_reader
from engine.results import (OUTCOME_CODE, BenefitResult, CriterionResult, MaterialRef, RouteResult, Subject, Verdict,
                            WindowRef)
from engine.ruleschema import AmountSpec, Route
from engine.vocabulary import PROVISIONAL_AMOUNT, PROVISIONAL_VALUE, STATUS, cn_date, cn_dates_in, money_short, percent


def fmt_number(v: float, unit: str) -> str:
    """A parameter value as the policy states it (300万元, 60%, 6个月)."""
    if unit == "比例":
        return percent(v)
    if unit == "元":
        return money_short(v)
    suffix = {"月": "个月"}.get(unit, unit)
    return f"{v:g}{suffix}"


# comparisons as a reader says them (a notice is not a formula)
DATE_WORDS = {"eq": "为", "ne": "不为", "lt": "早于", "lte": "不晚于", "gt": "晚于", "gte": "不早于"}
NUMBER_WORDS = {"eq": "等于", "ne": "不等于", "lt": "低于", "lte": "不超过", "gt": "超过", "gte": "不低于"}
EQ_WORDS = {"eq": "为", "ne": "不为"}
COUNT_WORDS = {"eq": "为", "lt": "少于", "lte": "不多于", "gt": "多于", "gte": "不少于"}


def _offset_text(v: FactDate, years: Any) -> str:
    """前3年 / 后2年 / 前36个月 (a fact date's offset, as a reader says it)."""
    parts = [(v.sign * int(years or 0), "年"), (v.sign * v.months, "个月"), (v.sign * v.days, "日")]
    nonzero = [(n, u) for n, u in parts if n]
    if not nonzero:
        return ""
    side = "前" if nonzero[0][0] < 0 else "后"
    return side + "".join(f"{abs(n)}{u}" for n, u in nonzero)


def _plain(v: Any) -> Any:
    t = type(v)
    if t is float:
        return int(v) if v.is_integer() else v
    if t is date:
        return v.isoformat()
    if v is None or t is str or t is int or t is bool:
        return v
    if isinstance(v, date):
        return v.isoformat()
    return int(v) if isinstance(v, float) and v.is_integer() else v


_ENTERPRISE, _SUBJECT, _LEDGER = 0, 1, 2
_AS_IS = frozenset({str, int, bool})      # values `_plain` returns unchanged


def _reading(registry: FieldRegistry, path: str) -> tuple[str, Callable[[Any], Any], int]:
    """(path, how to read it from its owner, whose fact it is): a profile's facts are read
    once per profile and shared by its benefits; the award ledger depends on the benefit."""
    fact = registry.facts[path]
    if fact.spec.derive == "award_ledger":
        return path, fact.read, _LEDGER
    return path, fact.read, _ENTERPRISE if fact.scope == "enterprise" else _SUBJECT


@dataclass(slots=True)
class Judged:
    """One subject's decision before it is worded (Explainer.judge)."""
    status: str
    outcomes: list[str]                     # per applicable criterion
    observed: list[dict]                    # what each criterion read
    missing: list[str] | None               # the facts to supply, sorted (None: not asked)
    asked_by: dict[str, list[str]]          # criterion id → the facts it is missing
    route: Route | None                     # the route chosen, for benefits with routes
    undecided: list[tuple[Route, list[str]]]   # routes left open before it, with their unknown criteria
    amount: float | int | None
    provisional: bool
    amount_notes: list[str]


class Explainer:
    def __init__(self, benefit: Benefit, as_of: date, window: WindowContext,
                 params: Callable[[str], Any], provisional: Callable[[str], bool],
                 registry: FieldRegistry):
        self.b, self.as_of, self.window = benefit, as_of, window
        self.params, self.provisional = params, provisional
        self.registry = registry
        lists = registry.lists
        # Everything that does not depend on the subject is rendered once per evaluation date.
        self.in_force = benefit.in_force_on(as_of)
        self.applicable = [c for c in benefit.criteria if c.applies_on(as_of)]
        self.static = {c.id: (self.render(c.text), self.threshold(c.cond), c.basis_on(as_of), list(c.materials),
                              cn_dates_in(c.provisional_note))
                       for c in self.applicable}
        self.count_of = {(c.id, path): next(l for l in leaves(c.cond) if isinstance(l, Count) and l.list == path)
                         for c in self.applicable for path in c.reads if path in lists}
        # what each criterion shows it saw, in the order it reads them: a count for a list,
        # else the fact, read once per subject however many criteria read it. Per criterion:
        # (id, criterion, what it shows, those facts alone when it counts no list, the common case)
        self.shows = []
        for c in self.applicable:
            shows = [(path, self.count_of.get((c.id, path))) for path in c.reads]
            plain = None if any(n is not None for _, n in shows) else tuple(c.reads)
            self.shows.append((c.id, c, shows, plain))
        read = [path for path in dict.fromkeys(path for c in self.applicable for path in c.reads)
                if path not in lists]
        # the profile's attributes that are shown as they are (neither derived nor a number or
        # date to write plainly) are read at once; the others one by one
        direct = [registry.facts[p] for p in read if registry.facts[p].scope == "enterprise"
                  and registry.facts[p].attr is not None and registry.facts[p].type.name not in ("number", "date")]
        self.direct = many_reader(direct) if direct else None
        at_once = {f.path for f in direct}
        self.readings = [_reading(registry, path) for path in read if path not in at_once]
        # the amount methods in force on this date, in the file's order; per subject the first
        # whose `when` passes computes the amount
        self.amount_specs = [(a, cond) for a, cond in zip(benefit.spec.amount_specs(),
                                                          benefit.amount_conds or [None] * 99)
                             if a.applies is None or a.applies.contains(as_of)]
        self._materials = self._build_materials()
        self._window_ref = self._build_window_ref()

    # -- text ------------------------------------------------------------------------------
    def param_text(self, name: str) -> str:
        v = self.params(name)
        if v is None:
            return "（该日期无有效参数值）"
        if isinstance(v, list):
            return "、".join(map(str, v))
        text = fmt_number(v, self.b.spec.parameters[name].unit) if not isinstance(v, dict) else str(v)
        # a value no official text confirms (UNCONFIRMED in the brief) says so wherever it is shown
        return text + PROVISIONAL_VALUE if self.provisional(name) else text

    def render(self, text: str) -> str:
        def sub(m: re.Match) -> str:
            key = m.group(1)
            if key.startswith("param."):
                return self.param_text(key[6:])
            if key == "as_of":
                return cn_date(self.as_of)
            val = getattr(self.window, key.split(".", 1)[1])
            return cn_date(val) if isinstance(val, date) else str(val)
        return re.sub(r"\{([^{}]+)\}", sub, text)

    def value_text(self, v: Any, leaf: Compare | None) -> str:
        if isinstance(v, Param):
            codes = self.params(v.name)
            if isinstance(codes, list) and leaf is not None:     # a code list: by the codes' names
                return "、".join(self.registry.value_text(leaf.path, c) for c in codes)
            return self.param_text(v.name)
        if isinstance(v, FactDate):
            years = self.params(v.years.name) if isinstance(v.years, Param) else v.years
            return self.registry.facts[v.path].label + _offset_text(v, years)
        if isinstance(v, (AsOf, WindowDate)):
            return cn_date(resolve_date(v, self.as_of, self.window))
        assert isinstance(v, Literal_)
        if isinstance(v.value, bool):
            return "是" if v.value else "否"
        if leaf is not None:
            return self.registry.value_text(f"{leaf.item_list}[0].{leaf.path}" if leaf.item_list
                                            else leaf.path, v.value)
        return str(_plain(v.value))

    def threshold(self, cond: Any) -> str:
        """The requirement in words, keeping the logic: "A；B" (both), "A，或 B" (either),
        "不满足：A" (negation); the items a count looks at are named with it."""
        return self._req(cond, top=True)

    def _req(self, c: Any, top: bool = False) -> str:
        if isinstance(c, (All, Any_)):
            parts = list(dict.fromkeys(self._req(ch) for ch in c.children))
            if len(parts) == 1:
                return parts[0]
            if isinstance(c, All):
                text = "；".join(parts)
                return text if top else f"（{text}）"
            return "，或 ".join(parts)
        if isinstance(c, Not):
            return f"不满足：{self._req(c.child)}"
        if isinstance(c, Count):
            what = f"（{self._req(c.where, top=True)}）" if c.where is not None else ""
            k = self.value_text(c.value, None)
            table = self.registry.lists[c.list].label
            if c.op == "eq" and k == "0":
                return f"{table}中没有符合条件{what}的记录"
            return f"{table}中符合条件{what}的记录{COUNT_WORDS[c.op]} {k} 条"
        label = (self.registry.lists[c.item_list].items[c.path].label if c.item_list
                 else self.registry.facts[c.path].label)
        vals = [self.value_text(v, c) for v in c.values]
        if c.op in ("in", "not_in"):
            return f"{label}{'属于' if c.op == 'in' else '不属于'}{'、'.join(vals)}"
        if c.op == "between":
            return f"{label}在 {vals[0]} 至 {vals[1]} 之间（含）"
        words = DATE_WORDS if c.type.name == "date" else NUMBER_WORDS if c.type.ordered else EQ_WORDS
        return f"{label}{words[c.op]} {vals[0]}"

    def window_ref(self) -> WindowRef | None:
        return self._window_ref

    def materials(self) -> list[MaterialRef]:
        return self._materials

    def _build_window_ref(self) -> WindowRef | None:
        if self.b.spec.kind != "grant":
            return None
        w = self.window
        return WindowRef(id=w.id, label=w.label, opens_on=w.opens_on, closes_on=w.closes_on,
                         coverage_from=w.coverage_from, coverage_to=w.coverage_to,
                         provisional=w.provisional)

    def _build_materials(self) -> list[MaterialRef]:
        amount = {m for a in self.b.spec.amount_specs() for m in a.materials}
        return [MaterialRef(id=m.id, name=m.name, description=m.description,
                            proves=[c.id for c in self.b.criteria
                                    if c.applies_on(self.as_of) and m.id in c.materials]
                            + (["amount"] if m.id in amount else []))
                for m in self.b.spec.materials]

    # -- one subject ------------------------------------------------------------------------
    def judge(self, ctx: Ctx, outcomes: dict[str, str], ask: bool = True) -> "Judged":
        """The decision for one subject from the engine's criterion outcomes: status, what
        each criterion saw, the route, the amount and (`ask`) the missing facts — no words.
        The missing facts are the reference interpreter's account of an unknown criterion:
        an explanation, derived again whenever the result is worded, so a batch that only
        stores decisions leaves them out (None)."""
        if not self.in_force:
            return Judged("not_in_force", [], [], [] if ask else None, {}, None, [], None, False, [])
        outs, seen, missing = [], [], []
        asked_by: dict[str, list[str]] = {}
        values: dict[str, Any] = self.direct(ctx.profile) if self.direct is not None else {}
        shared = ctx.reads
        for path, reader, whose in self.readings:
            if whose == _ENTERPRISE:
                if shared is not None and path in shared:
                    values[path] = shared[path]
                    continue
                v = reader(ctx.profile)
                if v is not None and type(v) not in _AS_IS:
                    v = _plain(v)
                if shared is not None:
                    shared[path] = v
            elif whose == _SUBJECT:
                v = _plain(reader(ctx.subject))
            else:
                v = read(path, ctx)
            values[path] = v
        for cid, c, shows, plain in self.shows:
            out = outcomes[cid]
            if plain is not None:
                # (no comprehension for the usual single fact: its frame costs more than the dict)
                observed = {plain[0]: values[plain[0]]} if len(plain) == 1 else {p: values[p] for p in plain}
            else:
                observed = {}
                for path, count in shows:
                    if count is None:
                        observed[path] = values[path]
                    else:
                        rng = count_range(count, ctx)
                        observed[path] = None if rng is None else (rng[0] if rng[0] == rng[1] else
                                                                   {"min": rng[0], "max": rng[1]})
            if out == UNKNOWN and ask:
                # The engine decided; the reference semantics names what is missing, and must
                # agree that the criterion is undecided.
                check, asked = evaluate(c.cond, ctx)
                if check != UNKNOWN:
                    raise EngineError(f"{self.b.id}.{c.id}: engine says unknown, interpreter says {check}")
                missing += asked
                asked_by[cid] = asked
            outs.append(out)
            seen.append(observed)
        status = "ineligible" if FAIL in outs else "needs_info" if UNKNOWN in outs else "eligible"
        route, undecided = None, []
        if self.b.spec.routes:
            status, route, undecided = self._route(dict(zip((c.id for c in self.applicable), outs)))
            missing = [] if route is not None else [p for _, ids in undecided for cid in ids
                                                    for p in asked_by.get(cid, [])]
        amount, provisional, notes = None, False, []
        if status in ("eligible", "needs_info"):
            amount, provisional, notes = self.amount(ctx)
        return Judged(status, outs, seen, sorted(set(missing)) if ask else None, asked_by, route, undecided,
                      amount, provisional, notes)

    def verdict(self, ctx: Ctx, outcomes: dict[str, str], subject: Subject | None, ask: bool = False) -> Verdict:
        """What a decision record stores of one subject's result (store.decisions); the
        missing facts only if `ask`."""
        j = self.judge(ctx, outcomes, ask)
        return Verdict(self.b.id, subject.id if subject else "", self.b.spec.kind, j.status, j.amount,
                       j.provisional, "".join(map(OUTCOME_CODE.__getitem__, j.outcomes)), j.observed, j.missing)

    def result(self, ctx: Ctx, outcomes: dict[str, str], subject: Subject | None) -> BenefitResult:
        """One subject's result in words: the decision (`judge`) with each criterion's text,
        threshold, legal basis and materials, the route chosen and the notes."""
        spec = self.b.spec
        window, materials = self.window_ref(), self.materials()
        j = self.judge(ctx, outcomes)
        if j.status == "not_in_force":
            periods = "；".join(f"{cn_date(p.from_)}至{cn_date(p.to) if p.to else '今'}" for p in spec.in_force)
            return BenefitResult(
                benefit_id=spec.id, title=spec.title, kind=spec.kind, subject=subject,
                status="not_in_force", status_text=STATUS["not_in_force"], amount_cny=None,
                amount_provisional=False, amount_note=None, criteria=[], missing_facts=[],
                required_materials=materials, missing_materials=[], window=window,
                note=f"判定日期 {cn_date(self.as_of)} 不在该政策有效期内（{periods}）")
        if self.b.material_conds:
            # materials whose `needed_when` fails for this subject are not asked for
            skip = {mid for mid, cond in self.b.material_conds.items()
                    if cond is not None and evaluate(cond, ctx)[0] == FAIL}
            materials = [m for m in materials if m.id not in skip]
        else:
            skip = set()
        criteria, missing_mat = [], []
        for c, out, observed in zip(self.applicable, j.outcomes, j.observed):
            text, threshold, basis, mats, note = self.static[c.id]
            if skip:
                mats = [m for m in mats if m not in skip]
            if out != PASS:
                missing_mat += [m for m in mats if m not in missing_mat]
            criteria.append(CriterionResult(
                id=c.id, text=text, outcome=out, observed=observed, threshold=threshold,
                legal_basis=basis, materials=mats, provisional=c.provisional, provisional_note=note))
        route, note = None, None
        if spec.routes:
            route, missing_mat, note = self._route_words(j, criteria, ctx)
        notes = ([PROVISIONAL_AMOUNT] if j.provisional else []) + j.amount_notes
        return BenefitResult(
            benefit_id=spec.id, title=spec.title, kind=spec.kind, subject=subject, status=j.status,
            status_text=STATUS[j.status], amount_cny=j.amount, amount_provisional=j.provisional,
            amount_note=cn_dates_in("；".join(notes)) or None, criteria=criteria,
            missing_facts=j.missing, required_materials=materials,
            missing_materials=missing_mat, window=window, note=note, route=route)

    # -- alternative outcomes ------------------------------------------------------------------
    def _route(self, outcomes: dict[str, str]) -> tuple[str, Route | None, list[tuple[Route, list[str]]]]:
        """(status, route, routes left undecided before it with their unknown criteria): the
        first route whose applicable criteria all pass."""
        undecided: list[tuple[Route, list[str]]] = []
        for r in self.b.spec.routes:
            if r.applies is not None and not r.applies.contains(self.as_of):
                continue
            outs = {cid: outcomes[cid] for cid in r.criteria if cid in outcomes}
            if FAIL in outs.values():
                continue
            if UNKNOWN in outs.values():
                undecided.append((r, [cid for cid, o in outs.items() if o == UNKNOWN]))
                continue
            return "eligible", r, undecided
        return ("needs_info" if undecided else "ineligible"), None, undecided

    def _route_words(self, j: "Judged", criteria: list[CriterionResult], ctx: Ctx
                     ) -> tuple[RouteResult | None, list[str], str | None]:
        """(the route chosen, missing materials, note): a better route left undecided is
        named in the note; with no route open, what every open route still needs."""
        by_id = {c.id: c for c in criteria}
        if j.route is not None:
            r, docs = j.route, self.b.docs
            chosen = RouteResult(id=r.id, title=r.title, binding=r.binding,
                                 legal_basis=[docs[b.ref].citation(b.article) for b in r.basis],
                                 note=cn_dates_in(r.note), criteria=[cid for cid in r.criteria if cid in by_id])
            note = None
            if j.undecided:
                # an earlier route (higher precedence) still open: name what would decide it
                earlier, ids = j.undecided[0]
                facts = "、".join(f"“{self.registry.label(p, ctx.profile)}”" for p in dict.fromkeys(
                    p for cid in ids for p in j.asked_by.get(cid, [])))
                note = f"另：补充{facts}后，还可判断是否适用优先的情形“{earlier.title}”" if facts else None
            return chosen, [], note
        if j.undecided:
            return None, list(dict.fromkeys(m for _, ids in j.undecided for cid in ids
                                            for m in by_id[cid].materials)), None
        return None, [], self.b.spec.no_route

    # -- amount -----------------------------------------------------------------------------
    def amount(self, ctx: Ctx) -> tuple[float | None, bool, list[str]]:
        """(amount, provisional?, notes) for this subject. The notes say which assumption was
        made, or which fact is missing when no amount can be given."""
        for spec, cond in self.amount_specs:
            if cond is None:
                return self._amount(spec, ctx)
            out, asked = evaluate(cond, ctx)
            if out == PASS:
                return self._amount(spec, ctx)
            if out == UNKNOWN:
                labels = "、".join(dict.fromkeys(self.registry.label(p, ctx.profile) for p in asked))
                return None, False, [f"尚不能确定适用的计算方法（缺少{labels}），暂无金额"]
        return None, False, []

    def _amount(self, spec: AmountSpec, ctx: Ctx) -> tuple[float | None, bool, list[str]]:
        used: list[str] = []
        assumed: list[tuple[str, Any]] = []
        method = [f"计算方法：{spec.formula}"] if spec.formula else []

        def num(x: Any) -> float | None:
            if hasattr(x, "param"):
                used.append(x.param)
                return self.params(x.param)
            return x

        value: float | None = None
        inputs: list[str] = []
        if spec.lookup:
            table = self.params(spec.lookup.param)
            used.append(spec.lookup.param)
            for key in spec.lookup.keys:
                k = read(key, ctx)
                if k is None and key in spec.lookup.if_unknown:
                    k = spec.lookup.if_unknown[key]
                    assumed.append((key, k))
                if k is None or not isinstance(table, dict):
                    table = None
                    break
                table = table.get(("true" if k else "false") if isinstance(k, bool) else str(k))
            value = table if isinstance(table, (int, float)) else None
        elif spec.brackets:
            inputs.append(spec.brackets.of)
            base = read(spec.brackets.of, ctx)
            if base is not None:
                value, lower = 0.0, 0.0
                for band in spec.brackets.bands:
                    upper, rate = num(band.up_to), num(band.rate)
                    if rate is None:
                        value = None
                        break
                    top = base if upper is None else min(base, upper)
                    if top > lower:
                        value += (top - lower) * rate
                    lower = upper if upper is not None else lower
                    if upper is None or base <= upper:
                        break
        elif spec.multiply:
            inputs.append(spec.multiply.fact)
            base, rate = read(spec.multiply.fact, ctx), num(spec.multiply.by)
            value = None if base is None or rate is None else max(base, 0) * rate
        for fact in spec.times:
            inputs.append(fact)
            factor = read(fact, ctx)
            value = None if value is None or factor is None else value * factor
        if value is None:
            unknown = [self.registry.facts[f].label for f in inputs if read(f, ctx) is None]
            why = [f"缺少{'、'.join(unknown)}，无法计算金额"] if unknown else []
            return None, False, why + (method if why else [])
        amount = round(float(value), 2)
        if amount.is_integer():
            amount = int(amount)        # 300000, as the contract shows it, not 300000.0
        notes = [f"{self.registry.facts[k].label}未填写，按“{self.registry.value_text(k, v)}”计算"
                 for k, v in assumed]
        return amount, any(self.provisional(p) for p in used), notes + method
