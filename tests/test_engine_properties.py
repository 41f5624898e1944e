"""Logical properties of evaluation (hypothesis), on the durable_rules path with the shipped rules."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Evaluator
from profiles import AS_OF, profiles

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcomes(resp) -> dict:
    return {(r.benefit_id, r.subject.id if r.subject else None):
            (r.status, tuple(sorted((c.id, c.outcome) for c in r.criteria))) for r in resp.results}


@pytest.mark.timeout(300)
@SETTINGS
@given(p=profiles(), as_of=AS_OF)
def test_evaluation_is_deterministic_byte_for_byte(book, engine_eval, p, as_of):
    a = json.dumps(engine_eval.evaluate(p, as_of, awarded=set()).model_dump(), ensure_ascii=False)
    b = json.dumps(Evaluator(book).evaluate(p, as_of, awarded=set()).model_dump(), ensure_ascii=False)
    assert a == b


@pytest.mark.timeout(300)
@SETTINGS
@given(ps=st.lists(profiles(), min_size=2, max_size=6), as_of=AS_OF)
def test_a_profile_gets_the_same_result_alone_or_in_a_batch(engine_eval, ps, as_of):
    batch = engine_eval.evaluate_many(ps, as_of, awarded=set())
    for p, r in zip(ps, batch):
        assert engine_eval.evaluate(p, as_of, awarded=set()) == r


@pytest.mark.timeout(300)
@SETTINGS
@given(ps=st.lists(profiles(), min_size=1, max_size=4), as_of=AS_OF)
def test_verdicts_a_batch_stores_are_what_the_worded_results_say(engine_eval, ps, as_of):
    """A window stores `decide_many`'s verdicts and rebuilds the words later: they must be
    exactly what the full results decide (status, amount, each criterion's outcome and what it
    saw, the missing facts), benefit by benefit and subject by subject."""
    letter = {"pass": "p", "fail": "f", "unknown": "u"}
    for resp, asked, bare in zip(engine_eval.evaluate_many(ps, as_of, awarded=set()),
                                 engine_eval.decide_many(ps, as_of, awarded=set(), missing_facts=True),
                                 engine_eval.decide_many(ps, as_of, awarded=set())):
        worded = [(r.benefit_id, r.subject.id if r.subject else "", r.kind, r.status, r.amount_cny,
                   r.amount_provisional, "".join(letter[c.outcome] for c in r.criteria),
                   [c.observed for c in r.criteria], r.missing_facts) for r in resp.results]
        assert [(v.benefit_id, v.subject_id, v.kind, v.status, v.amount_cny, v.amount_provisional, v.outcomes,
                 v.observed, v.missing_facts) for v in asked] == worded
        # without the missing facts (what a window stores): the same, and nothing in their place
        assert [(v.benefit_id, v.subject_id, v.kind, v.status, v.amount_cny, v.amount_provisional, v.outcomes,
                 v.observed, v.missing_facts) for v in bare] == [w[:-1] + (None,) for w in worded]


@pytest.mark.timeout(300)
@SETTINGS
@given(p=profiles(), as_of=AS_OF, seed=st.integers(0, 10**6))
def test_order_of_list_items_and_of_criteria_does_not_change_outcomes(book, engine_eval, p, as_of, seed):
    rnd = random.Random(seed)
    shuffled = dict(p)
    for key in ("violations", "device_registrations"):
        if shuffled.get(key):
            shuffled[key] = rnd.sample(shuffled[key], len(shuffled[key]))
    # criteria order: a rulebook whose criteria lists are permuted
    benefits = {}
    for bid, b in book.benefits.items():
        benefits[bid] = replace(b, criteria=rnd.sample(b.criteria, len(b.criteria)))
    permuted = Evaluator(replace(book, benefits=benefits))
    want = outcomes(engine_eval.evaluate(p, as_of, awarded=set()))
    assert outcomes(engine_eval.evaluate(shuffled, as_of, awarded=set())) == want
    assert outcomes(permuted.evaluate(p, as_of, awarded=set())) == want


FILLABLE = {
    "in_park": st.booleans(), "tax_credit_rating": st.sampled_from("ABMCD"),
    "taxable_income_cny": st.sampled_from([0.0, 3_000_000.0, 3_000_000.01]),
    "employees_avg": st.sampled_from([300, 301]), "restricted_industry": st.booleans(),
    "four_industries_sales_share": st.sampled_from([0.5, 0.51]),
    "vat_credit_positive_months": st.integers(0, 8), "immediate_refund_since_2019_04": st.booleans(),
    "on_serious_dishonest_list": st.booleans(), "tax_collection": st.sampled_from(["audit", "deemed"]),
    "rd_expense_cny": st.sampled_from([0.0, 1.0]), "western_encouraged_share": st.sampled_from([0.6, 0.59]),
    "violations": st.just([]), "hnte_certificate": st.just(False),
}


@pytest.mark.timeout(300)
@SETTINGS
@given(p=profiles(), as_of=AS_OF, field=st.sampled_from(sorted(FILLABLE)), data=st.data())
def test_filling_an_unknown_fact_never_flips_a_decided_criterion(engine_eval, registry, p, as_of, field, data):
    p = dict(p, **{field: None})
    filled = dict(p, **{field: data.draw(FILLABLE[field])})
    before = engine_eval.evaluate(p, as_of, awarded=set())
    after = engine_eval.evaluate(filled, as_of, awarded=set())
    for rb, ra in zip(before.results, after.results):
        for cb, ca in zip(rb.criteria, ra.criteria):
            assert cb.id == ca.id
            reads = {path for path in cb.observed}
            touched = field in reads or any(registry.facts[r].spec.from_ == field for r in reads
                                            if r in registry.facts) \
                or (field == "hnte_certificate" and any(r.startswith("hnte_") for r in reads))
            if not touched:
                assert ca.outcome == cb.outcome, (rb.benefit_id, cb.id)
            elif cb.outcome != "unknown":
                assert ca.outcome == cb.outcome, (rb.benefit_id, cb.id, "Kleene monotonicity")
        # a status that was decided stays decided in the same direction once more is known
        if rb.status == "ineligible":
            assert ra.status == "ineligible"


def test_unknown_never_becomes_fail_and_missing_facts_name_the_nulls(engine_eval):
    p = {"uscc": "91512000MA62XY001U", "name": "空白企业"}
    resp = engine_eval.evaluate(p, date(2026, 3, 31))
    tax = [r for r in resp.results if r.kind == "tax" and r.status != "not_in_force"]
    assert tax and all(r.status == "needs_info" for r in tax)
    # nothing fails for lack of facts; only what the required USCC tells (the region) is decided
    outcomes = {(r.benefit_id, c.id): c.outcome for r in tax for c in r.criteria}
    assert {k for k, o in outcomes.items() if o != "unknown"} == {("western-development-rate", "located_in_western_region")}
    assert outcomes[("western-development-rate", "located_in_western_region")] == "pass"
    assert all(r.missing_facts for r in tax)
    grant = resp.results[0]
    assert grant.benefit_id == "device-registration-grant" and grant.status == "needs_info"
    assert grant.missing_facts == ["device_registrations"]
