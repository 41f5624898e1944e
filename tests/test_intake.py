"""Spreadsheet intake: the template and the parser derived from the field registry, value
spellings against an independent table, file semantics, and hostile files (issue 9 items 3, 5,
6, 7, 8; issue 10 items 1, 10; issue 13's example row)."""
from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

import hostile_files as H
from engine import load_rulebook
from engine.profile import ProfileError, parse_profile
from engine.registry import RegistryError, registry_from
from engine.yamlsource import load_yaml
from store.errors import ValidationFailed
from store.intake import (CLAIM_HEADER, SHEET_EXAMPLE, SHEET_NOTES, IntakeLimits, layout, parse_file,
                          template_bytes)
from store_fixtures import filled_template, make_profile, profiles_csv

ROOT = Path(__file__).resolve().parent.parent
NO_DATA_XLSX = "文件中没有可导入的数据：请从“企业信息”工作表第2行起填写，“填写示例”工作表仅供参考，不会导入"


@pytest.fixture(scope="module")
def registry():
    return load_rulebook().fields


def columns(registry) -> dict[str, object]:
    lay = layout(registry)
    return {c.key: c for g in (lay.enterprise, *lay.lists) for c in g.columns}


def csv_bytes(rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def put(ws, row: int, values: list) -> None:
    """Write a row (the template formats rows 2–1000, so `append` would land below them)."""
    for i, v in enumerate(values, start=1):
        ws.cell(row=row, column=i, value=v)


def messages(pf) -> list[str]:
    return [str(p) for p in pf.problems]


# --- the template ------------------------------------------------------------------------------


def test_template_sheets_and_headers_come_from_the_registry(registry):
    wb = load_workbook(io.BytesIO(template_bytes(registry)))
    lists = [f for f in registry.spec.fields if f.type == "list"]
    assert wb.sheetnames == ["企业信息", *(f.sheet for f in lists), SHEET_EXAMPLE, SHEET_NOTES]
    header = [c.value for c in wb["企业信息"][1]]
    for f in registry.entered_fields():
        if f.type == "list":
            sheet = [c.value for c in wb[f.sheet][1]]
            assert sheet[0] == registry.fields["uscc"].column
            assert sheet[1:1 + len(f.fields)] == [s.column or s.label for s in f.fields]
            assert (CLAIM_HEADER in sheet) == f.claimable
        elif f.type == "object":
            assert f.column in header and all(s.column in header for s in f.fields)
        else:
            assert (f.column or f.label) in header
    for name in ("企业信息", *(f.sheet for f in lists)):
        assert wb[name].max_row == 1 or all(c.value is None for row in wb[name].iter_rows(min_row=2) for c in row)
    # the example values live only on 填写示例
    example = [[c.value for c in row] for row in wb[SHEET_EXAMPLE].iter_rows()]
    assert registry.fields["name"].example in example[2]
    # yes/no and choice columns offer the words the import reads; their notes speak of the file
    lists_of = {str(d.sqref).split(":")[0].rstrip("0123456789"): d.formula1
                for d in wb["企业信息"].data_validations.dataValidation}
    letter = {c.value: c.column_letter for c in wb["企业信息"][1]}
    for f in registry.entered_fields():
        if f.type in ("bool", "object") and (f.column or f.label) in letter:
            assert lists_of[letter[f.column or f.label]] == '"是,否"', f.id
    notes = {r[1]: r[4] for r in wb[SHEET_NOTES].iter_rows(values_only=True) if r and len(r) > 4}
    held = [n for h, n in notes.items() if h and "持有高新技术企业证书" in str(h) and "是/否" in str(h)]
    assert held and "填“否”" in held[0] and "选“" not in held[0], held


def test_csv_template_is_headers_only(registry):
    rows = list(csv.reader(io.StringIO(template_bytes(registry, "csv").decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0] == [c.header for c in layout(registry).csv]
    assert "违法违规类型（偷税/骗取留抵退税/骗取出口退税/虚开增值税专用发票/市场监管轻微违法/其他）" in rows[0]
    assert len(set(rows[0])) == len(rows[0])


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_untouched_template_imports_nothing(registry, fmt):
    pf = parse_file(template_bytes(registry, fmt), f"template.{fmt}", registry)
    assert pf.enterprises == [] and pf.rows == 0
    assert messages(pf) == [NO_DATA_XLSX if fmt == "xlsx" else "文件中没有可导入的数据：请在表头下方逐行填写"]


EXPECTED_EXAMPLE = {
    "uscc": "91512000MA62XY001U",
    "name": "资阳示例口腔医疗器械有限公司",
    "registered_division_code": "512002",
    "in_park": True,
    "industry_code": "C3589",
    "established_on": "2019-05-20",
    "tax_collection": "audit",
    "employees_avg": 86,
    "total_assets_avg_cny": 32000000,
    "taxable_income_cny": 1800000,
    "restricted_industry": False,
    "rd_excluded_industry": False,
    "rd_expense_cny": 2500000,
    "four_industries_sales_share": 0.95,
    "six_industries_sales_share": 0.95,
    "thirteen_industries_sales_share": 0.95,
    "vat_enterprise_size": "small",
    "vat_period_end_credit_cny": 620000,
    "vat_input_composition_ratio": 0.95,
    "vat_credit_positive_months": 6,
    "vat_credit_increase_cny": 120000,
    "vat_increment_positive_months": 6,
    "vat_increment_cny": 300000,
    "tax_credit_rating": "A",
    "immediate_refund_since_2019_04": False,
    "hnte_certificate": {"number": "GR202451000123", "issued_on": "2024-12-06"},
    "hnte_year_conditions_met": True,
    "western_encouraged_share": 0.8,
    "export_refund_class": 0,
    "on_serious_dishonest_list": False,
    "company_form": "llc",
    "listing_plan": True,
    "shareholding_reform": "planned",
    "red_chip_listing": False,
    "industry_catalogue_2019": "encouraged",
    "industry_catalogue_2024": "encouraged",
    "listing_unsupported_industry": False,
    "bad_credit_record_2y": False,
    "net_profit_y1_cny": 5000000,
    "net_profit_y2_cny": 4000000,
    "net_profit_2y_sum_cny": 9000000,
    "roe_2y_avg": 0.09,
    "revenue_y1_cny": 35000000,
    "rd_3y_ratio": 0.06,
    "rd_2y_sum_cny": 4000000,
    "revenue_grew_2y": True,
    "revenue_cagr_2y": 0.12,
    "revenue_2y_avg_cny": 32500000,
    "star_std5_expected": False,
    "device_registrations": [{
        "certificate_no": "川械注准20252170031", "product_name": "无托槽隐形矫治器", "device_class": "II",
        "origin": "self_developed", "obtained_on": "2025-10-15", "innovative": False,
    }],
    "violations": [{"kind": "market_minor", "decided_on": "2024-06-01", "authority": "market",
                    "description": "标签标识不规范，已整改", "major": False}],
    "market_cases": [{
        "case_id": "自查-2026-01", "description": "宣传页使用“最佳”用语", "authority": "market",
        "act_on": "2026-03-10", "discovered_on": "2026-03-12", "list_type": "first", "item_conditions_met": True,
        "act_minor": True, "harm": "slight", "correction": "within_order_period", "no_fault_evidence": False,
        "safety_floor": False, "life_health_related": False, "statutory_mitigation": False,
    }],
}


def test_template_filled_with_the_examples_round_trips(registry):
    pf = parse_file(filled_template(registry), "filled.xlsx", registry)
    # one example row on the enterprise sheet and one on each list's sheet
    assert pf.problems == [] and pf.rows == 1 + len(registry.lists)
    [e] = pf.enterprises
    assert e.ok and e.uscc == EXPECTED_EXAMPLE["uscc"]
    assert e.profile == EXPECTED_EXAMPLE
    assert e.claims == ["川械注准20252170031"]
    parse_profile(e.profile, registry)


def test_csv_round_trip_of_generated_profiles(registry):
    profiles = [make_profile(i) for i in range(60)]
    pf = parse_file(profiles_csv(profiles), "a.csv", registry)
    assert pf.problems == []
    got = {e.uscc: parse_profile(e.profile, registry).as_json() for e in pf.enterprises}
    assert got == {p["uscc"]: parse_profile(p, registry).as_json() for p in profiles}


# --- value spellings: an independent table ----------------------------------------------------------

SPELLINGS = [
    ("device_registrations[].device_class", [
        ("Ⅱ类", "II"), ("二类", "II"), ("第二类", "II"), ("2", "II"), (2, "II"), (2.0, "II"), ("II", "II"),
        ("ii", "II"), ("Ⅱ", "II"), ("II类", "II"), ("Ⅲ类", "III"), ("III", "III"), ("三类", "III"),
        ("第三类", "III"), ("3", "III"), ("Ⅰ类", "I"), ("一类", "I"), ("第一类", "I"), ("1", "I"), ("i", "I")]),
    ("tax_collection", [("查账征收", "audit"), ("核定征收", "deemed"), ("audit", "audit"), ("AUDIT", "audit")]),
    ("device_registrations[].origin", [("自主研发", "self_developed"), ("引进", "introduced"),
                                       ("self_developed", "self_developed")]),
    ("violations[].kind", [("骗取出口退税", "export_refund_fraud"), ("偷税", "tax_evasion"),
                           ("骗取留抵退税", "refund_fraud"), ("虚开增值税专用发票", "false_vat_invoice"),
                           ("市场监管轻微违法", "market_minor"), ("其他", "other")]),
    ("tax_credit_rating", [("A", "A"), ("a", "A"), ("A级", "A"), ("Ｍ", "M"), ("D级", "D")]),
    ("export_refund_class", [("非出口企业", 0), ("0", 0), ("一类", 1), ("四类", 4), (3.0, 3), ("2", 2)]),
    ("in_park", [("是", True), ("否", False), ("有", True), ("无", False), ("Y", True), ("n", False),
                 ("TRUE", True), ("false", False), ("1", True), ("0", False), ("√", True), ("×", False),
                 (True, True), (0, False), (1.0, True)]),
    ("hnte_certificate", [("是", True), ("否", False)]),
    ("device_registrations[].#claim", [("是", True), ("否", False)]),
    ("total_assets_avg_cny", [("4,200万", 42000000), ("4200万元", 42000000), ("1.5亿", 150000000),
                              ("3,000,000", 3000000), ("1234.56", 1234.56), ("0.35万", 3500),
                              ("3，000，000元", 3000000), (32000000.0, 32000000), (1234.5600000000002, 1234.56)]),
    ("taxable_income_cny", [("-1,000", -1000)]),
    ("four_industries_sales_share", [("92%", 0.92), ("９２％", 0.92), (0.92, 0.92), ("0.95", 0.95), ("100%", 1)]),
    ("employees_avg", [("86", 86), ("86.25", 86.25), ("86人", 86), (86.0, 86)]),
    ("vat_credit_positive_months", [("6", 6), (6, 6), ("6.0", 6)]),
    ("established_on", [("2019-05-20", "2019-05-20"), ("2019/5/20", "2019-05-20"), ("2019年5月20日", "2019-05-20"),
                        ("2019.05.20", "2019-05-20"), (datetime(2019, 5, 20), "2019-05-20"),
                        (date(2019, 5, 20), "2019-05-20"), ("２０１９年５月２０日", "2019-05-20")]),
    ("industry_code", [(" c3589 ", "C3589")]),
    ("name", [("  资阳企业  ", "资阳企业"), (12345.0, "12345")]),
    ("uscc", [("91512000ma62xy001u", "91512000MA62XY001U")]),
]


@pytest.mark.parametrize("key,cases", SPELLINGS, ids=[k for k, _ in SPELLINGS])
def test_accepted_spellings(registry, key, cases):
    col = columns(registry)[key]
    for raw, want in cases:
        got = col.parse(raw)
        assert got == want and type(got) is type(want), (key, raw, got)


REFUSED = [
    ("device_registrations[].device_class", "Ⅳ类", "取值“Ⅳ类”无效，应为以下之一：第一类、第二类、第三类"),
    ("tax_collection", "自报", "取值“自报”无效，应为以下之一：查账征收、核定征收"),
    ("in_park", "可能", "应填“是”或“否”，不能是“可能”"),
    ("total_assets_avg_cny", "1,234.567", "金额最多保留两位小数：“1,234.567”"),
    ("total_assets_avg_cny", "八十万", "应填数字，不能是“八十万”"),
    ("vat_credit_positive_months", "6.5", "应为整数：“6.5”"),
    ("four_industries_sales_share", "0.1234567", "该数值最多保留六位小数：“0.1234567”"),
    ("employees_avg", True, "应填数字，不能是“是”"),
    ("established_on", "2019-13-45", "不存在的日期“2019-13-45”"),
    ("established_on", "去年", "无法识别的日期“去年”，请写成 2025-10-15、2025/10/15 或 2025年10月15日"),
    ("established_on", datetime(2019, 5, 20, 10, 30), "应为日期，不能带时间：“2019-05-20 10:30:00”"),
    ("established_on", 43605, "无法识别的日期“43605”，请写成 2025-10-15、2025/10/15 或 2025年10月15日"),
    ("total_assets_avg_cny", "x" * 50, "应填数字，不能是“" + "x" * 20 + "…”"),
]


@pytest.mark.parametrize("key,raw,message", REFUSED)
def test_refused_spellings_say_why_in_chinese(registry, key, raw, message):
    with pytest.raises(ValueError) as e:
        columns(registry)[key].parse(raw)
    assert str(e.value) == message


def test_spellings_through_a_file(registry):
    head = ["统一社会信用代码", "企业名称", "征收方式", "资产总额", "四类行业销售额占比", "成立日期",
            "注册证编号", "管理类别", "来源", "本次申报", "违法违规类型"]
    pf = parse_file(csv_bytes([head,
                               ["91512000MA62XY001U", "甲", "查账征收", "4,200万", "92%", "2019年5月20日",
                                "川械注准20252170031", "Ⅱ类", "引进", "否", "骗取出口退税"],
                               ["91512000MA62XY001U", "", "", "", "", "", "川械注准20253170032", "Ⅲ类",
                                "自主研发", "", ""]]), "a.csv", registry)
    assert pf.problems == []
    [e] = pf.enterprises
    assert e.profile == {
        "uscc": "91512000MA62XY001U", "name": "甲", "tax_collection": "audit", "total_assets_avg_cny": 42000000,
        "four_industries_sales_share": 0.92, "established_on": "2019-05-20",
        "device_registrations": [
            {"certificate_no": "川械注准20252170031", "device_class": "II", "origin": "introduced"},
            {"certificate_no": "川械注准20253170032", "device_class": "III", "origin": "self_developed"}],
        "violations": [{"kind": "export_refund_fraud"}],
    }
    assert e.claims == ["川械注准20253170032"]


def test_an_ambiguous_value_synonym_in_the_registry_is_refused(registry):
    doc = load_yaml(ROOT / "rules" / "fields.yaml")
    data = copy.deepcopy(doc.data)
    regs = next(f for f in data["fields"] if f["id"] == "device_registrations")
    cls = next(f for f in regs["fields"] if f["id"] == "device_class")
    cls["value_synonyms"]["I"].append("Ⅱ类")
    with pytest.raises(ValueError, match="Ⅱ类"):
        layout(registry_from(dataclasses.replace(doc, data=data)))


def test_not_before_names_an_earlier_date_of_the_same_item_or_the_registry_is_refused():
    doc = load_yaml(ROOT / "rules" / "fields.yaml")
    lines = (ROOT / "rules" / "fields.yaml").read_text(encoding="utf-8").splitlines()
    for field, earlier in (("act_on", "discovered_on"), ("discovered_on", "case_id"),
                           ("discovered_on", "no_such_field")):
        data = copy.deepcopy(doc.data)
        cases = next(f for f in data["fields"] if f["id"] == "market_cases")
        for f in cases["fields"]:
            f.pop("not_before", None)
            if f["id"] == field:
                f["not_before"] = earlier
        with pytest.raises(RegistryError) as exc:
            registry_from(dataclasses.replace(doc, data=data))
        [(line, message)] = exc.value.problems
        assert f"not_before: {earlier}" in message and "前面的日期字段" in message
        assert f"- id: {field}" in "\n".join(lines[line - 8:line]), (field, line)   # the field's own entry


# --- a registry with one more field ------------------------------------------------------------------


def test_a_field_added_to_the_registry_is_a_column_and_is_read():
    doc = load_yaml(ROOT / "rules" / "fields.yaml")
    data = copy.deepcopy(doc.data)
    data["fields"].insert(3, {"id": "patents_count", "label": "有效发明专利数", "type": "int", "unit": "个",
                              "min": 0, "max": 100000, "column": "有效发明专利数（件）",
                              "synonyms": ["发明专利数"], "example": 3})
    data["fields"].insert(4, {"id": "scale", "label": "企业规模", "type": "enum",
                              "values": {"small": "小型", "medium": "中型"},
                              "value_synonyms": {"small": ["小微"]}, "column": "企业规模（小型/中型）"})
    reg = registry_from(dataclasses.replace(doc, data=data))
    header = [c.value for c in load_workbook(io.BytesIO(template_bytes(reg)))["企业信息"][1]]
    assert header[3:5] == ["有效发明专利数（件）", "企业规模（小型/中型）"]
    assert "有效发明专利数（件）" in template_bytes(reg, "csv").decode("utf-8-sig").splitlines()[0]

    pf = parse_file(csv_bytes([["统一社会信用代码", "企业名称", "发明专利数", "企业规模"],
                               ["91512000MA62XY001U", "甲", "3", "小微"]]), "a.csv", reg)
    assert pf.problems == []
    assert pf.enterprises[0].profile == {"uscc": "91512000MA62XY001U", "name": "甲", "patents_count": 3,
                                         "scale": "small"}
    assert parse_profile(pf.enterprises[0].profile, reg).patents_count == 3
    filled = parse_file(filled_template(reg), "filled.xlsx", reg)
    assert filled.problems == [] and filled.enterprises[0].profile["patents_count"] == 3


# --- headers and sheets ---------------------------------------------------------------------------


def test_headers_by_label_synonym_hintless_or_id(registry):
    head = ["uscc", "企业名称", "注册地在资阳高新区", "信用代码 ", "行业代码"]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "甲", "是", "", "c3589"]]), "a.csv", registry)
    assert messages(pf) == ["工作表“CSV”，第1行，列“信用代码”：列重复（与“uscc”相同）"]
    head = ["统一社会信用代码", "企业名称", "注册地在资阳高新区(是/否)", "Tax_Collection", "高新技术企业证书编号",
            "hnte_certificate.issued_on", "violations.kind", "违法违规说明"]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "甲", "是", "deemed", "GR1", "2024-01-02", "偷税",
                                      "x"]]), "a.csv", registry)
    assert pf.problems == []
    assert pf.enterprises[0].profile == {
        "uscc": "91512000MA62XY001U", "name": "甲", "in_park": True, "tax_collection": "deemed",
        "hnte_certificate": {"number": "GR1", "issued_on": "2024-01-02"},
        "violations": [{"kind": "tax_evasion", "description": "x"}]}


