"""The enterprise profile of shared/contract/profile.md: typing, paths, Chinese messages."""

import copy
import hashlib
import json
import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.loader import load_rulebook
from engine.profile import ProfileError, profile_model
from engine.profile import parse_profile as _parse

REGISTRY = load_rulebook().fields
Profile = profile_model(REGISTRY)


def parse_profile(data, today=None):
    return _parse(data, REGISTRY, today)


TODAY = date(2026, 3, 31)
VALID_USCC = "91512000MA62XY001U"

# The sample of shared/contract/profile.md, verbatim.
CONTRACT_SAMPLE = json.loads(
    """
{
  "uscc": "91512000MA62XY001U",
  "name": "资阳示例口腔医疗器械有限公司",
  "in_park": true,
  "industry_code": "C3589",
  "tax_credit_rating": "A",
  "on_serious_dishonest_list": false,
  "device_registrations": [
    {"certificate_no": "川械注准20252170031", "product_name": "无托槽隐形矫治器",
     "origin": "self_developed", "obtained_on": "2025-10-15"}
  ],
  "violations": []
}
"""
)

MONEY_FIELDS = ["total_assets_avg_cny", "taxable_income_cny", "rd_expense_cny", "vat_credit_increase_cny"]
BOOL_FIELDS = [
    "in_park",
    "restricted_industry",
    "rd_excluded_industry",
    "immediate_refund_since_2019_04",
    "on_serious_dishonest_list",
]
CJK = re.compile(r"[\u4e00-\u9fff]")


def minimal(**extra):
    return {"uscc": VALID_USCC, "name": "测试企业", **extra}


def problems_of(data, today=TODAY) -> dict[str, str]:
    with pytest.raises(ProfileError) as e:
        parse_profile(data, today=today)
    probs = e.value.problems
    assert all(CJK.search(p.message) for p in probs), probs
    return {p.path: p.message for p in probs}


# --- the acceptance case -------------------------------------------------------------


def test_three_different_errors_are_reported_together_with_paths():
    data = copy.deepcopy(CONTRACT_SAMPLE)
    data["uscc"] = "91512000MA62XY001A"  # correct check char is U
    data["established_on"] = "2026-04-01"  # one day after TODAY
    data["device_registrations"][0]["device_class"] = "III"  # the number says class II
    probs = problems_of(data)
    assert set(probs) == {"uscc", "established_on", "device_registrations[0].device_class"}
    assert "应为 U" in probs["uscc"]
    assert "2026年3月31日" in probs["established_on"]
    assert "第三类" in probs["device_registrations[0].device_class"]
    assert "第二类" in probs["device_registrations[0].device_class"]


def test_error_text_lists_every_problem():
    data = minimal(uscc="91512000MA62XY001A", employees_avg="12")
    with pytest.raises(ProfileError) as e:
        parse_profile(data, today=TODAY)
    text = str(e.value)
    assert "2 处问题" in text and "uscc" in text and "employees_avg" in text


# --- the sample and basic behaviour ---------------------------------------------------


def test_contract_sample_validates():
    p = parse_profile(CONTRACT_SAMPLE, today=TODAY)
    assert p.uscc == VALID_USCC and p.in_park is True and p.violations == []
    reg = p.device_registrations[0]
    assert reg.device_class is None and REGISTRY.facts["certificate.device_class"].read(reg) == "II"
    assert REGISTRY.facts["certificate.catalogue_code"].read(reg) == "17"
    assert reg.obtained_on == date(2025, 10, 15)


def test_lower_case_uscc_accepted_and_upper_cased():
    assert parse_profile(minimal(uscc=VALID_USCC.lower()), today=TODAY).uscc == VALID_USCC


def test_missing_required_fields():
    probs = problems_of({})
    assert set(probs) == {"uscc", "name"} and "必填" in probs["uscc"]


@pytest.mark.parametrize("data", [[], "x", None, 5, [CONTRACT_SAMPLE]])
def test_non_object_input_is_one_root_problem(data):
    with pytest.raises(ProfileError) as e:
        parse_profile(data)
    assert [p.path for p in e.value.problems] == [""]


