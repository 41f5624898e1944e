"""Benchmark of a whole window: open → import (CSV) → evaluate → close, on SQLite and PostgreSQL.

    .venv/bin/python bench/batch.py                 # 100,000 synthetic applications, both stores
    .venv/bin/python bench/batch.py --n 10000 --stores sqlite

Prints seconds per phase, applications/second for the pipeline, and peak RSS.
Targets (2-core machine): whole pipeline ≤ 120 s for 100,000 applications, peak RSS ≤ 1 GB.
"""
from __future__ import annotations

import argparse
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TimedEvaluator:
    """Wraps the Evaluator to separate engine time from store time in the evaluate phase."""

    def __init__(self, ev):
        self.ev, self.seconds = ev, 0.0
        self.ruleset_version = ev.ruleset_version

    def evaluate_many(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return self.ev.evaluate_many(*a, **kw)
        finally:
            self.seconds += time.perf_counter() - t0


def run(kind: str, n: int, data: bytes, ev) -> dict:
    import sqlalchemy as sa

    from store.db import Database
    from store.intake import import_applications
    from store.windows import close_window, evaluate_window, open_window
    from store_fixtures import H1, PG_URL, pg_schema_url

    cleanup = None
    if kind == "sqlite":
        tmp = tempfile.mkdtemp(prefix="yagu-bench-")
        url = f"sqlite:///{tmp}/bench.db"
    else:
        schema = "yagu_bench_" + secrets.token_hex(4)
        admin = sa.create_engine(PG_URL)
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = pg_schema_url(schema)

        def cleanup():
            with admin.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    db = Database(url)
    db.upgrade()
    t = {}
    try:
        t0 = time.perf_counter()
        open_window(db, "2026-H1", **H1)
        t["open"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = import_applications(db, "2026-H1", data, "bench.csv")
        t["import"] = time.perf_counter() - t0
        assert rep.created == n, rep
        t0 = time.perf_counter()
        ev = TimedEvaluator(ev)
        res = evaluate_window(db, "2026-H1", evaluator=ev)
        t["evaluate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        closed = close_window(db, "2026-H1")
        t["close"] = time.perf_counter() - t0
        t["total"] = sum(t.values())
        t["engine"] = ev.seconds
        t["awards"] = len(closed.awards)
        t["eligible"] = res.counts.get("eligible", 0)
    finally:
        db.dispose()
        if cleanup:
            cleanup()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="number of applications")
    ap.add_argument("--stores", default="sqlite,postgres")
    args = ap.parse_args()

    from store.windows import get_evaluator
    from store_fixtures import make_profile, profiles_csv

    t0 = time.perf_counter()
    ev = get_evaluator()
    print(f"规则编译 {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    data = profiles_csv([make_profile(i) for i in range(args.n)])
    print(f"生成 {args.n} 份合成申报（CSV {len(data) / 1e6:.1f} MB）{time.perf_counter() - t0:.1f} s（不计入）")
    for kind in args.stores.split(","):
        t = run(kind, args.n, data, ev)
        print(f"[{kind}] 开设 {t['open']:.2f} s | 导入 {t['import']:.1f} s | 评估 {t['evaluate']:.1f} s | "
              f"（其中规则引擎 {t['engine']:.1f} s，存储 {t['evaluate'] - t['engine']:.1f} s）| 关闭 {t['close']:.1f} s | 合计 {t['total']:.1f} s = {args.n / t['total']:.0f} 件/秒 "
              f"（兑现 {t['awards']} 项）| 峰值 RSS {peak_rss_mb():.0f} MB")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