def test_unknown_header_names_the_closest_and_blocks_the_rows_with_data_there(registry):
    pf = parse_file(csv_bytes([["统一社会信用代码", "企业名", "成立日", "备注"],
                               ["91512000MA62XY001U", "甲", "2019-01-01", ""]]), "a.csv", registry)
    assert messages(pf) == [
        "工作表“CSV”，第1行，列“企业名”：无法识别的列名，是否指“企业名称”？",
        "工作表“CSV”，第1行，列“成立日”：无法识别的列名，是否指“成立日期”？",
        "工作表“CSV”，第1行，列“备注”：无法识别的列名（请使用导入模板中的列名）",
        "工作表“CSV”，第1行，列“企业名称”：缺少必需的列",
    ]
    assert pf.enterprises == []


def test_unknown_sheet_missing_sheet_and_ignored_sheets(registry):
    wb = load_workbook(io.BytesIO(filled_template(registry)))
    wb.create_sheet("注册证2")
    wb[SHEET_EXAMPLE]["A30"] = "anything"
    buf = io.BytesIO()
    wb.save(buf)
    pf = parse_file(buf.getvalue(), "a.xlsx", registry)
    sheets = "、".join(["企业信息", *(f.sheet for f in registry.entered_fields() if f.type == "list")])
    assert messages(pf) == [f"工作表“注册证2”：无法识别的工作表（应为 {sheets}）"]
    assert [e.ok for e in pf.enterprises] == [False]        # the file was not wholly understood

    del wb["企业信息"], wb["注册证2"]
    buf = io.BytesIO()
    wb.save(buf)
    pf = parse_file(buf.getvalue(), "a.xlsx", registry)
    assert messages(pf) == ["缺少工作表“企业信息”（请使用导入模板）"]


