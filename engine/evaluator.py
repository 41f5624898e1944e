"""The public entry point: evaluate profiles against the rulebook.

Flow per call: profiles → facts (slots) → durable_rules decides every criterion (and every
`count`'s item filter) → outcomes → `Explainer` builds the contract's results.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, fields as dataclass_fields
from datetime import date
from typing import Any, Callable, Iterable, Sequence

from engine import interpreter, taxdates
from engine.adapter import MAX_FACTS, CompiledRuleset, EngineError
from engine.compiler import Plan, Slot, SlotTable, build_rules, normalize, scope_of
from engine.conditions import Compare, FactDate, WindowDate, anchor_of, leaves
from engine.dates import resolve_date, shift_fact_date
from engine.explain import Explainer
from engine.suggest import Suggester
from engine.interpreter import FAIL, PASS, UNKNOWN, Ctx
from engine.loader import Benefit, Rulebook, WindowContext
from engine.profile import Profile, parse_profile, profile_model, shanghai_today
from engine.registry import FieldRegistry, many_reader
from engine.results import (OUTCOME_CODE, BenefitResult, Conflict, Suggestion, CriterionResult, EligibilityResponse,
                            Subject, TaxItem, TaxSelfAssessment, Verdict)
from engine.taxdates import settlement_deadline
from engine.vocabulary import STATUS, money

BACKENDS = ("durable_rules", "interpreter")
# What a run returns per subject: the full result in words, or only the verdict a record stores
# (with or without the missing facts, which are part of the words)
WORDED, VERDICTS, VERDICTS_ASKED = "worded", "verdicts", "verdicts_asked"


class UnknownBenefit(ValueError):
    def __init__(self, ids: list[str], known: Iterable[str]):
        self.ids = ids
        super().__init__(f"没有事项编号“{'、'.join(ids)}”；可用的事项编号：{'、'.join(known)}")


class Evaluator:
    def __init__(self, book: Rulebook, backend: str = "durable_rules"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        self.book = book
        self.registry: FieldRegistry = book.fields
        self.backend = backend
        self.ruleset_version = book.version
        self._compiled: dict[tuple, tuple[CompiledRuleset, Plan]] = {}
        self._compile_lock = threading.Lock()
        self._explainers: dict[tuple, Explainer] = {}
        self._prepared_cache: dict[tuple, _Prepared] = {}
        self._next_windows: dict[date, WindowContext] = {}

    # -- parameters ---------------------------------------------------------------------------
    @staticmethod
    def _override(b: Benefit, name: str, window: WindowContext | None) -> Any:
        if window is None or not window.amounts:
            return None
        return window.amounts.get(f"{b.id}.{name}", window.amounts.get(name))

    def params_for(self, b: Benefit, as_of: date, window: WindowContext | None
                   ) -> tuple[Callable[[str], Any], Callable[[str], bool]]:
        known: dict[str, Any] = {}      # a criterion reads its parameters once per subject

        def value(name: str) -> Any:
            if name in known:
                return known[name]
            o = self._override(b, name, window)
            if o is None:
                pv = b.param(name, as_of)
                o = pv.value if pv else None
            known[name] = o
            return o

        marked: dict[str, bool] = {}    # and an amount asks whether its parameters are provisional

        def provisional(name: str) -> bool:
            if name not in marked:
                pv = b.param(name, as_of)
                # a value set by the round's notice is not provisional
                marked[name] = self._override(b, name, window) is None and bool(pv and pv.provisional)
            return marked[name]
        return value, provisional

    def _ruleset(self, benefits: tuple[str, ...], as_of: date, window: WindowContext
                 ) -> tuple[CompiledRuleset, Plan]:
        """The compiled ruleset of these benefits for the parameter values in force (cached;
        a few per rulebook)."""
        chosen = {bid: self.book.benefits[bid] for bid in benefits}
        fns = {bid: self.params_for(b, as_of, window)[0] for bid, b in chosen.items()}
        key = (benefits, *((bid, name, json.dumps(fns[bid](name), sort_keys=True))
                           for bid, b in chosen.items() for name in b.spec.parameters))
        with self._compile_lock:
            if key not in self._compiled:
                rules, plan = build_rules(chosen, lambda bid: fns[bid], self.registry)
                self._compiled[key] = (CompiledRuleset(rules), plan)
            return self._compiled[key]

    def _explainer(self, b: Benefit, as_of: date, window: WindowContext) -> Explainer:
        """Explainers render the subject-independent texts once; cached per date and window
        (bounded: an API serving many dates just recomputes)."""
        key = (b.id, as_of, *_window_key(window))
        with self._compile_lock:
            ex = self._explainers.get(key)
        if ex is None:
            ex = Explainer(b, as_of, window, *self.params_for(b, as_of, window), self.registry)
            with self._compile_lock:
                if len(self._explainers) >= 256:
                    self._explainers.clear()
                self._explainers[key] = ex
        return ex

    def _next_window(self, as_of: date) -> WindowContext:
        w = self._next_windows.get(as_of)
        if w is None:
            if len(self._next_windows) >= 1024:
                self._next_windows.clear()
            w = self._next_windows[as_of] = self.book.calendar.next_window(as_of)
        return w

    # -- public API ---------------------------------------------------------------------------
    def selected(self, benefits: Sequence[str] | None) -> list[Benefit]:
        if benefits is None:
            return list(self.book.benefits.values())
        unknown = [b for b in benefits if b not in self.book.benefits]
        if unknown:
            raise UnknownBenefit(unknown, self.book.benefits)
        return [b for bid, b in self.book.benefits.items() if bid in set(benefits)]

    def tax_year_of(self, as_of: date) -> int:
        """The tax year a tax preference is judged for on `as_of`: during the 汇算清缴 of
        year Y (until its deadline in Y+1) it is Y, afterwards the current year."""
        deadline, _ = settlement_deadline(self.book, as_of.year - 1)
        return as_of.year - 1 if deadline is not None and as_of <= deadline else as_of.year

    def _groups(self, chosen: list[Benefit], as_of: date, tax_year: int | None
                ) -> list[tuple[date, list[Benefit], int | None]]:
        """Benefits judged on the same date: tax preferences on the last day of their tax
        year, everything else on `as_of`."""
        tax = [b for b in chosen if b.spec.tax is not None and b.spec.tax.period == "year"]
        other = [b for b in chosen if b not in tax]
        ty = tax_year if tax_year is not None else self.tax_year_of(as_of)
        return [g for g in ((as_of, other, None), (date(ty, 12, 31), tax, ty)) if g[1]]

    def evaluate(self, profile: Profile | dict, as_of: date | None = None,
                 benefits: Sequence[str] | None = None, window: WindowContext | None = None,
                 awarded: Iterable[str] | None = None, tax_year: int | None = None) -> EligibilityResponse:
        return self.evaluate_many([profile], as_of, benefits, window, awarded, tax_year)[0]

    def evaluate_many(self, profiles: Sequence[Profile | dict], as_of: date | None = None,
                      benefits: Sequence[str] | None = None, window: WindowContext | None = None,
                      awarded: Iterable[str] | None = None, tax_year: int | None = None
                      ) -> list[EligibilityResponse]:
        as_of = as_of or (window.as_of if window and window.as_of else shanghai_today())
        chosen = self.selected(benefits)
        per_profile = self._run(profiles, chosen, as_of, window, awarded, tax_year, WORDED)
        return [EligibilityResponse(as_of=as_of, ruleset_version=self.ruleset_version,
                                    results=[r for b in chosen for r in by_benefit.get(b.id, [])])
                for by_benefit in per_profile]

    def decide_many(self, profiles: Sequence[Profile | dict], as_of: date | None = None,
                    window: WindowContext | None = None, awarded: Iterable[str] | None = None,
                    missing_facts: bool = False) -> list[list[Verdict]]:
        """Every benefit's verdict per profile, as `evaluate_many` decides it but without the
        words around it: what a batch stores (the words are rebuilt from the ruleset). The
        missing facts, part of the words, only with `missing_facts`."""
        as_of = as_of or (window.as_of if window and window.as_of else shanghai_today())
        chosen = self.selected(None)
        shape = VERDICTS_ASKED if missing_facts else VERDICTS
        return [[v for b in chosen for v in by_benefit.get(b.id, [])]
                for by_benefit in self._run(profiles, chosen, as_of, window, awarded, None, shape)]

    def _run(self, profiles: Sequence[Profile | dict], chosen: list[Benefit], as_of: date,
             window: WindowContext | None, awarded: Iterable[str] | None, tax_year: int | None,
             shape: str) -> list[dict[str, list]]:
        """Per profile, benefit id → its results in `shape` (WORDED, VERDICTS or
        VERDICTS_ASKED), in subject order."""
        window = window or self._next_window(as_of)
        model = profile_model(self.registry)
        profs = [p if isinstance(p, model) else parse_profile(p, self.registry) for p in profiles]
        awarded_set = frozenset(awarded) if awarded is not None else None
        per_profile: list[dict[str, list]] = [{} for _ in profs]
        for when, group, ty in self._groups(chosen, as_of, tax_year):
            counts: list[dict | None] = [None] * len(profs)
            if self.backend == "durable_rules":
                outcomes, counts = self._decide_engine(profs, group, when, window, awarded_set)
            else:
                outcomes = self._decide_interpreter(profs, group, when, window, awarded_set)
            exs = [self._explainer(b, when, window) for b in group]
            for pi, p in enumerate(profs):
                for r in self._explain(p, exs, window, awarded_set, counts[pi],
                                       lambda ri, bid, pi=pi: outcomes.get((pi, ri, bid), {}), shape):
                    if shape == WORDED:
                        r.tax_year = ty
                    per_profile[pi].setdefault(r.benefit_id, []).append(r)
        return per_profile

    def explain(self, profile: Profile | dict, as_of: date, window: WindowContext | None,
                decided: Callable[[str, str], dict[str, str]], awarded: Iterable[str] | None = None
                ) -> EligibilityResponse:
        """The results of outcomes decided earlier (a stored decision): this ruleset's texts,
        citations and materials around the criterion outcomes of record, and the facts missing
        for them. `decided(benefit_id, subject_id)` gives {criterion id: outcome}; `awarded`
        is the award ledger the decision saw; the caller restores what was observed."""
        window = window or self._next_window(as_of)
        model = profile_model(self.registry)
        p = profile if isinstance(profile, model) else parse_profile(profile, self.registry, date.max)

        def outcomes(ri: int, bid: str) -> dict[str, str]:
            b = self.book.benefits[bid]
            if ri < 0:
                return decided(bid, "")
            info = self.registry.list_of(b.spec.unit)
            return decided(bid, info.key_of(getattr(p, info.name)[ri]))
        chosen = self.selected(None)
        by_benefit: dict[str, list[BenefitResult]] = {}
        for when, group, ty in self._groups(chosen, as_of, None):
            exs = [self._explainer(b, when, window) for b in group]
            for r in self._explain(p, exs, window, None if awarded is None else frozenset(awarded),
                                   None, outcomes):
                r.tax_year = ty
                by_benefit.setdefault(r.benefit_id, []).append(r)
        return EligibilityResponse(as_of=as_of, ruleset_version=self.ruleset_version,
                                   results=[r for b in chosen for r in by_benefit.get(b.id, [])])

    def _explain(self, p: Profile, explainers: list[Explainer], window: WindowContext,
                 awarded: frozenset[str] | None, counts: dict | None,
                 outcomes: Callable[[int, str], dict[str, str]], shape: str = WORDED) -> list:
        """Every result of one profile, in `shape`: per benefit (the explainers of one
        evaluation date, `_explainer`), and per subject for per-item benefits. The profile's
        facts are read once for all its benefits (Ctx.reads)."""
        results: list = []
        reads: dict[str, Any] = {}
        ask = shape == VERDICTS_ASKED
        for ex in explainers:
            b, bid, as_of = ex.b, ex.b.id, ex.as_of
            make = ex.result if shape == WORDED else (
                lambda ctx, outs, subject, ex=ex: ex.verdict(ctx, outs, subject, ask=ask))
            if b.spec.unit == "enterprise":
                ctx = Ctx(self.registry, p, as_of, window, ex.params, bid, awarded=awarded, counts=counts,
                          reads=reads)
                results.append(make(ctx, outcomes(-1, bid), None))
                continue
            info = self.registry.list_of(b.spec.unit)
            items = getattr(p, info.name)
            if not items:
                if b.spec.without_subject == "ineligible":
                    results.append(self._no_subject(b, ex, items is None) if shape == WORDED
                                   else self._no_subject_verdict(b, ex, items is None, ask))
                continue          # `omit`: nothing to say to an enterprise with no such subject
            for ri, item in enumerate(items):
                ctx = Ctx(self.registry, p, as_of, window, ex.params, bid, item, info.name, ri,
                          awarded, counts, reads)
                results.append(make(ctx, outcomes(ri, bid), Subject(type=b.spec.unit, id=info.key_of(item))))
        return results

    def with_suggestions(self, profile: Profile | dict, resp: EligibilityResponse,
                         window: WindowContext | None = None, awarded: Iterable[str] | None = None,
                         calendar: Any = None) -> EligibilityResponse:
        """The response with, on every result that is not eligible, what would change it
        (engine.suggest). Pages, notices and the API ask for it; batches do not pay for it.
        `calendar`: the windows to read (covering, next_window, by_id), the rules' default
        calendar if None."""
        cal = calendar or self.book.calendar
        p = profile if isinstance(profile, profile_model(self.registry)) else parse_profile(profile, self.registry)
        awarded_set = frozenset(awarded) if awarded is not None else None
        for r in resp.results:
            if r.status not in ("ineligible", "needs_info") or not r.criteria:
                continue
            b = self.book.benefits[r.benefit_id]
            if r.subject is None and b.spec.unit != "enterprise":
                # the subject list itself is unknown: say so; an empty one has nothing to change
                r.suggestions = [Suggestion(None, f"补充“{self.registry.label(m, p)}”（涉及1项待补充的条件）", m)
                                 for m in r.missing_facts]
                continue
            # the window this result was judged in (a self-check judges a certificate in its own)
            w = window or (cal.by_id(r.window.id) if r.window else None) \
                or (cal.next_window(resp.as_of) if calendar else self._next_window(resp.as_of))
            as_of = date(r.tax_year, 12, 31) if r.tax_year and b.spec.tax and b.spec.tax.period == "year" else resp.as_of
            ex = self._explainer(b, as_of, w)
            item, name, ri = None, None, -1
            if r.subject is not None:
                info = self.registry.list_of(b.spec.unit)
                name = info.name
                ri, item = next(((i, it) for i, it in enumerate(getattr(p, name) or [])
                                 if info.key_of(it) == r.subject.id), (-1, None))
                if item is None:
                    continue
            ctx = Ctx(self.registry, p, as_of, w, ex.params, b.id, item, name, ri, awarded_set)
            asked_by = {c.id: interpreter.evaluate(c.cond, ctx)[1] for c in ex.applicable}
            suggester = Suggester(self.registry, ex.params, cal.covering, resp.as_of)
            r.suggestions = suggester.suggest(ctx, ex.applicable, r.criteria, asked_by)
        return resp

    def self_check(self, profile: Profile | dict, as_of: date | None = None,
                   awarded: Iterable[str] | None = None, calendar: Any = None) -> EligibilityResponse:
        """What an enterprise checking itself needs (the web self-check and `yagu check`): every
        benefit on `as_of` (today by default), each certificate judged in the window whose
        coverage holds its date — shown in its own window, closed or not, never failed against
        the next one — and what would change each verdict. `calendar`: the windows as staff
        opened them (store.windows.StoreCalendar), the rules' default calendar if None."""
        p = profile if isinstance(profile, profile_model(self.registry)) else parse_profile(profile, self.registry)
        day = as_of or shanghai_today()
        cal = calendar or self.book.calendar
        resp = self.evaluate(p, day, awarded=awarded, window=cal.next_window(day) if calendar else None)
        resp = self._own_windows(p, resp, day, awarded, cal)
        return self.with_suggestions(p, resp, awarded=awarded, calendar=calendar)

    def _own_windows(self, p: Profile, resp: EligibilityResponse, day: date,
                     awarded: Iterable[str] | None, cal: Any) -> EligibilityResponse:
        moved: dict[tuple[str, str], list[str]] = {}
        own_of: dict[str, WindowContext] = {}
        for r in resp.results:
            if r.subject is None or r.window is None:
                continue
            b = self.book.benefits[r.benefit_id]
            info = self.registry.list_of(b.spec.unit)
            item = next((it for it in getattr(p, info.name) or [] if info.key_of(it) == r.subject.id), None)
            bound = [leaf.path for c in b.criteria for leaf in leaves(c.cond)
                     if isinstance(leaf, Compare) and any(isinstance(v, WindowDate) for v in leaf.values)]
            when = next((self.registry.facts[path].read(item) for path in bound if item is not None), None)
            own = cal.covering(when) if isinstance(when, date) else None
            if own is None or own.id == r.window.id:
                continue
            own_of[own.id] = own
            moved.setdefault((own.id, r.benefit_id), []).append(r.subject.id)
        if not moved:
            return resp
        replaced = {}
        for (wid, benefit), subjects in moved.items():
            own = own_of[wid]
            other = self.evaluate(p, min(day, own.closes_on), [benefit], window=own, awarded=awarded)
            replaced.update({(benefit, r.subject.id): r for r in other.results
                             if r.subject is not None and r.subject.id in subjects})
        results = [replaced.get((r.benefit_id, r.subject.id if r.subject else None), r) for r in resp.results]
        return resp.model_copy(update={"results": results})

    def tax_self_assessment(self, profile: Profile | dict, tax_year: int) -> TaxSelfAssessment:
        tax = [b.id for b in self.book.benefits.values() if b.spec.kind == "tax"]
        resp = self.evaluate(profile, date(tax_year, 12, 31), tax, tax_year=tax_year)
        p = profile if isinstance(profile, profile_model(self.registry)) else parse_profile(profile, self.registry)
        items, conflicts = self.tax_view(resp.results, tax_year, p)
        return TaxSelfAssessment(tax_year=tax_year, as_of=date(tax_year, 12, 31),
                                 ruleset_version=self.ruleset_version, items=items, conflicts=conflicts)

    def tax_view(self, results: Sequence[BenefitResult], tax_year: int, profile: Profile | None = None,
                 as_of: date | None = None) -> tuple[list[TaxItem], list[Conflict]]:
        """The tax results as the enterprise claims them: how to claim, what records to keep and
        until when, and the preferences that exclude each other (declared in the rule files).
        Records of a claim judged on its date (`as_of`, by default the end of the tax year) are
        kept a number of years after the end of the year of the claim."""
        claim_year = (as_of or date(tax_year, 12, 31)).year
        keep_until, exact = taxdates.keep_until(self.book, tax_year)
        note = None if exact else "该年度节假日安排尚未发布，汇算清缴期末日如遇法定休假日顺延，保存期限相应顺延"
        items = []
        for r in results:
            spec = self.book.benefits[r.benefit_id].spec
            if spec.tax is None:
                continue
            base = {f.name: getattr(r, f.name) for f in dataclass_fields(r)}
            annual = spec.tax.period == "year"
            items.append(TaxItem(**base, how_to_claim=spec.tax.how_to_claim,
                                 records_to_keep=list(spec.tax.records_to_keep),
                                 keep_until=keep_until if annual else (
                                     date(claim_year + spec.tax.records_years, 12, 31)
                                     if spec.tax.records_years else None),
                                 keep_until_note=note if annual else spec.tax.records_basis))
        return items, self._conflicts(items, tax_year, profile)

    def _conflicts(self, items: list[TaxItem], tax_year: int, profile: Profile | None) -> list[Conflict]:
        """Eligible preferences that exclude each other (declared in the rule files), one
        group per set of mutually exclusive ones, with the cheaper choice where it is known."""
        eligible = [i.benefit_id for i in items if i.status == "eligible"]
        groups: list[list[str]] = []
        for bid in eligible:
            linked = {cf.benefit for cf in self.book.benefits[bid].spec.tax.conflicts_with}  # type: ignore[union-attr]
            linked |= {o for o in eligible if bid in {cf.benefit for cf in
                                                      self.book.benefits[o].spec.tax.conflicts_with}}  # type: ignore[union-attr]
            touching = [g for g in groups if linked & set(g)]
            if not linked & set(eligible):
                continue
            merged = [bid] + [x for g in touching for x in g]
            groups = [g for g in groups if g not in touching] + [merged]
        out = []
        for g in groups:
            members = [bid for bid in self.book.benefits if bid in g]
            reasons = [cf.reason for bid in members
                       for cf in self.book.benefits[bid].spec.tax.conflicts_with  # type: ignore[union-attr]
                       if cf.benefit in members]
            out.append(Conflict(benefits=members, reason="；".join(dict.fromkeys(reasons)),
                                choice=self._cheaper(members, tax_year, profile)))
        return out

    def _cheaper(self, members: list[str], tax_year: int, profile: Profile | None) -> str | None:
        """Which of several rate preferences costs least, from the taxable income."""
        if profile is None:
            return None
        taxes: list[tuple[str, float]] = []
        for bid in members:
            b = self.book.benefits[bid]
            rate_spec = b.spec.tax.rate if b.spec.tax else None
            if rate_spec is None:
                return None
            base = self.registry.facts[rate_spec.of].read(profile)
            rate = (self.params_for(b, date(tax_year, 12, 31), None)[0](rate_spec.rate.param)
                    if hasattr(rate_spec.rate, "param") else rate_spec.rate)
            if base is None or rate is None:
                return None
            taxes.append((b.spec.title, max(float(base), 0.0) * float(rate)))
        base_label = self.registry.facts[self.book.benefits[members[0]].spec.tax.rate.of].label  # type: ignore[union-attr]
        if all(t == 0 for _, t in taxes):
            return f"{base_label}不大于零，选择哪一项都不影响本年度应纳税额"
        low = min(t for _, t in taxes)
        best = [title for title, t in taxes if t == low]
        listing = "；".join(f"{title} {money(round(t, 2))}" for title, t in taxes)
        tail = (f"选择“{best[0]}”税负最低" if len(best) == 1
                else "、".join(f"“{x}”" for x in best) + "税负相同，可任选其一")
        return f"按{base_label}计算应纳企业所得税：{listing}。{tail}"

    # -- deciding -----------------------------------------------------------------------------
    def _no_subject(self, b: Benefit, ex: Explainer, unknown: bool) -> BenefitResult:
        """A per-subject benefit for a profile whose subject list is empty (or unknown)."""
        if not b.in_force_on(ex.as_of):
            return ex.result(Ctx(self.registry, None, ex.as_of, ex.window, ex.params), {}, None)
        info = self.registry.list_of(b.spec.unit)
        status = "needs_info" if unknown else "ineligible"
        crit = CriterionResult(
            id="has_subject", text=f"企业至少有一项{info.item_label}（本项按每项{info.item_label}分别判定）",
            outcome="unknown" if unknown else "fail", observed={info.name: None if unknown else []},
            threshold=f"至少有 1 项{info.item_label}", legal_basis=[b.spec.legal_basis[0].citation()],
            materials=[])
        return BenefitResult(
            benefit_id=b.id, title=b.spec.title, kind=b.spec.kind, subject=None, status=status,
            status_text=STATUS[status], amount_cny=None, amount_provisional=False,
            amount_note=None, criteria=[crit], missing_facts=[info.name] if unknown else [],
            required_materials=ex.materials(), missing_materials=[], window=ex.window_ref())

    def _no_subject_verdict(self, b: Benefit, ex: Explainer, unknown: bool, ask: bool) -> Verdict:
        """`_no_subject`'s result as a verdict (a window decides thousands of them)."""
        if not b.in_force_on(ex.as_of):
            return Verdict(b.id, "", b.spec.kind, "not_in_force", None, False, "", [], [] if ask else None)
        name = self.registry.list_of(b.spec.unit).name
        return Verdict(b.id, "", b.spec.kind, "needs_info" if unknown else "ineligible", None, False,
                       OUTCOME_CODE["unknown" if unknown else "fail"], [{name: None if unknown else []}],
                       ([name] if unknown else []) if ask else None)

    def _decide_interpreter(self, profs: list[Profile], chosen: list[Benefit], as_of: date,
                       window: WindowContext, awarded: frozenset[str] | None) -> dict:
        out: dict[tuple[int, int, str], dict[str, str]] = {}
        for pi, p in enumerate(profs):
            for b in chosen:
                value_fn = self.params_for(b, as_of, window)[0]
                if b.spec.unit == "enterprise":
                    subjects, name = [(-1, None)], None
                else:
                    name = self.registry.list_of(b.spec.unit).name
                    subjects = list(enumerate(getattr(p, name) or []))
                for ri, item in subjects:
                    ctx = Ctx(self.registry, p, as_of, window, value_fn, b.id, item, name, ri, awarded)
                    out[(pi, ri, b.id)] = {c.id: interpreter.evaluate(c.cond, ctx)[0] for c in b.criteria}
        return out

    def _prepared(self, benefits: tuple[str, ...], as_of: date, window: WindowContext) -> "_Prepared":
        """Ruleset, plan, date references and fact builders for one (benefits, date, window);
        cached so a stream of single-profile calls (the API) pays for them once."""
        key = (benefits, as_of, *_window_key(window))
        with self._compile_lock:
            prep = self._prepared_cache.get(key)
        if prep is None:
            ruleset, plan = self._ruleset(benefits, as_of, window)
            refs = {s: resolve_date(s.rhs, as_of, window).toordinal()
                    for table in (*plan.subject_slots.values(), *plan.item_slots.values())
                    for s in table.keys if s.kind == "diff" and not isinstance(s.rhs, FactDate)}
            builders = {scope: _FactBuilder(scope, table, refs, self.registry)
                         for scope, table in plan.subject_slots.items()}
            prep = _Prepared(ruleset, plan, refs, builders)
            with self._compile_lock:
                if len(self._prepared_cache) >= 256:
                    self._prepared_cache.clear()
                self._prepared_cache[key] = prep
        return prep

    def _anchor_owners(self, p: Profile, anchor: str | None) -> list[tuple[int, Any]]:
        """What a count is measured from: the profile once, or each item of the anchor's subject list."""
        if anchor is None:
            return [(-1, None)]
        scope = self.registry.facts[anchor].scope
        if scope == "enterprise":
            return [(-1, p)]
        return list(enumerate(getattr(p, self.registry.list_of(scope).name) or []))

    def _decide_engine(self, profs: list[Profile], group: list[Benefit], as_of: date, window: WindowContext,
                       awarded: frozenset[str] | None) -> tuple[dict, list[dict]]:
        prep = self._prepared(tuple(b.id for b in group), as_of, window)
        ruleset, plan, refs = prep.ruleset, prep.plan, prep.refs

        # Phase 1: list items (violations, ...) against every count's `where`. A count measured
        # from a subject's date (`{fact: case.act_on, years: -3}`) is counted once per subject.
        where_targets = [(i, t) for i, t in enumerate(plan.targets) if t.kind == "where"]
        counts: dict[tuple, tuple[int, int] | None] = {}
        # count index → None, or the scope it is counted per: "E" once per profile, "S" per subject
        anchors = {ci: None if (a := anchor_of(c)) is None else
                   "E" if self.registry.facts[a].scope == "enterprise" else "S"
                   for ci, c in enumerate(plan.counts)}
        anchor_paths = {ci: anchor_of(c) for ci, c in enumerate(plan.counts)}
        if plan.counts:
            runs: list[tuple[str, str | None]] = sorted(
                {(c.list, anchor_paths[ci]) for ci, c in enumerate(plan.counts) if c.where is not None},
                key=lambda x: (x[0], x[1] or ""))
            item_facts, item_keys = [], []
            for pi, p in enumerate(profs):
                for name, anchor in runs:
                    for ri, owner in self._anchor_owners(p, anchor):
                        fact_refs = refs if anchor is None else {
                            **refs, **_anchored_refs(plan.item_slots[name], owner, anchor, self.registry)}
                        for j, item in enumerate(getattr(p, name) or []):
                            item_facts.append(_item_fact(plan.item_slots[name], name, item, fact_refs,
                                                         self.registry))
                            item_keys.append((pi, name, anchor, ri))
            fired = _run_chunked(ruleset, item_facts)
            item_out = _outcomes(fired, where_targets, len(item_facts))
            per_item: dict[tuple, list[str]] = {}
            for (i, t) in where_targets:
                c = plan.counts[t.count]
                for k, (pi, name, anchor, ri) in enumerate(item_keys):
                    if name == c.list and anchor == anchor_paths[t.count]:
                        per_item.setdefault((pi, t.count, ri), []).append(item_out[k].get(i, UNKNOWN))
            for pi, p in enumerate(profs):
                for ci, c in enumerate(plan.counts):
                    items = getattr(p, c.list)
                    for ri, _owner in self._anchor_owners(p, anchor_paths[ci]):
                        key = (pi, ci) if anchors[ci] is None else (pi, ci, ri)
                        if items is None:
                            counts[key] = None
                        elif c.where is None:
                            counts[key] = (len(items), len(items))
                        else:
                            outs = per_item.get((pi, ci, ri), [])
                            counts[key] = (outs.count(PASS), outs.count(PASS) + outs.count(UNKNOWN))

        # Phase 2: one fact per subject (the enterprise, and each item of each subject list).
        facts, keys = [], []
        subject_lists = [(scope_of(s), info) for s, info in self.registry.subjects.items()
                         if plan.subject_slots[scope_of(s)].keys]
        for pi, p in enumerate(profs):
            facts.append(prep.builders["E"].build(p, None, "", counts, pi, awarded, -1, anchors))
            keys.append((pi, -1, "E"))
            for scope, info in subject_lists:
                for ri, item in enumerate(getattr(p, info.name) or []):
                    facts.append(prep.builders[scope].build(p, item, info.key_of(item), counts, pi, awarded,
                                                            ri, anchors))
                    keys.append((pi, ri, scope))
        crit_targets = [(i, t) for i, t in enumerate(plan.targets) if t.kind == "criterion"]
        # scope → [(benefit, [(target index, criterion)])]: each fact visits its own targets only
        by_scope: dict[str, dict[str, list[tuple[int, str]]]] = {}
        for i, t in crit_targets:
            by_scope.setdefault(t.scope, {}).setdefault(t.benefit, []).append((i, t.criterion))
        per_scope = {scope: list(benefits.items()) for scope, benefits in by_scope.items()}
        fired = _run_chunked(ruleset, facts)
        subj_out = _outcomes(fired, crit_targets, len(facts))
        out: dict[tuple[int, int, str], dict[str, str]] = {}
        for k, (pi, ri, scope) in enumerate(keys):
            so = subj_out[k]
            for bid, targets in per_scope.get(scope, ()):
                decided = {crit: so.get(i, UNKNOWN) for i, crit in targets}
                if (pi, ri, bid) in out:
                    out[(pi, ri, bid)].update(decided)
                else:
                    out[(pi, ri, bid)] = decided
        # counts anchored on a subject are left to the explainer, which counts per subject
        by_profile = [{nid: counts.get((pi, ci)) for nid, ci in plan.count_ids.items() if anchors[ci] is None}
                      for pi in range(len(profs))]
        return out, by_profile


