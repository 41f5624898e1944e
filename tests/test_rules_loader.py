"""Rule files with mistakes: every problem reported with its file and line, nothing loaded."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine import RuleLoadError, load_rulebook

ROOT = Path(__file__).resolve().parent.parent
YAGU = str(ROOT / ".venv" / "bin" / "yagu")

BROKEN = """\
id: small-low-profit-cit
title: 小型微利企业所得税优惠
kind: tax
unit: enterprise
summary: 测试
legal_basis:
  - {id: doc, title: 测试文件, doc_no: 测试〔2023〕1号, date: 2023-08-02}
responsible_units: [税务局]
in_force:
  - {from: 2023-01-01, to: 2027-12-31, basis: doc}
parameters:
  income_cap:
    description: 上限
    unit: 元
    values:
      - from: 2023-02-30
        value: 3000000
        reference: {basis: doc}
      - from: 2024-01-01
        value: 3000000
criteria:
  - id: income
    text: 应纳税所得额不超过{param.income_cap}
    basis: [{ref: doc}]
    when: {fact: taxable_incom_cny, lte: {param: income_cap}}
tax:
  how_to_claim: 申报
  records_to_keep: [申报表]
"""


def make_rules(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "rules"
    (root / "benefits").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "windows.yaml", root / "windows.yaml")
    shutil.copy(ROOT / "rules" / "common.yaml", root / "common.yaml")
    shutil.copy(ROOT / "rules" / "fields.yaml", root / "fields.yaml")
    (root / "index.yaml").write_text("benefits: [small-low-profit-cit]\n", encoding="utf-8")
    (root / "benefits" / "small-low-profit-cit.yaml").write_text(text, encoding="utf-8")
    return root


def test_three_mistakes_are_all_reported_with_lines_and_nothing_loads(tmp_path):
    root = make_rules(tmp_path, BROKEN)
    with pytest.raises(RuleLoadError) as exc:
        load_rulebook(root)
    problems = exc.value.problems
    by_line = {p.line: p.message for p in problems}
    # line 16: `2023-02-30` is no date; line 19: a dated value without a reference;
    # line 25: an unknown fact path. All three, each at its own line.
    assert 16 in by_line and "日期无效" in by_line[16], problems
    assert any(p.line in (19, 20) and "reference" in p.message and "缺少" in p.message for p in problems), problems
    assert 25 in by_line and "taxable_incom_cny" in by_line[25], problems
    assert all(p.file.endswith("benefits/small-low-profit-cit.yaml") for p in problems)


def test_validate_command_lists_every_problem_as_file_line(tmp_path):
    root = make_rules(tmp_path, BROKEN)
    proc = subprocess.run([YAGU, "rules", "validate", str(root)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if "small-low-profit-cit.yaml:" in line]
    assert len(lines) >= 3
    assert "规则未加载" in proc.stderr


@pytest.mark.parametrize("when, needle", [
    ({"fact": "in_park", "gt": 1}, "不能用 gt"),
    ({"fact": "tax_credit_rating", "eq": "Z"}, "取值 `Z`"),
    ({"fact": "certificate.obtained_on", "gte": "2025-01-01"}, "只能用于按注册证逐项判定"),
    ({"all": []}, "非空列表"),
    ({"fact": "in_park", "eq": True, "ne": False}, "只能有一个运算符"),
    ({"count": {"list": "violations", "where": {"fact": "kind", "eq": "other"}}, "lt": 1}, "field:"),
    ({"fact": "established_on", "gte": {"as_of": {"month": -3}}}, "years/months/days"),
    ({"fact": "employees_avg", "lte": {"param": "nope"}}, "未定义的参数"),
])
def test_condition_type_errors_are_explained(tmp_path, when, needle):
    import yaml
    data = yaml.safe_load(BROKEN.replace("2023-02-30", "2023-01-01").replace(
        "      - from: 2024-01-01\n        value: 3000000\n", ""))
    data["criteria"][0]["when"] = when
    root = make_rules(tmp_path, yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(RuleLoadError) as exc:
        load_rulebook(root)
    assert any(needle in p.message for p in exc.value.problems), exc.value.problems


def test_mistakes_that_once_loaded_and_then_gave_wrong_results_are_refused_at_their_lines(tmp_path):
    """An amount written in words inside a table (it once loaded, and every certificate got no
    amount), a percentage written as 60, and an id defined twice (the second citation was
    used instead): all refused at once, each at its line, saying how to write it."""
    import yaml
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    grant = tmp_path / "rules" / "benefits" / "device-registration-grant.yaml"
    text = grant.read_text(encoding="utf-8")
    grant.write_text(text.replace("self_developed: {II: 300000, III: 500000}",
                                  "self_developed: {II: 30万, III: 500000}"), encoding="utf-8")
    table_line = 1 + text.splitlines().index(next(x for x in text.splitlines() if "self_developed: {II: 300000" in x))
    rate = tmp_path / "rules" / "benefits" / "western-development-rate.yaml"
    data = yaml.safe_load(rate.read_text(encoding="utf-8"))
    data["parameters"]["encouraged_share_min"]["values"][0]["value"] = 60
    data["legal_basis"].append(dict(data["legal_basis"][0], title="另一份文件"))
    rate.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(RuleLoadError) as exc:
        load_rulebook(tmp_path / "rules")
    said = {(p.file.rsplit("/", 1)[-1], p.line): p.message for p in exc.value.problems}
    assert "“30万” 不是数字，请写成 300000" in said[("device-registration-grant.yaml", table_line - 1)] or any(
        "“30万” 不是数字，请写成 300000" in m for (f, _), m in said.items() if f == "device-registration-grant.yaml"), said
    messages = " ".join(m for (f, _), m in said.items() if f == "western-development-rate.yaml")
    assert "比例 60 即 6000%" in messages and "0.6" in messages, said
    first = data["legal_basis"][0]["id"]
    assert f"法律依据 id `{first}` 重复（第" in messages, said


def test_validate_reads_the_index_and_the_notice_settings_beside_the_rules(tmp_path):
    """A benefit listed twice in index.yaml, and a misspelt key in notice-settings.yaml (which
    stops every official notice), are said by `yagu rules validate` with the rest."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    with open(tmp_path / "rules" / "index.yaml", "a", encoding="utf-8") as f:
        f.write("  - hnte-reduced-rate\n")
    settings = tmp_path / "rules" / "notice-settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + "contact_phon: 028-1234567\n", encoding="utf-8")
    proc = subprocess.run([YAGU, "rules", "validate", str(tmp_path / "rules")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "index.yaml:12: 事项 `hnte-reduced-rate` 重复列出" in proc.stderr, proc.stderr
    assert "notice-settings.yaml" in proc.stderr and "contact_phon" in proc.stderr, proc.stderr


def test_a_misspelt_key_or_fact_and_a_wrong_date_format_say_what_was_meant(tmp_path):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    grant = tmp_path / "rules" / "benefits" / "device-registration-grant.yaml"
    text = grant.read_text(encoding="utf-8")
    grant.write_text(text.replace("    basis: [{ref: plan", "    basic: [{ref: plan", 1)
                     .replace("when: {fact: in_park, eq: true}", "when: {fact: in_prk, eq: true}"), encoding="utf-8")
    windows = tmp_path / "rules" / "windows.yaml"
    windows.write_text(windows.read_text(encoding="utf-8").replace('opens_on: "03-01"', 'opens_on: "3月1日"', 1),
                       encoding="utf-8")
    with pytest.raises(RuleLoadError) as exc:
        load_rulebook(tmp_path / "rules")
    said = "\n".join(str(p) for p in exc.value.problems)
    assert "未知的键 `basic`（拼写错误？是否指 `basis`）" in said, said
    assert "未知的事实路径 `in_prk`，是否指 `in_park`？" in said, said
    assert "windows.yaml:" in said and "应为“月-日”两位数字，例如 03-01" in said, said


def test_yaml_syntax_error_names_the_line(tmp_path):
    root = make_rules(tmp_path, BROKEN.replace("kind: tax", "kind: [tax"))
    with pytest.raises(RuleLoadError) as exc:
        load_rulebook(root)
    assert exc.value.problems[0].line >= 3
    assert "YAML" in exc.value.problems[0].message


def test_shipped_rules_load_and_version_changes_with_content(tmp_path):
    a = load_rulebook()
    root = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", root)
    assert load_rulebook(root).version == a.version
    p = root / "benefits" / "small-low-profit-cit.yaml"
    p.write_text(p.read_text(encoding="utf-8") + "\n# 注释也算内容\n", encoding="utf-8")
    assert load_rulebook(root).version != a.version


def test_a_rules_directory_that_does_not_exist_is_said_in_one_line(tmp_path):
    for root, words in ((tmp_path / "没有这个目录", "规则目录不存在"), (tmp_path / "a.yaml", "不是目录")):
        if words == "不是目录":
            root.write_text("x: 1\n", encoding="utf-8")
        with pytest.raises(RuleLoadError) as exc:
            load_rulebook(root)
        assert [str(p) for p in exc.value.problems] == [f"{root}:1: {words}"]
