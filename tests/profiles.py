"""Hypothesis strategies for enterprise profiles: nulls, empty lists and the boundary values
of the shipped rules' thresholds are drawn often."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import strategies as st

from engine.loader import load_rulebook
from engine.uscc import make_uscc

VIOLATION_KINDS = load_rulebook().fields.lists["violations"].items["kind"].type.domain

TODAY = date(2026, 11, 28)
AS_OF = st.sampled_from([date(2022, 6, 8), date(2024, 1, 31), date(2024, 6, 30), date(2025, 8, 31), date(2025, 9, 1),
                         date(2025, 10, 31), date(2026, 3, 31), date(2026, 9, 30), date(2026, 11, 28)])


def maybe(s):
    return st.one_of(st.none(), s)


def money(*edges: float):
    return st.one_of(st.sampled_from([0, *edges, *(e + 0.01 for e in edges), *(e - 0.01 for e in edges)]),
                     st.integers(0, 200_000_000).map(float))


def dates(lo=date(2015, 1, 1), hi=TODAY):
    edges = [date(2019, 4, 1), date(2023, 1, 1), date(2023, 11, 30), date(2025, 9, 30), date(2025, 10, 1),
             date(2026, 3, 31), date(2026, 4, 1), date(2026, 9, 30)]
    return st.one_of(st.sampled_from([d for d in edges if lo <= d <= hi]),
                     st.integers(0, (hi - lo).days).map(lambda n: lo + timedelta(days=n)))


CERT_NOS = ["川械注准{y}217{s:04d}", "国械注准{y}317{s:04d}", "国械注进{y}317{s:04d}", "国械注许{y}217{s:04d}",
            "川资械备{y}{s:04d}号", "不规范编号{s}"]


@st.composite
def registration(draw, serial):
    fmt = draw(st.sampled_from(CERT_NOS))
    no = fmt.format(y=draw(st.integers(2016, 2026)), s=serial)
    return {"certificate_no": no,
            "origin": draw(maybe(st.sampled_from(["self_developed", "introduced"]))),
            "obtained_on": draw(maybe(dates(date(2024, 1, 1)).map(date.isoformat))),
            "innovative": draw(maybe(st.booleans()))}


@st.composite
def violation(draw):
    d = draw(maybe(dates(date(2020, 1, 1))))
    return {"kind": draw(maybe(st.sampled_from(VIOLATION_KINDS))),
            "decided_on": d.isoformat() if d else None,
            "major": draw(maybe(st.booleans()))}


@st.composite
def profiles(draw):
    regs = draw(maybe(st.lists(st.integers(0, 9999), max_size=3, unique=True)))
    hnte = draw(st.one_of(st.none(), st.just(False), dates(date(2021, 1, 1)).map(
        lambda d: {"number": "GR202351000001", "issued_on": d.isoformat()})))
    p = {
        # registering authorities: 资阳, 杭州 (not western), 湖南省级 (湘西 unknown), 湘西州
        "uscc": make_uscc("91" + draw(st.sampled_from(["512000", "330100", "430000", "433100"]))
                          + "MA62XY" + draw(st.sampled_from(["001", "002", "ABC", "9Q0"]))),
        "registered_division_code": draw(maybe(st.sampled_from(["512002", "330106", "433101", "430000"]))),
        "name": "测试口腔医疗器械有限公司",
        "in_park": draw(maybe(st.booleans())),
        "industry_code": draw(maybe(st.sampled_from(["C3589", "C358", "F5174", "M7320", "K7010"]))),
        "tax_collection": draw(maybe(st.sampled_from(["audit", "deemed"]))),
        "employees_avg": draw(maybe(st.sampled_from([0, 299, 299.875, 300, 300.125, 300.25, 301, 5000]))),
        "total_assets_avg_cny": draw(maybe(money(50_000_000))),
        "taxable_income_cny": draw(maybe(st.one_of(money(3_000_000), st.just(-100.0)))),
        "restricted_industry": draw(maybe(st.booleans())),
        "rd_excluded_industry": draw(maybe(st.booleans())),
        "rd_expense_cny": draw(maybe(money(1))),
        "four_industries_sales_share": draw(maybe(st.sampled_from([0.0, 0.5, 0.5001, 1.0]))),
        "vat_credit_positive_months": draw(maybe(st.integers(0, 8))),
        "vat_credit_increase_cny": draw(maybe(money(500_000, 100_000_000))),
        "six_industries_sales_share": draw(maybe(st.sampled_from([0.0, 0.5, 0.5001, 1.0]))),
        "thirteen_industries_sales_share": draw(maybe(st.sampled_from([0.0, 0.5, 0.5001, 1.0]))),
        "vat_enterprise_size": draw(maybe(st.sampled_from(["micro", "small", "medium", "large"]))),
        "vat_period_end_credit_cny": draw(maybe(st.one_of(st.just(0), money(1)))),
        "vat_input_composition_ratio": draw(maybe(st.sampled_from([0.0, 0.5, 0.95, 1.0]))),
        "vat_increment_positive_months": draw(maybe(st.integers(0, 8))),
        "vat_increment_cny": draw(maybe(money(500_000))),
        "hnte_year_conditions_met": draw(maybe(st.booleans())),
        "tax_credit_rating": draw(maybe(st.sampled_from(["A", "B", "M", "C", "D"]))),
        "immediate_refund_since_2019_04": draw(maybe(st.booleans())),
        "hnte_certificate": hnte,
        "western_encouraged_share": draw(maybe(st.sampled_from([0.0, 0.6, 0.6001, 1.0]))),
        "export_refund_class": draw(maybe(st.integers(0, 4))),
        "on_serious_dishonest_list": draw(maybe(st.booleans())),
        "device_registrations": None if regs is None else [draw(registration(s)) for s in regs],
        "violations": draw(maybe(st.lists(violation(), max_size=3))),
        # 上市后备企业资源库: each threshold at, just below and just above its boundary
        "established_on": draw(maybe(st.one_of(st.sampled_from(["2020-01-01", "2022-01-01", "2022-01-02", "2024-01-01",
                                                                "2024-01-02"]), dates().map(date.isoformat)))),
        "company_form": draw(maybe(st.sampled_from(["llc", "joint_stock", "partnership", "other"]))),
        "listing_plan": draw(maybe(st.booleans())),
        "shareholding_reform": draw(maybe(st.sampled_from(["done", "planned", "not_planned"]))),
        "red_chip_listing": draw(maybe(st.booleans())),
        "industry_catalogue_2019": draw(maybe(st.sampled_from(["encouraged", "permitted", "restricted", "eliminated"]))),
        "industry_catalogue_2024": draw(maybe(st.sampled_from(["encouraged", "permitted", "restricted", "eliminated"]))),
        "listing_unsupported_industry": draw(maybe(st.booleans())),
        "bad_credit_record_2y": draw(maybe(st.booleans())),
        "net_profit_y1_cny": draw(maybe(st.sampled_from([-1.0, 0, 0.01, 4_000_000]))),
        "net_profit_y2_cny": draw(maybe(st.sampled_from([-1.0, 0, 0.01, 4_000_000]))),
        "net_profit_2y_sum_cny": draw(maybe(money(8_000_000))),
        "roe_2y_avg": draw(maybe(st.sampled_from([-0.1, 0.059999, 0.06, 0.2]))),
        "revenue_y1_cny": draw(maybe(money(30_000_000, 40_000_000))),
        "rd_3y_ratio": draw(maybe(st.sampled_from([0.0, 0.119999, 0.12, 0.15, 2.5]))),
        "rd_2y_sum_cny": draw(maybe(money(40_000_000))),
        "revenue_grew_2y": draw(maybe(st.booleans())),
        "revenue_cagr_2y": draw(maybe(st.sampled_from([-0.5, 0.299999, 0.3, 1.2]))),
        "revenue_2y_avg_cny": draw(maybe(money(30_000_000))),
        "star_std5_expected": draw(maybe(st.booleans())),
    }
    return p
