"""What would make me eligible (issue 15 part 2): suggestions computed from the criteria."""
from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.profile import parse_profile
from engine.suggest import with_value
from profiles import AS_OF, profiles


def _suggested(engine_eval, registry, raw, as_of):
    p = parse_profile(raw, registry)
    return p, engine_eval.with_suggestions(p, engine_eval.evaluate(p, as_of, awarded=set()), awarded=set())


def _result(resp, r):
    return next(x for x in resp.results
                if x.benefit_id == r.benefit_id and (x.subject.id if x.subject else None) == (r.subject.id if r.subject else None))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=profiles(), as_of=AS_OF)
def test_a_suggested_value_makes_its_criterion_pass_and_changes_nothing_else(engine_eval, registry, raw, as_of):
    p, resp = _suggested(engine_eval, registry, raw, as_of)
    for r in resp.results:
        for s in r.suggestions:
            assert "_" not in s.text and "[" not in s.text, s.text      # no field paths reach a reader
            if s.value is None:
                continue
            changed = with_value(p, s.fact, s.value)
            again = _result(engine_eval.evaluate(changed, as_of, awarded=set()), r)
            before = {c.id: c.outcome for c in r.criteria}
            after = {c.id: c.outcome for c in again.criteria}
            assert after[s.criterion] == "pass", (r.benefit_id, s)
            assert {k: v for k, v in after.items() if k != s.criterion} == \
                   {k: v for k, v in before.items() if k != s.criterion}, (r.benefit_id, s)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=profiles(), as_of=AS_OF)
def test_missing_facts_are_asked_for_those_deciding_most_first(engine_eval, registry, raw, as_of):
    _, resp = _suggested(engine_eval, registry, raw, as_of)
    for r in resp.results:
        asks = [s for s in r.suggestions if s.criterion is None]
        if r.status == "needs_info":
            assert asks and {s.fact for s in asks} >= set(r.missing_facts) - {"award_ledger"}, r.benefit_id
        counts = [int(s.text.rsplit("涉及", 1)[1].split("项")[0]) for s in asks]
        assert counts == sorted(counts, reverse=True)
        if r.status == "eligible":
            assert r.suggestions == []


SMALL = {"uscc": "91512000MA62XY001U", "name": "资阳测试企业", "restricted_industry": False,
         "employees_avg": 120, "total_assets_avg_cny": 30_000_000, "taxable_income_cny": 3_200_000}


def test_a_threshold_says_how_far_and_the_value_that_passes(engine_eval, registry):
    resp = engine_eval.with_suggestions(SMALL, engine_eval.evaluate(SMALL, date(2026, 5, 31), ["small-low-profit-cit"]))
    [s] = resp.results[0].suggestions
    assert s.criterion == "taxable_income" and "超出上限 200,000元" in s.text and "3,200,000元" in s.text
    assert (s.fact, s.value) == ("taxable_income_cny", 3_000_000)


def test_a_certificate_outside_the_coverage_names_the_window_it_belongs_to(engine_eval):
    p = {"uscc": "91512000MA62XY001U", "name": "资阳测试企业", "in_park": True, "on_serious_dishonest_list": False,
         "violations": [], "device_registrations": [
             {"certificate_no": "川械注准20262170031", "origin": "self_developed", "obtained_on": "2026-06-15"}]}
    resp = engine_eval.with_suggestions(p, engine_eval.evaluate(p, date(2026, 3, 31), ["device-registration-grant"],
                                                                awarded=set()), awarded=set())
    texts = [s.text for s in resp.results[0].suggestions if s.criterion == "obtained_in_coverage"]
    assert texts and "2026年下半年" in texts[0] and "2026年9月1日" in texts[0]


def test_a_certificate_number_that_cannot_be_read_is_to_check_not_to_supply(engine_eval):
    """A number of no known format leaves what it would tell (the class) unknown: the guidance
    asks to check the number as written, with the accepted forms, not to 补充 a number that
    was given."""
    p = {"uscc": "91512000MA62XY001U", "name": "资阳测试企业", "in_park": True, "on_serious_dishonest_list": False,
         "violations": [], "device_registrations": [
             {"certificate_no": "川械备20260012", "origin": "self_developed", "obtained_on": "2026-02-15"}]}
    resp = engine_eval.with_suggestions(p, engine_eval.evaluate(p, date(2026, 3, 31), ["device-registration-grant"],
                                                                awarded=set()), awarded=set())
    asks = {s.fact: s.text for s in resp.results[0].suggestions if s.criterion is None}
    number = asks["device_registrations[0].certificate_no"]
    assert number.startswith("核对“") and "填写的“川械备20260012”无法识别" in number and "川资械备20240012号" in number
    assert asks["device_registrations[0].device_class"].startswith("补充“")      # truly missing: 补充