def test_a_list_sheet_present_is_complete_and_absent_is_unknown(registry):
    wb = load_workbook(io.BytesIO(filled_template(registry)))
    wb["注册证"].delete_rows(2)
    del wb["违法违规记录"]
    buf = io.BytesIO()
    wb.save(buf)
    [e] = parse_file(buf.getvalue(), "a.xlsx", registry).enterprises
    assert e.profile["device_registrations"] == [] and e.claims == []
    assert "violations" not in e.profile

    pf = parse_file(csv_bytes([["统一社会信用代码", "企业名称"], ["91512000MA62XY001U", "甲"]]), "a.csv", registry)
    assert pf.enterprises[0].profile == {"uscc": "91512000MA62XY001U", "name": "甲"}
    assert pf.enterprises[0].claims is None


def test_list_rows_and_csv_merging(registry):
    wb = load_workbook(io.BytesIO(filled_template(registry)))
    ws = wb["注册证"]
    put(ws, 3, ["91512000MA62XY001U", "川械注准20252170031"])           # the same certificate again
    put(ws, 4, ["91110000600037341L", "川械注准20252170099"])           # an enterprise not in 企业信息
    put(ws, 5, ["91512000MA62XY001U", None, "产品"])                    # no certificate number
    buf = io.BytesIO()
    wb.save(buf)
    pf = parse_file(buf.getvalue(), "a.xlsx", registry)
    assert messages(pf) == [
        "工作表“注册证”，第3行，列“注册证编号”：注册证 川械注准20252170031 与第2行重复",
        "工作表“注册证”，第4行，列“统一社会信用代码”：“企业信息”中没有统一社会信用代码 91110000600037341L 的企业",
        "工作表“注册证”，第5行，列“注册证编号”：填写了注册证信息但缺少注册证编号",
    ]
    assert [e.ok for e in pf.enterprises] == [False]

    head = ["统一社会信用代码", "企业名称", "成立日期", "注册证编号"]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "甲", "", "川械注准20252170031"],
                               ["91512000MA62XY001U", "甲", "2019-01-01", "川械注准20252170032"],
                               ["91512000MA62XY001U", "乙", "2019-01-01", ""]]), "a.csv", registry)
    assert messages(pf) == ["工作表“CSV”，第4行，列“企业名称”：同一企业在第2行填的是“甲”，两处不一致"]
    [e] = pf.enterprises
    assert not e.ok and len(e.profile["device_registrations"]) == 2
    assert e.locate("established_on") == ("CSV", 3, "成立日期")        # first given on row 3


