"""Benchmark of a whole window: open → import (CSV) → evaluate → close, on SQLite and PostgreSQL.

    .venv/bin/python bench/batch.py                      # 100,000 synthetic applications, both stores
    .venv/bin/python bench/batch.py --n 10000 --stores sqlite --workers 1,2

Prints, per store (and per worker count): seconds per phase, applications/second for the
whole pipeline, engine time inside the evaluation (summed over worker processes), peak RSS of
this process and of the largest worker, and the ratio to a baseline measured in the same run:
the engine alone (one process, `Evaluator.decide_many` — what a window stores — in batches of
500 on already parsed profiles, the garbage collector set as for bulk work, no serialisation,
no database) on the same synthetic profiles.
Then replays every stored decision of the last run (rate, differences) and reports the
database's bytes per decision; with several worker counts, the evaluation's scaling ratio.
Targets (issue 12, 2-core machine, 100,000 applications): open → import → evaluate → close
≤ 30 s on SQLite and ≤ 40 s on PostgreSQL; ≤ 150 MB of database; peak RSS of this process
≤ 500 MB. "close" here is 公示 then close, on the days the window's calendar allows.
"""
from __future__ import annotations

import argparse
from datetime import timedelta
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
    from store.collector import bulk_work

    parsed = [parse_profile(p, ev.registry) for p in profiles]
    ev.decide_many(parsed[:50], as_of=d["as_of"], window=ctx, awarded=set())  # warm the compile cache
    with bulk_work():       # the collector as a window's workers run it
        t0 = time.perf_counter()
        for i in range(0, len(parsed), 500):
            ev.decide_many(parsed[i:i + 500], as_of=d["as_of"], window=ctx, awarded=set())
        return len(parsed) / (time.perf_counter() - t0)