def test_a_violation_in_the_look_back_is_named_with_the_day_it_leaves(engine_eval):
    p = {"uscc": "91512000MA62XY001U", "name": "资阳测试企业", "tax_credit_rating": "A",
         "four_industries_sales_share": 0.9, "vat_period_end_credit_cny": 100_000, "immediate_refund_since_2019_04": False,
         "violations": [{"kind": "refund_fraud", "decided_on": "2024-02-01"}]}
    resp = engine_eval.with_suggestions(p, engine_eval.evaluate(p, date(2025, 10, 31), ["vat-credit-refund"]))
    [s] = [s for s in resp.results[0].suggestions if s.criterion == "no_refund_fraud_36_months"]
    # decided 2024-02-01: inside "申请前36个月" until 2027-01-31, out from 2027-02-01
    assert "骗取留抵退税" in s.text and "2024年2月1日" in s.text and "自2027年2月1日起不再计入" in s.text
    later = engine_eval.evaluate(p, date(2027, 2, 1), ["vat-credit-refund"]).results[0]
    assert {c.id: c.outcome for c in later.criteria}["no_refund_fraud_36_months"] == "pass"
    earlier = engine_eval.evaluate(p, date(2027, 1, 31), ["vat-credit-refund"]).results[0]
    assert {c.id: c.outcome for c in earlier.criteria}["no_refund_fraud_36_months"] == "fail"


def test_the_same_guidance_is_shown_once(engine_eval, registry):
    """A filing certificate fails two criteria that read its type: the API keeps both
    suggestions (one per criterion), the notice and the page say it once."""
    from notices.view import _item, Item

    raw = {**SMALL, "in_park": True, "device_registrations": [
        {"certificate_no": "川资械备20250104号", "origin": "self_developed", "obtained_on": "2026-01-15"}]}
    _, resp = _suggested(engine_eval, registry, raw, date(2026, 3, 31))
    grant = next(r for r in resp.results if r.benefit_id == "device-registration-grant")
    texts = [s.text for s in grant.suggestions]
    assert len(texts) > len(set(texts))
    shown = _item(Item(grant, grant.status), registry, raw)["suggestions"]
    assert sorted(shown) == sorted(set(texts))


def test_a_strict_bound_is_said_as_the_text_says_it(engine_eval, registry):
    """研发费用 must be more than 0: the guidance says 须大于 0元, not "低于下限 0.01元"."""
    raw = {**SMALL, "rd_excluded_industry": False, "tax_collection": "audit", "rd_expense_cny": 0}
    _, resp = _suggested(engine_eval, registry, raw, date(2026, 3, 31))
    rd = next(r for r in resp.results if r.benefit_id == "rd-super-deduction")
    texts = [s.text for s in rd.suggestions]
    assert any("须大于 0元" in t for t in texts), texts
    assert not any("0.01" in t for t in texts), texts


def test_a_certificate_paid_before_is_told_so_not_how_to_qualify(engine_eval, registry):
    """A certificate the award ledger has paid cannot qualify again: its 怎样才能符合 says so,
    instead of "已获得过本项资金支持须为“否”" and a list of facts to supply."""
    raw = {**SMALL, "in_park": True, "on_serious_dishonest_list": False, "violations": [], "device_registrations": [
        {"certificate_no": "川械注准20252170101", "origin": "self_developed", "obtained_on": "2026-01-15"}]}
    p = parse_profile(raw, registry)
    when = date(2026, 3, 31)
    paid = engine_eval.with_suggestions(p, engine_eval.evaluate(p, when, awarded={"device-registration-grant|川械注准20252170101"}),
                                        awarded={"device-registration-grant|川械注准20252170101"})
    (grant,) = [r for r in paid.results if r.benefit_id == "device-registration-grant"]
    assert grant.status == "ineligible"
    assert [s.text for s in grant.suggestions] == ["该注册证已获得过本项资金支持；同一注册证只支持一次，不能再次申请"]
    fresh = engine_eval.with_suggestions(p, engine_eval.evaluate(p, when, awarded=set()), awarded=set())
    (grant,) = [r for r in fresh.results if r.benefit_id == "device-registration-grant"]
    assert all("已获得过" not in s.text for s in grant.suggestions)