def test_held_no_with_certificate_details_is_a_problem(registry):
    head = ["统一社会信用代码", "企业名称", "持有高新技术企业证书（是/否）", "高新技术企业证书编号"]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "甲", "否", "GR1"]]), "a.csv", registry)
    assert messages(pf) == [
        "工作表“CSV”，第2行，列“高新技术企业证书编号”：“持有高新技术企业证书（是/否）”填了“否”，此项应留空"]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "甲", "否", ""]]), "a.csv", registry)
    assert pf.enterprises[0].profile["hnte_certificate"] is False
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "甲", "是", ""]]), "a.csv", registry)
    assert pf.enterprises[0].profile["hnte_certificate"] == {}


def test_profile_problems_are_located_at_their_cell(registry):
    wb = load_workbook(io.BytesIO(filled_template(registry)))
    put(wb["注册证"], 3, ["91512000MA62XY001U", "川械注准20252170032", None, None, None, "2099-01-01"])
    sheet = wb["企业信息"]
    col = next(c.column_letter for c in sheet[1] if c.value == "高新技术企业证书发证日期")
    sheet[f"{col}2"] = "2099-01-01"
    buf = io.BytesIO()
    wb.save(buf)
    pf = parse_file(buf.getvalue(), "a.xlsx", registry)
    assert pf.problems == []
    [e] = pf.enterprises
    with pytest.raises(ProfileError) as err:
        parse_profile(e.profile, registry)
    where = {e.locate(p.path) for p in err.value.problems}
    assert where == {("企业信息", 2, "高新技术企业证书发证日期"), ("注册证", 3, "取得日期")}
    assert e.locate("device_registrations[0]") == ("注册证", 2, None)
    assert e.locate("hnte_certificate") == ("企业信息", 2, "持有高新技术企业证书（是/否）")
    assert e.locate("name") == ("企业信息", 2, "企业名称")


