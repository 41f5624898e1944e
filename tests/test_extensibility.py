"""A new benefit is one rule file, a new fact one registry entry (issue 10): copied rules with a
seventh benefit and an extra field are served, decided, shown and noticed with no code change."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from api_support import accepting_window, api_on, wait_job
from engine import Evaluator, load_rulebook
from engine.profile import shanghai_today
from store import applications, rulesets
from store.intake import layout, template_bytes

ROOT = Path(__file__).resolve().parent.parent

NEW_BENEFIT = """
id: talent-housing-grant
title: 高层次人才安居补贴（测试事项）
kind: grant
unit: enterprise
summary: 园区企业引进的高层次人才，按人数给予安居补贴（测试用的第七个事项）。
legal_basis:
  - {id: test-doc, title: 测试政策文件, doc_no: 测试〔2026〕1号, date: 2026-01-01}
responsible_units: [资阳高新区管委会]
in_force:
  - {from: 2026-01-01, basis: test-doc}
parameters:
  per_person:
    description: 每人补贴金额
    unit: 元
    values:
      - {from: 2026-01-01, value: 20000, reference: {basis: test-doc, article: 第二条}}
criteria:
  - id: in_park
    text: 企业注册地在资阳高新区
    basis: [{ref: test-doc, article: 第一条}]
    materials: [talent_list]
    when: {fact: in_park, eq: true}
  - id: has_talents
    text: 引进高层次人才不少于1人
    basis: [{ref: test-doc, article: 第一条}]
    materials: [talent_list]
    when: {fact: talents_hired, gte: 1}
materials:
  - {id: talent_list, name: 高层次人才花名册, description: 载明人才姓名、层次和入职日期}
amount:
  multiply: {fact: talents_hired, by: {param: per_person}}
examples: []
"""

NEW_FIELD = {"id": "talents_hired", "label": "引进高层次人才人数", "type": "int", "unit": "人", "min": 0,
             "max": 100000, "help": "本年度新引进的高层次人才", "column": "引进高层次人才人数", "example": 2}


def _rules_with_a_seventh_benefit(tmp_path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", root)
    (root / "benefits" / "talent-housing-grant.yaml").write_text(NEW_BENEFIT, encoding="utf-8")
    index = yaml.safe_load((root / "index.yaml").read_text(encoding="utf-8"))
    index["benefits"].append("talent-housing-grant")
    (root / "index.yaml").write_text(yaml.safe_dump(index, allow_unicode=True), encoding="utf-8")
    fields = yaml.safe_load((root / "fields.yaml").read_text(encoding="utf-8"))
    fields["fields"].insert(3, NEW_FIELD)
    (root / "fields.yaml").write_text(yaml.safe_dump(fields, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture
def seventh(tmp_path):
    before = rulesets.current()
    ev = Evaluator(load_rulebook(_rules_with_a_seventh_benefit(tmp_path)))
    rulesets.use(ev)
    try:
        with api_on("sqlite", tmp_path / "db") as api:
            yield api, ev
    finally:
        rulesets.use(before)


PROFILE = {"uscc": "91512000MA62XY001U", "name": "资阳人才示例口腔有限公司", "in_park": True, "talents_hired": 3,
           "violations": [], "device_registrations": []}


def test_a_seventh_benefit_is_listed_decided_shown_and_noticed(seventh):
    api, ev = seventh
    c = api.c
    assert "talent-housing-grant" in [r["id"] for r in c.get("/v1/rules").json()]
    r = c.post("/v1/eligibility", json={"profile": PROFILE}).json()
    got = next(x for x in r["results"] if x["benefit_id"] == "talent-housing-grant")
    assert got["status"] == "eligible" and got["amount_cny"] == 60000
    page = c.post("/self-check", data={"uscc": PROFILE["uscc"], "name": PROFILE["name"], "in_park": "yes",
                                        "talents_hired": "0"})
    assert page.status_code == 200 and "高层次人才安居补贴（测试事项）" in page.text
    assert "引进高层次人才不少于1人" in page.text            # its failed criterion, in its own words
    # a window: its one-time notice names the new benefit's failed criterion and material
    accepting_window(api, "W7")
    app = applications.submit_application(api.db, "W7", {**PROFILE, "talents_hired": 0}, channel="api",
                                          actor="测试", today=shanghai_today()).application_id
    assert wait_job(api, c.post("/v1/windows/W7/evaluate", headers=api.staff))["state"] == "succeeded"
    assert c.post("/v1/windows/W7/one-time-notices", headers=api.staff).json()["issued"] == 1
    notice = c.post("/v1/notices", json={"application_id": app, "kind": "one_time", "format": "html"},
                    headers=api.staff)
    assert notice.status_code == 200, notice.text[:300]
    assert "高层次人才安居补贴（测试事项）" in notice.text and "高层次人才花名册" in notice.text


def test_an_extra_registry_field_reaches_the_form_the_template_and_the_labels(seventh):
    api, ev = seventh
    form = api.c.get("/").text
    assert 'name="talents_hired"' in form and "引进高层次人才人数" in form
    headers = [c.header for c in layout(ev.registry).enterprise.columns]
    assert "引进高层次人才人数" in headers
    assert len(template_bytes(ev.registry, "csv")) > 0
    assert ev.registry.label("talents_hired") == "引进高层次人才人数"
    assert ev.registry.value_text("talents_hired", 3) == "3人"