def _window_key(window: WindowContext) -> tuple:
    """A window and its parameter overrides, as a cache key (overrides are not hashed by the
    dataclass itself)."""
    return window, json.dumps(window.amounts, sort_keys=True, default=str) if window.amounts else ""


def _run_chunked(ruleset: CompiledRuleset, facts: list[dict]) -> dict[str, set[int]]:
    fired: dict[str, set[int]] = {}
    for start in range(0, len(facts), MAX_FACTS):
        for name, ids in ruleset.run(facts[start:start + MAX_FACTS]).items():
            fired.setdefault(name, set()).update(i + start for i in ids)
    return fired


def _outcomes(fired: dict[str, set[int]], targets: list[tuple[int, Any]], n: int) -> list[dict[int, str]]:
    out: list[dict[int, str]] = [{} for _ in range(n)]
    for i, _t in targets:
        for k in fired.get(f"p{i}", ()):
            out[k][i] = PASS
        for k in fired.get(f"f{i}", ()):
            if out[k].get(i) == PASS:
                raise EngineError(f"rule {i} both passed and failed for fact {k}")
            out[k][i] = FAIL
    return out


@dataclass
class _Prepared:
    ruleset: CompiledRuleset
    plan: Plan
    refs: dict[Slot, int]
    builders: dict[str, "_FactBuilder"]     # scope → builder of its facts