# --- limits ------------------------------------------------------------------------------------------


def test_row_cap_problem_cap_cell_cap_and_nul(registry):
    head = ["统一社会信用代码", "企业名称"]
    rows = [head] + [["bad", f"企业{i}"] for i in range(10)]
    pf = parse_file(csv_bytes(rows), "a.csv", registry, IntakeLimits(max_rows=6, max_problems=3))
    assert pf.rows == 6
    assert messages(pf) == [
        "工作表“CSV”，第2行，列“统一社会信用代码”：统一社会信用代码应为18位，实际为3位",
        "工作表“CSV”，第3行，列“统一社会信用代码”：统一社会信用代码应为18位，实际为3位",
        "工作表“CSV”，第4行，列“统一社会信用代码”：统一社会信用代码应为18位，实际为3位",
        "工作表“CSV”，第8行：超过 6 行的上限，从本行起未读取；请分成多个文件导入",
        "另有 3 处问题未列出",
    ]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "资" * 25]]), "a.csv", registry,
                    IntakeLimits(max_cell_chars=18))
    assert messages(pf) == [f"工作表“CSV”，第2行，列“企业名称”：内容超过 18 个字符：“{'资' * 20}…”"]
    pf = parse_file(csv_bytes([head, ["91512000MA62XY001U", "资\x00阳"]]), "a.csv", registry)
    assert messages(pf) == ["工作表“CSV”，第2行，列“企业名称”：不能包含空字符（\\u0000）"]
    assert [e.ok for e in pf.enterprises] == [False]