def test_unknown_is_not_false_or_empty():
    p = parse_profile(minimal(in_park=False, violations=[], employees_avg=0), today=TODAY)
    assert p.in_park is False and p.violations == [] and p.employees_avg == 0
    assert p.device_registrations is None and p.restricted_industry is None
    q = parse_profile(minimal(in_park=None, violations=None), today=TODAY)
    assert q.in_park is None and q.violations is None


def test_unknown_keys_are_errors_that_name_the_closest_known_key():
    probs = problems_of(minimal(in_prak=True, wechat="x",
                                device_registrations=[{"certificate_no": "川械注准20242170123", "orgin": "x"}],
                                hnte_certificate={"numbr": "GR1"}))
    assert set(probs) == {"in_prak", "wechat", "device_registrations[0].orgin", "hnte_certificate.numbr"}
    assert "是否指“in_park”" in probs["in_prak"]
    assert "是否指“origin”" in probs["device_registrations[0].orgin"]
    assert "是否指“number”" in probs["hnte_certificate.numbr"]
    assert "是否指" not in probs["wechat"]


@pytest.mark.parametrize("name,ok", [("  ", False), ("", False), ("企" * 200, True), ("企" * 201, False)])
def test_name_length_after_trim(name, ok):
    if ok:
        assert parse_profile(minimal(name=f" {name} "), today=TODAY).name == name
    else:
        assert "name" in problems_of(minimal(name=name))


# --- strict JSON typing ---------------------------------------------------------------


@pytest.mark.parametrize("field", MONEY_FIELDS)
def test_money_as_string_rejected(field):
    probs = problems_of(minimal(**{field: "1000.00"}))
    assert probs == {field: "必须是数字：请去掉引号，写成 1000.00"}     # the usual slip, said as such
    assert problems_of(minimal(**{field: "一千"})) == {field: "必须是数字，不能是文字（带引号）"}


@pytest.mark.parametrize("field", MONEY_FIELDS)
def test_money_as_bool_rejected(field):
    assert "布尔" in problems_of(minimal(**{field: True}))[field]


@pytest.mark.parametrize("field", MONEY_FIELDS)
def test_money_more_than_two_decimals_rejected(field):
    assert "两位小数" in problems_of(minimal(**{field: 10.125}))[field]
    assert getattr(parse_profile(minimal(**{field: 10.12}), today=TODAY), field) == 10.12
    assert getattr(parse_profile(minimal(**{field: 3000000}), today=TODAY), field) == 3000000


def test_negative_money_only_where_allowed():
    p = parse_profile(minimal(taxable_income_cny=-5000.5, vat_credit_increase_cny=-1), today=TODAY)
    assert p.taxable_income_cny == -5000.5
    probs = problems_of(minimal(total_assets_avg_cny=-1, rd_expense_cny=-0.01))
    assert set(probs) == {"total_assets_avg_cny", "rd_expense_cny"}


