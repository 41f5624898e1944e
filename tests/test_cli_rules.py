"""`yagu check` and `yagu rules ...` as a user runs them."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
YAGU = str(ROOT / ".venv" / "bin" / "yagu")

SAMPLE = {
    "uscc": "91512000MA62XY001U", "name": "资阳示例口腔医疗器械有限公司", "in_park": True,
    "industry_code": "C3589", "tax_credit_rating": "A", "on_serious_dishonest_list": False,
    "device_registrations": [{"certificate_no": "川械注准20252170031", "product_name": "无托槽隐形矫治器",
                              "origin": "self_developed", "obtained_on": "2025-10-15"}],
    "violations": [],
}


def yagu(*args: str, cwd: Path = ROOT, env_db: str | None = None) -> subprocess.CompletedProcess:
    import os
    env = dict(os.environ)
    env["YAGU_DATABASE_URL"] = env_db or f"sqlite:///{cwd}/no-such-dir/none.db"
    return subprocess.run([YAGU, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_check_shows_every_benefit_and_every_criterion_in_chinese(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(SAMPLE, ensure_ascii=False), encoding="utf-8")
    proc = yagu("check", str(f), "--as-of", "2026-03-31")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for title in ("Ⅱ类、Ⅲ类医疗器械产品注册证资金支持", "小型微利企业所得税优惠", "增值税期末留抵退税"):
        assert title in out
    assert "✓ 满足" in out and "? 待补充" in out and "依据：" in out
    # no store configured: the ledger criterion is unknown, never a silent pass
    assert "兑现台账" in out
    # what the web self-check says too: 暂定 conditions and values with their source, the
    # amount's note, the tax year, and the preferences only one of which can be claimed
    assert "本条件为暂定，以当期申报通知为准：" in out and "（暂定值）" in out and "金额说明：参考金额" in out
    assert "年度）：" in out and "判定日期：2026年3月31日" in out
    from api.schemas import EXAMPLE_PROFILE         # eligible for two rate preferences at once
    f.write_text(json.dumps(EXAMPLE_PROFILE, ensure_ascii=False), encoding="utf-8")
    out = yagu("check", str(f), "--as-of", "2026-03-31").stdout
    assert "※ 只能选择其一：小型微利企业所得税优惠、西部大开发" in out and "税负最低" in out, out[-2000:]


def test_check_json_is_the_contract_response(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"profile": SAMPLE}, ensure_ascii=False), encoding="utf-8")
    proc = yagu("check", str(f), "--as-of", "2026-03-31", "--benefit", "device-registration-grant",
                "--no-ledger", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["as_of"] == "2026-03-31" and data["ruleset_version"]
    (r,) = data["results"]
    assert r["subject"] == {"type": "certificate", "id": "川械注准20252170031"}
    assert r["status"] == "needs_info" and r["missing_facts"] == ["award_ledger"]
    assert {c["outcome"] for c in r["criteria"]} == {"pass", "unknown"}
    assert all(c["legal_basis"] for c in r["criteria"])


def test_check_reports_every_profile_problem_by_its_chinese_name(tmp_path):
    bad = dict(SAMPLE, uscc="91512000MA62XY001A", established_on="2099-01-01",
               device_registrations=[{"certificate_no": "川械注准20252170031", "device_class": "III"}])
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    proc = yagu("check", str(f))
    assert proc.returncode == 1
    for label in ("统一社会信用代码：", "成立日期：", "注册证 川械注准20252170031的管理类别："):
        assert label in proc.stderr
    assert "device_registrations" not in proc.stderr and "uscc" not in proc.stderr
    assert "3 个问题" in proc.stderr


def test_check_rejects_an_unknown_benefit(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(SAMPLE, ensure_ascii=False), encoding="utf-8")
    proc = yagu("check", str(f), "--benefit", "no-such-benefit")
    assert proc.returncode != 0 and "no-such-benefit" in proc.stderr


def test_rules_list_validate_and_test():
    listed = yagu("rules", "list")
    assert listed.returncode == 0 and "device-registration-grant" in listed.stdout
    valid = yagu("rules", "validate")
    assert valid.returncode == 0 and "校验通过" in valid.stdout
    tested = yagu("rules", "test")
    assert tested.returncode == 0
    assert tested.stdout.strip().splitlines()[-1].endswith("0 个未通过")


def test_rules_test_fails_on_a_wrong_expectation(tmp_path):
    import shutil
    root = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", root)
    p = root / "benefits" / "small-low-profit-cit.yaml"
    text = p.read_text(encoding="utf-8")
    p.write_text(text.replace("status: not_in_force", "status: eligible", 1), encoding="utf-8")
    proc = yagu("rules", "test", str(root))
    assert proc.returncode == 1
    assert "失败" in proc.stdout and "判定结论应为 符合条件（eligible），实际为 不在政策有效期内（not_in_force）" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].endswith("1 个未通过")
    # a criterion the date leaves unjudged is named by its text, and why it was not judged
    p.write_text(text.replace("  expect: {status: not_in_force}", "  expect: {status: not_in_force, "
                              "criteria: {employees: pass}, amount_provisional: true}", 1), encoding="utf-8")
    out = yagu("rules", "test", str(root)).stdout
    assert "「从业人数" in out and "实际为 未评估（该日期不在政策有效期内）" in out, out[-1500:]
    assert "参考金额标记应为 是，实际为 否" in out and "True" not in out and "False" not in out
    # `check` against that draft: the changed rules decide, not the shipped ones
    f = tmp_path / "p.json"
    f.write_text(json.dumps(SAMPLE, ensure_ascii=False), encoding="utf-8")
    (root / "benefits" / "device-registration-grant.yaml").write_text(
        (root / "benefits" / "device-registration-grant.yaml").read_text(encoding="utf-8").replace(
            "title: Ⅱ类、Ⅲ类医疗器械产品注册证资金支持", "title: 草案中的注册证资金支持", 1), encoding="utf-8")
    p.write_text(text, encoding="utf-8")
    assert "草案中的注册证资金支持" in yagu("check", str(f), "--as-of", "2026-03-31", "--rules-dir", str(root)).stdout
    assert "草案中的注册证资金支持" not in yagu("check", str(f), "--as-of", "2026-03-31").stdout
    # an expectation in no vocabulary is refused when the rules load, naming the right words
    p.write_text(text.replace("status: not_in_force", "status: 不符合", 1), encoding="utf-8")
    proc = yagu("rules", "validate", str(root))
    assert proc.returncode == 1 and "期望状态 `不符合` 无效，应为 eligible（符合条件）" in proc.stderr, proc.stderr


def test_every_commands_help_is_in_chinese_down_to_its_usage_line():
    """Usage lines once read `yagu window import [OPTIONS] WINDOW_ID PATH`, and a missing file
    “'PATH' 的取值无效”."""
    import re

    from click.testing import CliRunner

    from cli.main import main

    def walk(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path in walk(main, []):
        out = CliRunner().invoke(main, [*path, "--help"], prog_name="yagu").output
        usage = out.splitlines()[0]
        assert usage.startswith("用法： yagu") and not re.search(r"[A-Z]{2,}", usage), (path, usage)
    missing = CliRunner().invoke(main, ["window", "import", "W", "/no/such/file.xlsx"]).output
    assert "“文件”" in missing or "'文件'" in missing, missing