def test_a_file_over_the_row_cap_imports_nothing(registry):
    rows = [["统一社会信用代码", "企业名称"]] + [[p["uscc"], p["name"]] for p in map(make_profile, range(5))]
    pf = parse_file(csv_bytes(rows), "a.csv", registry, IntakeLimits(max_rows=3))
    assert [e.ok for e in pf.enterprises] == [False] * 3


def test_limits_from_the_environment():
    limits = IntakeLimits.from_env({"YAGU_MAX_IMPORT_ROWS": "10", "YAGU_MAX_IMPORT_PROBLEMS": "5",
                                    "YAGU_MAX_IMPORT_CELL_CHARS": "", "YAGU_MAX_IMPORT_RATIO": "50"})
    assert limits == IntakeLimits(max_rows=10, max_problems=5, max_ratio=50)


def test_unsupported_file_type(registry):
    with pytest.raises(ValidationFailed) as e:
        parse_file(b"x", "a.xls", registry)
    assert str(e.value.problems[0]) == "不支持的文件类型“.xls”，请上传 .xlsx 或 .csv 文件"
    with pytest.raises(ValidationFailed) as e:
        parse_file(b"not a zip", "a.xlsx", registry)
    assert str(e.value.problems[0]) == "不是有效的 Excel（.xlsx）文件，请用导入模板另存为 .xlsx"