@given(st.decimals(min_value=-10**12, max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_any_two_decimal_amount_is_accepted(amount):
    p = parse_profile(minimal(taxable_income_cny=float(amount)), today=TODAY)
    assert Decimal(repr(p.taxable_income_cny)) == amount


@given(
    st.integers(-10**9, 10**9),
    st.integers(1, 9),
)
def test_third_decimal_is_rejected(cents, third):
    amount = float(Decimal(cents) / 100 + Decimal(third) / 1000)
    assert "taxable_income_cny" in problems_of(minimal(taxable_income_cny=amount))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_rejected(value):
    assert "taxable_income_cny" in problems_of(minimal(taxable_income_cny=value))


@pytest.mark.parametrize("field", ["vat_credit_positive_months", "export_refund_class"])
@pytest.mark.parametrize("value,word", [(3.0, "小数"), ("3", "去掉引号"), ("三", "文字"), (True, "布尔")])
def test_integers_must_be_integers(field, value, word):
    msg = problems_of(minimal(**{field: value}))[field]
    assert "整数" in msg and word in msg


def test_headcount_is_a_quarterly_average_with_three_decimals():
    # 2023年第12号 第五条: (季初 + 季末) ÷ 2, averaged over the quarters: 300.25 exists, and one
    # quarter of 300.5 makes 300.125
    assert parse_profile(minimal(employees_avg=300.25), today=TODAY).employees_avg == 300.25
    assert parse_profile(minimal(employees_avg=300.125), today=TODAY).employees_avg == 300.125
    assert "三位小数" in problems_of(minimal(employees_avg=300.0625))["employees_avg"]


def test_division_code_is_six_digits_and_defaults_to_the_uscc():
    assert "6位数字" in problems_of(minimal(registered_division_code="51200"))["registered_division_code"]
    assert "6位数字" in problems_of(minimal(registered_division_code="51200X"))["registered_division_code"]
    # no province has the code 99 (it showed as 行政区划代码 99 and decided 西部大开发 on it)
    assert "“99”不是任何省级行政区" in problems_of(minimal(registered_division_code="999999"))["registered_division_code"]
    assert parse_profile(minimal(registered_division_code="659001"), today=TODAY).registered_division_code == "659001"
    assert parse_profile(minimal(registered_division_code="512002"), today=TODAY).registered_division_code == "512002"


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("value", ["true", 1, 0, "是"])
def test_bools_must_be_json_booleans(field, value):
    assert "true 或 false" in problems_of(minimal(**{field: value}))[field]


@pytest.mark.parametrize(
    "field,good,bad",
    [
        ("tax_collection", "deemed", "Deemed"),
        ("tax_credit_rating", "M", "AA"),
    ],
)
def test_enums_exact(field, good, bad):
    assert getattr(parse_profile(minimal(**{field: good}), today=TODAY), field) == good
    msg = problems_of(minimal(**{field: bad}))[field]
    assert good in msg  # the message lists the allowed values


@pytest.mark.parametrize("field", ["four_industries_sales_share", "western_encouraged_share"])
def test_shares_between_0_and_1(field):
    for ok in (0, 0.5, 1):
        assert getattr(parse_profile(minimal(**{field: ok}), today=TODAY), field) == ok
    assert "不能大于 1" in problems_of(minimal(**{field: 1.01}))[field]
    assert "不能小于 0" in problems_of(minimal(**{field: -0.1}))[field]


def test_export_refund_class_range():
    assert parse_profile(minimal(export_refund_class=0), today=TODAY).export_refund_class == 0
    assert "不能大于 4" in problems_of(minimal(export_refund_class=5))["export_refund_class"]
    assert "export_refund_class" in problems_of(minimal(export_refund_class=-1))


@pytest.mark.parametrize("code,ok", [("C3589", True), ("c3589", True), ("A01", True), ("T9", False),
                                      ("U123", False), ("C35890", False), ("3589", False)])
def test_industry_code(code, ok):
    if ok:
        assert parse_profile(minimal(industry_code=code), today=TODAY).industry_code == code.upper()
    else:
        assert "industry_code" in problems_of(minimal(industry_code=code))


# --- dates ------------------------------------------------------------------------------


def test_today_is_allowed_tomorrow_is_not():
    assert parse_profile(minimal(established_on="2026-03-31"), today=TODAY).established_on == TODAY
    assert problems_of(minimal(established_on="2026-04-01")) == {
        "established_on": "日期不能晚于今天（2026年3月31日）"
    }


def test_today_is_injectable():
    data = minimal(established_on="2026-04-01")
    assert parse_profile(data, today=date(2026, 4, 1)).established_on == date(2026, 4, 1)
    assert Profile.model_validate(data, context={"today": date(2026, 5, 1)}).established_on


@pytest.mark.parametrize("value", ["2025/10/15", "20251015", "2025-1-5", "2025-10-15T00:00:00", 20251015, "2025-02-30", True])
def test_dates_must_be_iso_strings(value):
    assert "established_on" in problems_of(minimal(established_on=value))


def test_future_dates_everywhere_have_their_paths():
    data = minimal(
        hnte_certificate={"number": "GR202551000123", "issued_on": "2027-01-01"},
        device_registrations=[
            {"certificate_no": "川械注准20242170123", "obtained_on": "2025-01-01"},
            {"certificate_no": "国械注准20253170045", "obtained_on": "2026-12-01"},
        ],
        violations=[{"kind": "other"}, {"kind": "market_minor"}, {"kind": "tax_evasion", "decided_on": "2030-01-01"}],
    )
    assert set(problems_of(data)) == {
        "hnte_certificate.issued_on",
        "device_registrations[1].obtained_on",
        "violations[2].decided_on",
    }


def test_a_case_cannot_be_discovered_before_its_act():
    case = {"case_id": "自查-1", "act_on": "2026-03-10"}
    early = minimal(market_cases=[{**case, "discovered_on": "2026-03-09"}])
    assert problems_of(early) == {
        "market_cases[0].discovered_on": "不能早于“违法行为发生日期”（2026年3月10日）"}
    for later in ("2026-03-10", "2026-03-11"):      # the same day or later; and unknown act date
        parse_profile(minimal(market_cases=[{**case, "discovered_on": later}]), today=TODAY)
    parse_profile(minimal(market_cases=[{"case_id": "自查-1", "discovered_on": "2026-03-09"}]), today=TODAY)


# --- hnte certificate ---------------------------------------------------------------------


def test_hnte_certificate_object_false_null():
    p = parse_profile(minimal(hnte_certificate={"number": "GR1", "issued_on": "2024-12-01"}), today=TODAY)
    assert p.hnte_certificate.issued_on == date(2024, 12, 1)
    assert parse_profile(minimal(hnte_certificate=False), today=TODAY).hnte_certificate is False
    assert parse_profile(minimal(hnte_certificate=None), today=TODAY).hnte_certificate is None
    assert parse_profile(minimal(hnte_certificate=False), today=TODAY).model_dump()["hnte_certificate"] is False


@pytest.mark.parametrize("value", [True, "GR1", 0, []])
def test_hnte_certificate_true_or_other_is_invalid(value):
    assert set(problems_of(minimal(hnte_certificate=value))) == {"hnte_certificate"}


def test_hnte_certificate_inner_error_path():
    assert set(problems_of(minimal(hnte_certificate={"number": 5}))) == {"hnte_certificate.number"}


# --- device registrations -----------------------------------------------------------------


def test_certificate_no_required():
    probs = problems_of(minimal(device_registrations=[{"product_name": "种植体"}]))
    assert set(probs) == {"device_registrations[0].certificate_no"}


def test_class_from_number_and_explicit_class():
    p = parse_profile(
        minimal(
            device_registrations=[
                {"certificate_no": "国械注准20253170045"},
                {"certificate_no": "川械注准20242170123", "device_class": "II"},
                {"certificate_no": "川资械备20240012号"},
                {"certificate_no": "国食药监械(准)字2004第3460001号", "device_class": "III"},
                {"certificate_no": "手写编号不详"},
            ]
        ),
        today=TODAY,
    )
    cls = REGISTRY.facts["certificate.device_class"]
    assert [cls.read(r) for r in p.device_registrations] == ["III", "II", "I", "III", None]
    kind = REGISTRY.facts["certificate.registration_type"]
    assert [kind.read(r) for r in p.device_registrations] == ["registration", "registration", "filing", None, None]


@pytest.mark.parametrize(
    "number,wrong",
    [("川资械备20240012号", "II"), ("国械备20150003号", "III"), ("国械注准20253170045", "II"),
     ("国械注进20243170010", "I"), ("川械注准20242170123", "I")],
)
def test_class_contradicting_number_is_an_error(number, wrong):
    data = minimal(device_registrations=[{"certificate_no": "川械注准20252170031"},
                                         {"certificate_no": number, "device_class": wrong}])
    assert set(problems_of(data)) == {"device_registrations[1].device_class"}


def test_duplicate_numbers_reported_even_with_other_errors():
    data = minimal(
        device_registrations=[
            {"certificate_no": "川械注准20242170123", "obtained_on": "not a date"},
            {"certificate_no": "国械注准20253170045"},
            {"certificate_no": " 川械注准20242170123"},
        ]
    )
    probs = problems_of(data)
    assert set(probs) == {"device_registrations[0].obtained_on", "device_registrations[2].certificate_no"}
    assert "与第1项重复" in probs["device_registrations[2].certificate_no"]


def test_duplicates_rejected_by_the_model_too():
    data = minimal(device_registrations=[{"certificate_no": "川械注准20242170123"}] * 2)
    with pytest.raises(ValueError):
        Profile.model_validate(data)


@pytest.mark.parametrize("field,value", [("origin", "bought"), ("innovative", "yes"), ("device_class", "2")])
def test_registration_field_types(field, value):
    data = minimal(device_registrations=[{"certificate_no": "川械注准20242170123", field: value}])
    assert set(problems_of(data)) == {f"device_registrations[0].{field}"}


@pytest.mark.parametrize("field", ["device_registrations", "violations"])
def test_lists_must_be_lists(field):
    assert set(problems_of(minimal(**{field: {"certificate_no": "x"}}))) == {field}
    assert set(problems_of(minimal(**{field: ["x"]}))) == {f"{field}[0]"}


def test_every_problem_at_once_on_a_messy_profile():
    data = {
        "uscc": "91512000MA62XY00",
        "name": "",
        "in_park": "是",
        "employees_avg": -3,
        "total_assets_avg_cny": "5,000,000",
        "tax_credit_rating": "E",
        "hnte_certificate": True,
        "device_registrations": [{"certificate_no": "川资械备20240012号", "device_class": "II"}, 7],
        "violations": [{"kind": "speeding", "decided_on": "2099-01-01"}],
    }
    probs = problems_of(data)
    assert set(probs) == {
        "uscc", "name", "in_park", "employees_avg", "total_assets_avg_cny", "tax_credit_rating",
        "hnte_certificate", "device_registrations[0].device_class", "device_registrations[1]",
        "violations[0].kind", "violations[0].decided_on",
    }


# --- hash ---------------------------------------------------------------------------------


def test_profile_hash_is_sha256_of_canonical_json_without_unknowns():
    p = parse_profile(CONTRACT_SAMPLE, today=TODAY)
    known = p.model_dump(mode="json", exclude_none=True)
    canonical = json.dumps(known, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert p.profile_hash() == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_profile_hash_ignores_key_order_and_explicit_nulls_but_not_facts():
    a = parse_profile(CONTRACT_SAMPLE, today=TODAY)
    reordered = dict(reversed(list(CONTRACT_SAMPLE.items())))
    reordered["established_on"] = None          # null and absent both mean unknown
    assert parse_profile(reordered, today=TODAY).profile_hash() == a.profile_hash()
    lower = {**CONTRACT_SAMPLE, "uscc": CONTRACT_SAMPLE["uscc"].lower()}
    assert parse_profile(lower, today=TODAY).profile_hash() == a.profile_hash()
    changed = {**CONTRACT_SAMPLE, "in_park": False}
    assert parse_profile(changed, today=TODAY).profile_hash() != a.profile_hash()
    unknown = {**CONTRACT_SAMPLE, "violations": None}
    assert parse_profile(unknown, today=TODAY).profile_hash() != a.profile_hash()


def test_a_built_profile_round_trips_through_parse_profile():
    p = parse_profile(CONTRACT_SAMPLE, today=TODAY)
    again = parse_profile(p, today=TODAY)
    assert again == p and again.profile_hash() == p.profile_hash()
    # …and is re-checked against the reference date given.
    with pytest.raises(ProfileError):
        parse_profile(p, today=date(2025, 10, 14))


def test_a_wrong_code_is_answered_with_each_code_and_its_meaning():
    """A JSON file needs the codes; a clerk needs to know what each means."""
    probs = problems_of(minimal(device_registrations=[
        {"certificate_no": "川械注准20252170031", "origin": "selfmade"}]))
    message = probs["device_registrations[0].origin"]
    assert "self_developed（自主研发）" in message and "introduced（引进）" in message, message


def test_a_share_above_one_is_told_to_add_its_percent_sign_only_when_it_looks_like_one():
    """92 for 92% is told "写成 92% 或 0.92"; 1.5 (most often 150% typed with its sign) is only
    told the bound — it was once told to write 1.5% or 0.015."""
    from engine.profile import range_problem

    share = REGISTRY.field_at("four_industries_sales_share")
    assert range_problem(share, 92) == "不能大于 1（即 100%）；占比请写成 92% 或 0.92"
    assert range_problem(share, Decimal("1.5")) == "不能大于 1（即 100%）"
    assert range_problem(share, Decimal("0.5")) is None
