"""The window benchmark still runs end to end (it had rotted once when the store was split):
a small window through import, evaluation, 公示, close and replay on SQLite, with 1 and 2
evaluation processes, every decision replayed identically, and the figures issue 12 asks for
printed (bytes per decision, the scaling ratio). The numbers themselves are for
bench/batch.py to print, not to assert."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_the_window_benchmark_runs_and_replays_identically():
    r = subprocess.run([sys.executable, "bench/batch.py", "--n", "300", "--stores", "sqlite", "--workers", "1,2",
                        "--baseline-n", "100"], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "[sqlite, 2 个评估进程]" in out and "合计" in out and "每件申报" in out, out
    assert "[sqlite, 1 个评估进程]" in out and "[sqlite] 评估扩展比" in out, out
    assert "300 家企业" in out and "差异 0 项" in out and "未存档规则 0 件" in out, out
    assert "数据库每项判定" in out, out