# --- hostile files -----------------------------------------------------------------------------------

# Peak RSS per case, read from /proc: getrusage's ru_maxrss survives fork and exec, so a child
# of a big pytest process would start at the parent's size. Writing 5 to clear_refs resets the
# peak (VmHWM) to the current RSS before each case.
_MEASURE = r"""
import json, sys, time
from engine import load_rulebook
from store.errors import ValidationFailed
from store.intake import parse_file

def vm(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024

registry = load_rulebook().fields
for path, name in json.loads(sys.argv[1]):
    data = open(path, "rb").read()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = vm("VmRSS")
    t = time.process_time()     # CPU seconds: the work done, whatever else the machine runs
    try:
        pf = parse_file(data, name, registry)
        out = {"problems": [str(p) for p in pf.problems], "rows": pf.rows}
    except ValidationFailed as e:
        out = {"refused": [str(p) for p in e.problems]}
    out["seconds"] = time.process_time() - t
    out["growth_mb"] = vm("VmHWM") - base
    del data
    print(json.dumps(out, ensure_ascii=False), flush=True)
"""


def _hostile_cases(registry) -> dict[str, tuple[bytes, str]]:
    header = [c.header for c in layout(registry).enterprise.columns]
    return {
        "dimension_bomb": (H.dimension_bomb(header, ["91512000MA62XY001U", "资阳企业"]), "a.xlsx"),
        "shared_string_bomb": (H.shared_string_bomb(header=header), "a.xlsx"),
        "long_shared_string": (H.shared_string_bomb(5000, header=header), "a.xlsx"),
        "billion_laughs_sheet": (H.billion_laughs("sheet"), "a.xlsx"),
        "billion_laughs_strings": (H.billion_laughs("strings"), "a.xlsx"),
        "billion_laughs_workbook": (H.billion_laughs("workbook"), "a.xlsx"),
        "undefined_entity": (H.undefined_entity(), "a.xlsx"),
        "truncated_sheet": (H.truncated_sheet(header), "a.xlsx"),
        "wide_row": (H.wide_row(1_000_000, header), "a.xlsx"),
        "invalid_rows_xlsx": (H.invalid_rows_xlsx(header=header), "a.xlsx"),
        "huge_csv_field": (H.huge_csv_field(header=header), "a.csv"),
        "invalid_rows_csv": (b"".join(H.invalid_rows_csv(header=header)), "a.csv"),
        "nul_csv": (H.nul_csv(header), "a.csv"),
        "undecodable_csv": (H.undecodable_csv(header), "a.csv"),
    }


