"""Benchmark of a whole window: open → import (CSV) → evaluate → close, on SQLite and PostgreSQL.

    .venv/bin/python bench/batch.py                      # 100,000 synthetic applications, both stores
    .venv/bin/python bench/batch.py --n 10000 --stores sqlite --workers 1,2

Prints, per store (and per worker count): seconds per phase, applications/second for the
whole pipeline, engine time inside the evaluation (summed over worker processes), peak RSS of
this process and of the largest worker, and the ratio to a baseline measured in the same run:
the engine alone (one process, `Evaluator.evaluate_many` in batches of 500 on already parsed
profiles, no serialisation, no database) on the same synthetic profiles.
Targets (2-core machine): whole pipeline ≤ 120 s for 100,000 applications, peak RSS ≤ 1 GB.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def peak_rss_mb() -> float:
    from store.evalworker import peak_rss_mb

    return peak_rss_mb()


def engine_baseline(profiles: list[dict], ev) -> float:
    """Profiles/second of the engine alone, in this process."""
    from datetime import date

    from engine import WindowContext
    from engine.profile import parse_profile

    from store_fixtures import H1

    d = {k: date.fromisoformat(v) for k, v in H1.items()}
    ctx = WindowContext(id="2026-H1", label="bench", opens_on=d["opens_on"], closes_on=d["closes_on"],
                        as_of=d["as_of"], coverage_from=d["coverage_from"], coverage_to=d["coverage_to"])
    parsed = [parse_profile(p, ev.registry) for p in profiles]
    ev.evaluate_many(parsed[:50], as_of=d["as_of"], window=ctx, awarded=set())  # warm the compile cache
    t0 = time.perf_counter()
    for i in range(0, len(parsed), 500):
        ev.evaluate_many(parsed[i:i + 500], as_of=d["as_of"], window=ctx, awarded=set())
    return len(parsed) / (time.perf_counter() - t0)


def run(kind: str, n: int, data: bytes, ev, workers: int) -> dict:
    import sqlalchemy as sa

    from store.db import Database
    from store.intake import import_applications
    from store.windows import close_window, evaluate_window, open_window
    from store_fixtures import H1, PG_URL, pg_schema_url

    if kind == "sqlite":
        tmp = tempfile.mkdtemp(prefix="yagu-bench-")
        url = f"sqlite:///{tmp}/bench.db"

        def cleanup():
            for f in Path(tmp).iterdir():
                f.unlink()
            os.rmdir(tmp)
    else:
        schema = "yagu_bench_" + secrets.token_hex(4)
        admin = sa.create_engine(PG_URL)
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = pg_schema_url(schema)

        def cleanup():
            with admin.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    db = Database(url)
    db.upgrade()
    t: dict = {}
    try:
        t0 = time.perf_counter()
        open_window(db, "2026-H1", **H1)
        t["open"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = import_applications(db, "2026-H1", data, "bench.csv")
        t["import"] = time.perf_counter() - t0
        assert rep.created == n, rep
        stats: dict = {}
        t0 = time.perf_counter()
        res = evaluate_window(db, "2026-H1", evaluator=ev, workers=workers, stats=stats)
        t["evaluate"] = time.perf_counter() - t0
        assert res.evaluated == n
        t0 = time.perf_counter()
        closed = close_window(db, "2026-H1")
        t["close"] = time.perf_counter() - t0
        t["total"] = t["open"] + t["import"] + t["evaluate"] + t["close"]
        t["engine"] = stats["engine_seconds"]
        t["stats"] = stats
        t["workers"] = stats["workers"]
        t["worker_rss"] = stats["worker_peak_rss_mb"]
        t["awards"] = len(closed.awards)
        if kind == "sqlite":
            t["db_mb"] = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
        else:
            with db.engine.connect() as c:
                t["db_mb"] = float(c.execute(sa.text(
                    "select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n "
                    "on n.oid = c.relnamespace where n.nspname = :s and c.relkind = 'r'"), {"s": schema}).scalar()) / 1e6
    finally:
        db.dispose()
        if cleanup:
            cleanup()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="number of applications")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--workers", default=str(os.cpu_count() or 1),
                    help="evaluation processes; a comma-separated list runs each (e.g. 1,2)")
    ap.add_argument("--baseline-n", type=int, default=20_000,
                    help="profiles for the engine-alone baseline (the first N of the same set)")
    args = ap.parse_args()

    from store.windows import get_evaluator
    from store_fixtures import make_profile, profiles_csv

    t0 = time.perf_counter()
    ev = get_evaluator()
    print(f"规则编译 {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    profiles = [make_profile(i) for i in range(args.n)]
    data = profiles_csv(profiles)
    print(f"生成 {args.n} 份合成申报（CSV {len(data) / 1e6:.1f} MB）{time.perf_counter() - t0:.1f} s（不计入）")
    base_n = min(args.baseline_n, args.n)
    base = engine_baseline(profiles[:base_n], ev)
    print(f"基线：规则引擎单进程 {base:.0f} 件/秒（{base_n} 份同一批画像，已解析，不含序列化与数据库）")
    del profiles
    sys.stdout.flush()
    for kind in args.stores.split(","):
        for workers in [int(x) for x in args.workers.split(",")]:
            t = run(kind, args.n, data, ev, workers)
            rate = args.n / t["total"]
            print(f"[{kind}, {t['workers']} 个评估进程] 开设 {t['open']:.2f} s | 导入 {t['import']:.1f} s | "
                  f"评估 {t['evaluate']:.1f} s（规则引擎累计 {t['engine']:.1f} s）| 关闭 {t['close']:.1f} s | "
                  f"合计 {t['total']:.1f} s = {rate:.0f} 件/秒，为基线的 {rate / base:.2f} 倍"
                  f"（兑现 {t['awards']} 项，库 {t['db_mb']:.0f} MB）| 峰值 RSS 本进程 {peak_rss_mb():.0f} MB"
                  + (f"，每个评估进程 ≤ {t['worker_rss']:.0f} MB，合计 ≤ "
                     f"{peak_rss_mb() + t['workers'] * t['worker_rss']:.0f} MB" if t["workers"] > 1 else ""))
            st = t["stats"]
            print(f"    评估明细：解析画像 {st['parse_seconds']:.1f} s + 规则引擎 {st['engine_seconds']:.1f} s"
                  f" + 序列化压缩 {st['encode_seconds']:.1f} s（评估进程内，各进程累计）；主进程 读画像 "
                  f"{st['read_seconds']:.1f} s，写结论 {st['write_seconds']:.1f} s，等待评估进程 {st['wait_seconds']:.1f} s")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
