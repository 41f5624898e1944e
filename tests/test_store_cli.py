"""`yagu window …` for a short full cycle on SQLite and PostgreSQL: every line in Chinese, no
traceback; the access codes of an import land in the data directory, owner-only; a read-only
database gives one Chinese line."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from cli.main import main
from engine.profile import shanghai_today
from store import awards
from store.db import Database
from store.models import Application
from store.paths import data_dir
from store_fixtures import (  # noqa: F401  (fixtures)
    grant_profile, make_profile, profiles_csv, store_url,
)

CJK = lambda s: any("\u4e00" <= c <= "\u9fff" for c in s)  # noqa: E731


def _yagu(url: str, *args: str, ok: bool = True) -> str:
    r = CliRunner().invoke(main, list(args), env={"YAGU_DATABASE_URL": url}, catch_exceptions=True)
    out = r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{args}: {r.exception!r}\n{out}"
    assert "Traceback" not in out and "Error" not in out, out
    assert (r.exit_code == 0) == ok, f"{args} → {r.exit_code}\n{out}"
    lines = [x for x in out.splitlines() if x.strip()]
    assert lines and all(CJK(x) for x in lines if not set(x.strip()) <= set("-=█ #[]0123456789%")), out
    return out


def test_a_short_full_cycle_on_the_command_line(store_url, tmp_path, caplog):
    today = shanghai_today()
    url = store_url
    assert "还没有申报批次" in _yagu(url, "window", "list")
    # dates in Chinese, as everywhere a reader sees one (国庆 2026: 10月1日至7日放假)
    assert _yagu(url, "notice", "workdays", "add", "2026-09-28", "3").strip() == "2026年10月8日"
    assert "放假  2026年10月1日 周四" in _yagu(url, "notice", "workdays", "check", "2026")
    apps = tmp_path / "申报.csv"
    profiles = [grant_profile(1), grant_profile(2, origin=None), grant_profile(3, in_park=False), make_profile(4)]
    apps.write_bytes(profiles_csv(profiles))
    out = _yagu(url, "window", "open", "CUR", "--opens", str(today - timedelta(days=5)), "--closes", str(today),
                "--coverage-from", "2025-10-01", "--coverage-to", str(today), "--label", "本期集中申报")
    assert "已开设 CUR（本期集中申报）" in out and f"{today.year}年{today.month}月{today.day}日" in out
    assert "受理中 本期集中申报" in _yagu(url, "window", "list")
    _yagu(url, "window", "template", str(tmp_path / "模板.xlsx"))
    assert (tmp_path / "模板.xlsx").stat().st_size > 0
    out = _yagu(url, "window", "import", "CUR", str(apps))
    assert "新受理 4" in out
    (codes,) = re.findall(r"查询码已写入 (\S+\.csv)", out)
    assert Path(codes).parent == data_dir() / "access-codes" and stat.S_IMODE(os.stat(codes).st_mode) == 0o600
    assert Path(codes).read_text(encoding="utf-8-sig").count("\n") == 2 + 4
    bad = tmp_path / "坏文件.xlsx"                     # problems name the file they are in
    bad.write_bytes(b"PK\x03\x04 not a workbook")
    assert f"任务失败：{bad}：输入有 1 处问题：\n不是有效的 Excel" in _yagu(url, "window", "import", "CUR", str(bad), ok=False)
    bad = tmp_path / "坏行.csv"
    bad.write_text("统一社会信用代码,企业名称\n123,某公司\n", encoding="utf-8")
    assert f"{bad}：工作表“CSV”第2行，列“统一社会信用代码”：" in _yagu(url, "window", "import", "CUR", str(bad), ok=False)
    out = _yagu(url, "window", "evaluate", "CUR")
    assert "已判定 4 家企业" in out
    assert "已发出 3 份一次性告知书" in _yagu(url, "window", "notices", "CUR")
    out = _yagu(url, "window", "applications", "CUR")
    assert "待补正" in out and "共 4 份" in out
    assert "已有申报、判定" in _yagu(url, "window", "delete", "CUR", "--yes", ok=False)
    assert "共 3 份" in _yagu(url, "window", "applications", "CUR", "--state", "待补正")      # the state's name
    assert "没有“补正中”这个办理状态" in _yagu(url, "window", "applications", "CUR", "--state", "补正中", ok=False)
    assert "受理期结束后才能公示" in _yagu(url, "window", "publish", "CUR", ok=False)
    assert "尚未公示" in _yagu(url, "window", "close", "CUR", "--reason", "命令行测试", "--yes", ok=False)
    # publicized as on the day after the last 补正 deadline (the command line acts on the real today)
    db = Database(url)
    with db.read_session() as s:
        last = s.scalar(select(func.max(Application.correction_due)).where(Application.window_id == "CUR"))
    awards.publish(db, "CUR", today=last + timedelta(days=1))
    db.dispose()
    assert "须用 --reason 写明理由" in _yagu(url, "window", "close", "CUR", "--yes", ok=False)
    out = _yagu(url, "window", "close", "CUR", "--reason", "命令行测试", "--yes")
    assert "已关闭：兑现 1 项" in out and "应出具不予支持告知书 3 份" in out
    target = tmp_path / "名单.csv"
    _yagu(url, "window", "export", "CUR", "--format", "csv", "--out", str(target))
    assert "资阳测试企业1有限公司" in target.read_text(encoding="utf-8-sig")
    assert "完全一致" in _yagu(url, "window", "replay", "CUR")
    assert "“2030/06/30”不是有效日期" in _yagu(url, "window", "impact", "CUR", "--as-of", "2030/06/30", ok=False)
    # --out: said before the analysis runs, never a traceback after it
    assert "须以 .xlsx 结尾" in _yagu(url, "window", "impact", "CUR", "--as-of", "2030-06-30",
                                     "--out", str(tmp_path / "影响.csv"), ok=False)
    assert "目录不存在" in _yagu(url, "window", "impact", "CUR", "--as-of", "2030-06-30",
                                "--out", str(tmp_path / "没有" / "影响.xlsx"), ok=False)
    _yagu(url, "window", "impact", "CUR", "--as-of", "2030-06-30", "--out", str(tmp_path / "影响.xlsx"))
    assert (tmp_path / "影响.xlsx").read_bytes()[:2] == b"PK"
    assert "请用 --rules" in _yagu(url, "window", "impact", "CUR", ok=False)   # not the rules against themselves
    out = _yagu(url, "window", "impact", "CUR", "--as-of", "2030-06-30")     # in words, with totals
    assert "判定日期 2030年6月30日" in out and "现金额合计" in out and "-yagu" not in out, out
    rows = [x for x in out.splitlines() if "现结论：" in x]     # each change: no USCC, amounts in words
    assert rows and all("统一社会信用代码" not in x and "（元）" not in x for x in rows), rows[:3]
    assert "“本期集中申报”（CUR）" in out
    assert "已关闭" in _yagu(url, "window", "list")
    # a refused job (into a closed window) is one Chinese line, and no traceback reaches stderr
    caplog.clear()
    assert "任务失败：" in _yagu(url, "window", "import", "CUR", str(apps), ok=False)
    assert not [r for r in caplog.records if r.levelno >= 30 or r.exc_info], caplog.text
    assert "重放核验" in _yagu(url, "jobs", "list")
    assert "申报批次 NOPE 不存在" in _yagu(url, "window", "evaluate", "NOPE", ok=False)


def _make_read_only(path) -> bool:
    """Read-only even for root (immutable), else by mode; False when neither can be had."""
    path.chmod(0o444)
    if os.geteuid() != 0:
        return True
    return shutil.which("chattr") is not None and subprocess.run(["chattr", "+i", str(path)]).returncode == 0


def test_a_read_only_database_gives_one_chinese_line(tmp_path):
    db_file = tmp_path / "yagu.db"
    url = f"sqlite:///{db_file}"
    _yagu(url, "window", "open", "2026-H1")
    if not _make_read_only(db_file):
        url = f"sqlite:///file:{db_file}?mode=ro&uri=true"
    try:
        assert "2026-H1" in _yagu(url, "window", "list")         # reading still works
        for args in (("window", "open", "2026-H2"), ("window", "evaluate", "2026-H1")):
            out = _yagu(url, *args, ok=False)
            assert out.strip().splitlines() == ["错误：数据库操作失败（数据库文件只读）"]
    finally:
        if os.geteuid() == 0 and shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(db_file)])