def _in_child(fn, *args):
    """fn(*args) in a fresh process (spawned: nothing inherited)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def _prepare(n: int, baseline_n: int) -> tuple[bytes, float, float]:
    """(the import file of n synthetic applications, the engine-alone baseline rate, seconds)."""
    from store import rulesets
    from store_fixtures import make_profile, profiles_csv

    t0 = time.perf_counter()
    profiles = [make_profile(i) for i in range(n)]
    data = profiles_csv(profiles)
    gen = time.perf_counter() - t0
    return data, engine_baseline(profiles[:min(baseline_n, n)], rulesets.current()), gen


def run(kind: str, n: int, data: bytes, workers: int, replay_too: bool = False) -> dict:
    import sqlalchemy as sa

    from store.db import Database
    from store.applications import import_applications
    from store.awards import close_window, publish
    from store.evaluation import evaluate_window
    from store.replay import replay
    from store.windows import open_window
    from store_fixtures import AFTER_H1, H1, IN_H1, PG_URL, pg_schema_url

    close_day = AFTER_H1 + timedelta(days=14)   # after the default 公示 period

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

    from store import rulesets

    rulesets.current()              # compile the rules before the clock starts
    db = Database(url)
    db.upgrade()
    t: dict = {}
    try:
        t0 = time.perf_counter()
        open_window(db, "2026-H1", **H1)
        t["open"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = import_applications(db, "2026-H1", data, "bench.csv", today=IN_H1)
        t["import"] = time.perf_counter() - t0
        assert rep.created == n, rep
        stats: dict = {}
        t["rss_import"] = peak_rss_mb()
        t0 = time.perf_counter()
        res = evaluate_window(db, "2026-H1", workers=workers, stats=stats)
        t["evaluate"] = time.perf_counter() - t0
        t["rss_evaluate"] = peak_rss_mb()
        assert res.evaluated == n
        t0 = time.perf_counter()
        publish(db, "2026-H1", today=AFTER_H1)
        closed = close_window(db, "2026-H1", today=close_day, actor="bench")
        t["close"] = time.perf_counter() - t0
        t["rss"] = peak_rss_mb()
        if replay_too:
            t0 = time.perf_counter()
            rp = replay(db, "2026-H1")
            t["replay"] = (time.perf_counter() - t0, rp)
            t["rss_replay"] = peak_rss_mb()
        t["total"] = t["open"] + t["import"] + t["evaluate"] + t["close"]
        t["engine"] = stats["engine_seconds"]
        t["stats"] = stats
        t["workers"] = stats["workers"]
        t["worker_rss"] = stats["worker_peak_rss_mb"]
        t["awards"] = len(closed.awards)
        if kind != "sqlite":
            with db.engine.connect() as c:
                t["db_mb"] = float(c.execute(sa.text(
                    "select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n "
                    "on n.oid = c.relnamespace where n.nspname = :s and c.relkind = 'r'"), {"s": schema}).scalar()) / 1e6
    finally:
        db.dispose()
        if kind == "sqlite" and "close" in t:     # the write-ahead log folded in first: it is not data
            import sqlite3

            with sqlite3.connect(f"{tmp}/bench.db") as c:
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            t["db_mb"] = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
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
    ap.add_argument("--no-replay", dest="replay", action="store_false",
                    help="skip replaying the last run's decisions")
    args = ap.parse_args()

    # Each phase runs in a fresh process, so the peak RSS printed is that run's own (the
    # synthetic data and the baseline's parsed profiles are made in another one).
    data, base, gen_s = _in_child(_prepare, args.n, args.baseline_n)
    base_n = min(args.baseline_n, args.n)
    print(f"生成 {args.n} 份合成申报（CSV {len(data) / 1e6:.1f} MB）{gen_s:.1f} s（不计入）")
    print(f"基线：规则引擎单进程 {base:.0f} 件/秒（{base_n} 份同一批画像，已解析，不含序列化与数据库）")
    sys.stdout.flush()
    counts = [int(x) for x in args.workers.split(",")]
    for kind in args.stores.split(","):
        evaluate_s: dict[int, float] = {}
        for workers in counts:
            t = _in_child(run, kind, args.n, data, workers, args.replay and workers == counts[-1])
            evaluate_s[t["workers"]] = t["evaluate"]
            rate = args.n / t["total"]
            print(f"[{kind}, {t['workers']} 个评估进程] 开设 {t['open']:.2f} s | 导入 {t['import']:.1f} s | "
                  f"评估 {t['evaluate']:.1f} s（规则引擎累计 {t['engine']:.1f} s）| 关闭 {t['close']:.1f} s | "
                  f"合计 {t['total']:.1f} s = {rate:.0f} 件/秒，为基线的 {rate / base:.2f} 倍"
                  f"（兑现 {t['awards']} 项，库 {t['db_mb']:.0f} MB）| 峰值 RSS 主进程 {t['rss']:.0f} MB"
                  f"（导入后 {t['rss_import']:.0f} MB，评估后 {t['rss_evaluate']:.0f} MB）"
                  + (f"，每个评估进程 ≤ {t['worker_rss']:.0f} MB" if t["workers"] > 1 else ""))
            st = t["stats"]
            print(f"    评估明细：解析画像 {st['parse_seconds']:.1f} s + 规则引擎 {st['engine_seconds']:.1f} s"
                  f" + 序列化压缩 {st['encode_seconds']:.1f} s（评估进程内，各进程累计）；主进程 读画像 "
                  f"{st['read_seconds']:.1f} s，写结论 {st['write_seconds']:.1f} s，循环合计 {st['loop_seconds']:.1f} s")
            print(f"    数据库 {t['db_mb']:.0f} MB = 每件申报 {t['db_mb'] * 1e6 / args.n:.0f} 字节（含画像、申报、判定、台账、日志）")
            if "replay" in t:
                secs, rp = t["replay"]
                print(f"    重放核验：{rp.evaluations} 家企业的 {rp.decisions} 项判定 {secs:.1f} s = {rp.evaluations / secs:.0f} 家/秒，"
                      f"一致 {rp.identical} 项，差异 {len(rp.differences)} 项，未存档规则 {rp.not_archived} 件；"
                      f"主进程峰值 RSS {t['rss_replay']:.0f} MB")
                print(f"    数据库每项判定 {t['db_mb'] * 1e6 / rp.decisions:.0f} 字节（{rp.decisions} 项）")
            sys.stdout.flush()
        if len(evaluate_s) > 1:
            one, most = evaluate_s.get(1), max(evaluate_s)
            if one is not None and most > 1:
                print(f"[{kind}] 评估扩展比 {one / evaluate_s[most]:.2f}：1 个评估进程 {one:.1f} s，"
                      f"{most} 个 {evaluate_s[most]:.1f} s")


if __name__ == "__main__":
    main()
