"""The durable_rules path against the reference semantics (the plain-Python interpreter).

1. The shipped rules: for random profiles (nulls, empty lists, boundary values), dates and
   ledger states, both backends give the same response, byte for byte.
2. Every compiled shape: random condition trees over the whole fact catalogue (every
   operator, every value form, all/any/not nesting, counts with item filters) compiled into
   throwaway rulesets; every criterion's outcome must equal the interpreter's.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Evaluator
from engine.registry import FactType
from engine.loader import Rulebook, _check_benefit, load_rulebook
from engine.ruleschema import BenefitFile
from engine.yamlsource import SourceDoc
from profiles import AS_OF, profiles

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dump(resp) -> str:
    return json.dumps(resp.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


@pytest.mark.timeout(300)
@SETTINGS
@given(ps=st.lists(profiles(), min_size=1, max_size=4), as_of=AS_OF,
       awarded=st.sampled_from([None, "empty", "some"]))
def test_shipped_rules_engine_equals_interpreter(engine_eval, interp_eval, ps, as_of, awarded):
    ledger = None if awarded is None else set()
    if awarded == "some":
        ledger = {f"device-registration-grant|{r['certificate_no']}"
                  for p in ps for r in (p["device_registrations"] or [])[:1]}
    got = engine_eval.evaluate_many(ps, as_of, awarded=ledger)
    want = interp_eval.evaluate_many(ps, as_of, awarded=ledger)
    assert [dump(g) for g in got] == [dump(w) for w in want]


# ---- random condition trees ------------------------------------------------------------
# Tiny value domains shared by the literals and the profiles, so that equality and every
# boundary (x == k, dates equal to as_of − 36 months, to the window's coverage dates) happen
# often. Evaluation date 2026-03-31 → default window 2026-H1, coverage 2025-10-01..2026-03-31.
SHAPE_AS_OF = date(2026, 3, 31)
NUMS = [0, 1, 2]
DATES = [date(2023, 3, 31), date(2024, 1, 1), date(2025, 10, 1), date(2026, 3, 31)]
NUM_EDGES = NUMS + [0.5]
DATE_VALUES = DATES + [{"as_of": {}}, {"as_of": {"months": -36}}, {"as_of": {"years": -2}, "start_of": "year"},
                       {"as_of": {"days": -1}, "end_of": "month"}, {"window": "coverage_from"},
                       {"window": "coverage_to"}, {"as_of": {"years": -3, "days": 1}}]


CODES = ["C3589", "17", "51", "4331"]


# dates measured from another date of the subject (or the enterprise): per-subject counts
FACT_DATES = {"enterprise": [{"fact": "established_on", "years": 2}],
              "certificate": [{"fact": "established_on", "years": 2}, {"fact": "certificate.obtained_on"},
                              {"fact": "certificate.obtained_on", "years": -1, "days": 1}]}


def values_for(t: FactType, unit: str = "enterprise"):
    if t.name == "bool":
        return st.booleans()
    if t.name == "int":
        return st.sampled_from(NUMS)
    if t.name == "number":
        return st.sampled_from(NUM_EDGES)
    if t.name == "date":
        return st.sampled_from(DATE_VALUES + FACT_DATES[unit])
    if t.name == "enum":
        return st.sampled_from(t.domain)
    return st.sampled_from(["C3589", "川", "国", "17", "川械注准20252170031", "", "51", "4331"])


@st.composite
def compare(draw, fields: dict[str, FactType], ref: str, unit: str = "enterprise"):
    path = draw(st.sampled_from(sorted(fields)))
    t = fields[path]
    ops = ["eq", "ne", "in", "not_in"] + (["lt", "lte", "gt", "gte", "between"] if t.ordered else [])
    op = draw(st.sampled_from(ops))
    v = values_for(t, unit)
    if op in ("in", "not_in") and t.name == "string" and draw(st.booleans()):
        rhs = {"param": "codes"}          # a dated code list (e.g. the western provinces)
    elif op in ("in", "not_in"):
        rhs = draw(st.lists(v, min_size=1, max_size=3))
    elif op == "between":
        rhs = [draw(v), draw(v)]
    else:
        rhs = draw(v)
    return {ref: path, op: rhs}


def tree(leaf, depth=3):
    return st.recursive(leaf, lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        kids.map(lambda x: {"not": x})), max_leaves=6)


REGISTRY = load_rulebook().fields
CATALOGUE, LISTS = REGISTRY.facts, REGISTRY.lists


@st.composite
def count(draw, unit: str):
    name = draw(st.sampled_from(sorted(LISTS)))
    item_fields = {k: d.type for k, d in LISTS[name].items.items()}
    spec = {"list": name}
    if draw(st.booleans()):
        spec["where"] = draw(tree(compare(item_fields, "field", unit)))
    return {"count": spec, draw(st.sampled_from(["eq", "lt", "lte", "gt", "gte"])): draw(st.integers(0, 3))}


def condition(unit: str):
    fields = {p: d.type for p, d in CATALOGUE.items() if d.scope in ("enterprise", unit)}
    return tree(st.one_of(compare(fields, "fact", unit), count(unit)))


def benefit_file(bid: str, unit: str, conds: list[dict]) -> dict:
    return {
        "id": bid, "title": "随机条件", "kind": "grant", "unit": unit, "summary": "测试",
        "legal_basis": [{"id": "plan", "title": "工作方案", "doc_no": None, "date": date(2022, 9, 19)}],
        "responsible_units": ["高新区管委会"], "in_force": [{"from": date(2000, 1, 1)}],
        "parameters": {"codes": {"description": "代码", "unit": "代码", "values": [
            {"from": date(2000, 1, 1), "value": CODES, "reference": {"basis": "plan"}}]}},
        "criteria": [{"id": f"c{i}", "text": "条件", "basis": [{"ref": "plan"}], "when": c}
                     for i, c in enumerate(conds)],
    }


def small(t: FactType):
    if t.name == "date":
        return st.sampled_from(DATES + [date(2023, 4, 1), date(2026, 3, 30)]).map(date.isoformat)
    if t.name == "number":
        return st.sampled_from([0.0, 0.5, 1.0, 2.0])
    return values_for(t)


@st.composite
def small_profiles(draw):
    """Profiles whose every value comes from the tiny domains above (null often)."""
    from engine.uscc import make_uscc
    p = {"uscc": make_uscc("91512000MA62XY001"), "name": "测试企业"}
    for path, d in CATALOGUE.items():
        if d.scope == "enterprise" and d.spec.entered and "." not in path and not d.spec.required:
            if path == "industry_code":
                p[path] = draw(st.sampled_from([None, "C3589", "F5174"]))
            elif path == "registered_division_code":
                p[path] = draw(st.sampled_from([None, "512002", "430000", "433101", "330106"]))
            elif d.spec.unit == "比例":
                p[path] = draw(st.sampled_from([None, 0.0, 0.5, 1.0]))
            else:
                p[path] = draw(st.one_of(st.none(), small(d.type)))
    p["hnte_certificate"] = draw(st.one_of(st.none(), st.just(False), small(CATALOGUE["hnte_certificate.issued_on"].type)
                                           .map(lambda d: {"number": "GR1", "issued_on": d})))
    nos = ["川械注准20252170031", "国械注准20253170045", "国械注进20243170010", "川资械备20240012号", "编号不规范"]
    regs = draw(st.one_of(st.none(), st.lists(st.sampled_from(nos), max_size=3, unique=True)))
    p["device_registrations"] = None if regs is None else [
        {"certificate_no": n, "origin": draw(st.sampled_from([None, "self_developed", "introduced"])),
         "obtained_on": draw(st.one_of(st.none(), small(CATALOGUE["certificate.obtained_on"].type))),
         "innovative": draw(st.sampled_from([None, True, False]))} for n in regs]
    p["violations"] = draw(st.one_of(st.none(), st.lists(st.fixed_dictionaries({
        "kind": st.sampled_from([None, "tax_evasion", "refund_fraud", "other"]),
        "decided_on": st.one_of(st.none(), small(CATALOGUE["certificate.obtained_on"].type))}), max_size=3)))
    return p


def _throwaway_rulebook(book, ent: list[dict], cert: list[dict]) -> Rulebook:
    from engine.loader import Benefit
    benefits = {}
    for bid, unit, conds in (("small-low-profit-cit", "enterprise", ent),
                             ("device-registration-grant", "certificate", cert)):
        spec = BenefitFile.model_validate(benefit_file(bid, unit, conds))
        compiled, problems, _ = _check_benefit(spec, SourceDoc(path=None, data=None), bid, bid,  # type: ignore[arg-type]
                                               book.fields)
        assert not problems, problems
        benefits[bid] = Benefit(spec, compiled, None)  # type: ignore[arg-type]
    return Rulebook(benefits=benefits, fields=book.fields, calendar=book.calendar, common=book.common,
                    version="test", files=[], root=book.root)


@pytest.mark.timeout(600)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(ent=st.lists(condition("enterprise"), min_size=1, max_size=6),
       cert=st.lists(condition("certificate"), min_size=1, max_size=6),
       ps=st.lists(small_profiles(), min_size=1, max_size=4),
       ledger=st.sampled_from([None, set(), {"device-registration-grant|川械注准20252170031"}]))
def test_every_compiled_shape_matches_interpreter(book, ent, cert, ps, ledger):
    as_of = SHAPE_AS_OF
    rb = _throwaway_rulebook(book, ent, cert)
    got = Evaluator(rb, "durable_rules").evaluate_many(ps, as_of, awarded=ledger)
    want = Evaluator(rb, "interpreter").evaluate_many(ps, as_of, awarded=ledger)
    for g, w in zip(got, want):
        for rg, rw in zip(g.results, w.results):
            assert [(c.id, c.outcome) for c in rg.criteria] == [(c.id, c.outcome) for c in rw.criteria]
            assert rg.status == rw.status


def test_a_look_back_measured_from_each_subjects_date_counts_per_subject(book):
    # "no violation in the year before this certificate was obtained": one count per certificate
    look_back = {"count": {"list": "violations", "where": {"all": [
        {"field": "decided_on", "gt": {"fact": "certificate.obtained_on", "years": -1}},
        {"field": "decided_on", "lte": {"fact": "certificate.obtained_on"}}]}}, "eq": 0}
    rb = _throwaway_rulebook(book, [{"fact": "in_park", "eq": True}], [look_back])
    p = {"uscc": "91512000MA62XY001U", "name": "甲", "in_park": True,
         "violations": [{"kind": "other", "decided_on": "2025-06-30"}],
         "device_registrations": [
             {"certificate_no": "川械注准20252170031", "obtained_on": "2026-06-30"},   # exactly a year: outside
             {"certificate_no": "川械注准20252170032", "obtained_on": "2026-06-29"},   # inside
             {"certificate_no": "川械注准20252170033", "obtained_on": "2025-06-29"},   # before it: outside
             {"certificate_no": "川械注准20252170034"}]}                               # no date: unknown
    for backend in ("durable_rules", "interpreter"):
        results = [r for r in Evaluator(rb, backend).evaluate(p, date(2026, 7, 1)).results
                   if r.benefit_id == "device-registration-grant"]
        assert [r.criteria[0].outcome for r in results] == ["pass", "fail", "pass", "unknown"], backend
        assert results[3].missing_facts == ["device_registrations[3].obtained_on"]


# ---- numbers: every numeric field, any finite value, through the real engine -----------------
NUMERIC = {path: f.spec for path, f in REGISTRY.facts.items()
           if f.scope == "enterprise" and f.type.name in ("int", "number") and "." not in path}


BASE = {"uscc": "91512000MA62XY001U", "name": "数值测试企业", "in_park": True, "tax_credit_rating": "A",
        "violations": [], "hnte_certificate": False, "restricted_industry": False,
        "rd_excluded_industry": False, "tax_collection": "audit", "immediate_refund_since_2019_04": False}


def in_domain(spec):
    """Any value the field accepts, with every allowed decimal, bounds and tiny values
    (1e-05 is a valid share) drawn often."""
    step = 1 if not spec.decimals else float(Decimal(1).scaleb(-spec.decimals))    # 1e-06, 0.01
    ten_steps = 10 if not spec.decimals else float(Decimal(10).scaleb(-spec.decimals))
    return st.one_of(
        st.decimals(min_value=spec.min, max_value=spec.max, places=spec.decimals,
                    allow_nan=False, allow_infinity=False)
        .map(lambda d: int(d) if d == d.to_integral_value() else float(d)),
        st.sampled_from([spec.min, spec.max, min(spec.max, max(spec.min, step)),
                         min(spec.max, max(spec.min, ten_steps)),
                         min(spec.max, 2e16), min(spec.max, 20000000000000000)]))


@pytest.mark.timeout(600)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({path: in_domain(spec) for path, spec in NUMERIC.items()}), as_of=AS_OF)
def test_every_number_in_a_fields_domain_is_decided_as_the_reference_decides_it(
        engine_eval, interp_eval, values, as_of):
    # The C engine runs in its own process: a crash would surface as EngineCrashed here.
    from engine.profile import parse_profile
    parsed = parse_profile({**BASE, **values}, REGISTRY)
    got = engine_eval.evaluate(parsed, as_of, awarded=set())
    want = interp_eval.evaluate(parsed, as_of, awarded=set())
    assert dump(got) == dump(want)


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(sorted(NUMERIC)),
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(),
                       st.sampled_from([1e-05, 2e16, 1e308, 10 ** 30, 2 ** 63, -(2 ** 64)])))
def test_any_other_number_is_refused_naming_its_field(engine_eval, path, value):
    from engine.profile import ProfileError, parse_profile
    spec = NUMERIC[path]
    try:
        parsed = parse_profile({**BASE, path: value}, REGISTRY)
    except ProfileError as e:
        assert [x.path for x in e.problems] == [path]
        return
    assert spec.min <= value <= spec.max
    engine_eval.evaluate(parsed, date(2026, 3, 31), awarded=set())     # decided, no crash