EXPECT = {
    "dimension_bomb": ("problems", None),       # read as the one row it has
    "shared_string_bomb": ("refused", "文件无法读取：xl/sharedStrings.xml 压缩比"),
    "long_shared_string": ("problems", "列“统一社会信用代码”：内容超过 1000 个字符：“AAAAAAAAAAAAAAAAAAAA…”"),
    "billion_laughs_sheet": ("refused", "文件无法读取：xl/worksheets/sheet1.xml 含有 DTD 或实体声明"),
    "billion_laughs_strings": ("refused", "文件无法读取：xl/sharedStrings.xml 含有 DTD 或实体声明"),
    "billion_laughs_workbook": ("refused", "文件无法读取：xl/workbook.xml 含有 DTD 或实体声明"),
    "undefined_entity": ("refused", "文件无法读取：xl/worksheets/sheet1.xml 引用了未定义的实体"),
    "truncated_sheet": ("refused", "文件无法读取：xl/worksheets/sheet1.xml 内容不完整（文件被截断）"),
    "wide_row": ("problems", "列有数据但没有列名（共 {blank_columns} 列）"),
    "invalid_rows_xlsx": ("problems", "第200002行：超过 200000 行的上限"),
    "huge_csv_field": ("refused", "工作表“CSV”，第2行：文件无法读取：不是有效的 CSV"),
    "invalid_rows_csv": ("problems", "第200002行：超过 200000 行的上限"),
    "nul_csv": ("problems", "第2行，列“企业名称”：不能包含空字符"),
    "undecodable_csv": ("refused", "工作表“CSV”，第3行：文件无法读取：含有无法识别的字符"),
}


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_hostile_files_are_refused_quickly_in_bounded_memory(registry, tmp_path):
    cases = _hostile_cases(registry)
    assert set(cases) == set(EXPECT)
    files = []
    for name, (data, filename) in cases.items():
        path = tmp_path / f"{name}{Path(filename).suffix}"
        path.write_bytes(data)
        files.append((str(path), filename))
    del cases
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(files)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    results = dict(zip(EXPECT, map(json.loads, run.stdout.splitlines())))
    blank_columns = 16384 - len(layout(registry).enterprise.columns)
    for name, (outcome, text) in EXPECT.items():
        r = results[name]
        text = text and text.format(blank_columns=blank_columns)
        if text is None:
            assert r[outcome] == [] and r["rows"] == 1, (name, r)
        else:
            assert outcome in r and any(text in p for p in r[outcome]), (name, r.get(outcome, r)[:3])
        assert len(r[outcome]) <= 202, name          # the report is capped
        assert r["seconds"] < 8, (name, r["seconds"])
        assert r["growth_mb"] < 300, (name, r["growth_mb"])
    assert any("另有" in p for p in results["invalid_rows_csv"]["problems"])