class _FactBuilder:
    """Builds one subject's fact: each catalogue path read once, then every slot from it."""

    def __init__(self, scope: str, table: SlotTable, refs: dict[Slot, int], registry: FieldRegistry):
        self.scope = scope
        paths: dict[str, None] = {}
        self.values: list[tuple[str, str, int]] = []
        self.diffs: list[tuple[str, str, int]] = []
        self.counts: list[tuple[str, int, int]] = []
        self.awarded: list[tuple[str, str]] = []
        for slot, key in table.keys.items():
            if slot.kind in ("cmin", "cmax"):
                self.counts.append((key, slot.count, 0 if slot.kind == "cmin" else 1))
            elif slot.kind == "awarded":
                self.awarded.append((key, slot.benefit))
            else:
                paths[slot.path] = None
                if slot.kind == "diff":
                    self.diffs.append((key, slot.path, refs.get(slot, slot.rhs)))
                else:
                    self.values.append((key, slot.path, registry.facts[slot.path].scale))
        for slot in table.keys:
            if slot.kind == "diff" and isinstance(slot.rhs, FactDate):
                paths[slot.rhs.path] = None
        facts = [registry.facts[path] for path in paths]
        self.read_profile = many_reader([f for f in facts if f.scope == "enterprise"])
        on_item = [f for f in facts if f.scope != "enterprise"]
        self.read_item = many_reader(on_item) if on_item else None

    def build(self, p: Profile, item: Any, key: str, counts: dict, pi: int,
              awarded: frozenset[str] | None, ri: int, anchors: dict[int, str | None]) -> dict:
        raw = self.read_profile(p)
        if self.read_item is not None:
            raw.update(self.read_item(item))
        fact: dict[str, Any] = {"t": self.scope}
        for slot, path, scale in self.values:
            v = raw[path]
            t = type(v)         # the common values inline, the rest as `normalize` says
            fact[slot] = (v if v is None or t is str or t is int and scale == 1 else
                          (1 if v else 0) if t is bool else normalize(v, scale))
        for slot, path, ref in self.diffs:
            v = raw[path]
            if isinstance(ref, FactDate):       # measured from another date of this subject
                d = shift_fact_date(ref, raw[ref.path])
                ref = None if d is None else d.toordinal()
            fact[slot] = None if v is None or ref is None else v.toordinal() - ref
        for slot, ci, side in self.counts:
            kind = anchors.get(ci)
            rng = counts.get((pi, ci) if kind is None else (pi, ci, ri if kind == "S" else -1))
            fact[slot] = None if rng is None else rng[side]
        for slot, bid in self.awarded:
            fact[slot] = (None if awarded is None or item is None
                          else 1 if f"{bid}|{key}" in awarded else 0)
        return fact


def _anchored_refs(table: SlotTable, owner: Any, anchor: str, registry: FieldRegistry) -> dict[Slot, int | None]:
    """The reference days of an item table's fact-date slots, read from one subject (or the
    profile, for an enterprise date); slots anchored elsewhere belong to another run."""
    out: dict[Slot, int | None] = {}
    scope = registry.facts[anchor].scope
    for slot in table.keys:
        if (slot.kind == "diff" and isinstance(slot.rhs, FactDate)
                and registry.facts[slot.rhs.path].scope == scope):
            d = shift_fact_date(slot.rhs, registry.facts[slot.rhs.path].read(owner))
            out[slot] = None if d is None else d.toordinal()
    return out


def _item_fact(table: SlotTable, name: str, item: Any, refs: dict[Slot, int],
               registry: FieldRegistry) -> dict:
    fact: dict[str, Any] = {"t": f"I:{name}"}
    fields = registry.lists[name].items
    for slot, key in table.keys.items():
        d = fields[slot.path]
        v = d.read(item)
        if v is not None and slot.kind == "diff":
            ref = refs.get(slot)
            v = None if ref is None else v.toordinal() - ref
        fact[key] = normalize(v, d.scale)
    return fact
