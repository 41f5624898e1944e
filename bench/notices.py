"""Benchmark: render N notices (default 1,000) from real engine results to HTML and PDF.

    .venv/bin/python bench/notices.py [--n 1000] [--jobs 2]

Profiles are generated (in park or not, with/without certificates, missing facts), evaluated
by the engine, and each enterprise gets the notice its results call for (one-time notice when
anything is missing or failed, otherwise the award notice). Reports documents/second for the
HTML step and for the whole HTML→PDF step, with a progress bar.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click  # noqa: E402

from notices.context import applicable_decisions, load_settings, make_context  # noqa: E402
from notices.render import NoticeRenderer  # noqa: E402

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(i: int) -> str:
    body = f"9151200{i:010d}"[:17]
    s = sum(USCC_CHARS.index(c) * w for c, w in zip(body, WEIGHTS))
    return body + USCC_CHARS[(31 - s % 31) % 31]


def profile(i: int, rnd: random.Random) -> dict:
    maybe = lambda v: v if rnd.random() > 0.25 else None  # noqa: E731 - unknown facts
    regs = [{"certificate_no": f"川械注准2025217{i % 10000:04d}{k}"[:17], "origin": rnd.choice(["self_developed", "introduced"]),
             "obtained_on": maybe(f"2025-{rnd.randint(1, 12):02d}-15"), "product_name": "隐形矫治器"}
            for k in range(rnd.randint(1, 2))]  # [] crashes the engine today (reported)
    return {"uscc": uscc(i), "name": f"资阳测试口腔医疗器械有限公司{i:04d}", "in_park": maybe(rnd.random() > 0.1),
            "industry_code": "C3589", "tax_credit_rating": maybe(rnd.choice("ABMCD")),
            "on_serious_dishonest_list": maybe(False), "employees_avg": maybe(rnd.randint(5, 400)),
            "total_assets_avg_cny": maybe(rnd.randint(1, 80) * 1_000_000),
            "taxable_income_cny": maybe(rnd.randint(-5, 50) * 100_000), "restricted_industry": maybe(False),
            "device_registrations": regs, "violations": []}


def _pdf(html: str) -> int:
    from notices.pdf import html_to_pdf

    return len(html_to_pdf(html))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from engine import Evaluator, load_rulebook

    rnd = random.Random(20260930)
    ev = Evaluator(load_rulebook())
    profiles = [profile(i, rnd) for i in range(args.n)]
    t0 = time.perf_counter()
    responses = ev.evaluate_many(profiles, as_of=dt.date(2026, 6, 30))
    t_eval = time.perf_counter() - t0
    settings = load_settings()
    renderer = NoticeRenderer()
    issued = dt.date(2026, 9, 30)
    t0 = time.perf_counter()
    htmls = []
    kinds: dict[str, int] = {}
    for i, (p, resp) in enumerate(zip(profiles, responses)):
        results = resp.model_dump(mode="json")["results"]
        kind = "one_time" if applicable_decisions("one_time", results) else "award"
        ctx = make_context(kind, {"uscc": p["uscc"], "name": p["name"]}, results, issued, settings=settings,
                           window={"id": "2026-H1", "label": "2026年上半年集中申报"},
                           notice_number=f"资高新惠{'告' if kind == 'one_time' else '兑'}〔2026〕第{i + 1:04d}号")
        htmls.append(renderer.render_html(ctx))
        kinds[kind] = kinds.get(kind, 0) + 1
    t_html = time.perf_counter() - t0

    t0 = time.perf_counter()
    total = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, \
            click.progressbar(length=len(htmls), label="生成 PDF", show_pos=True, show_eta=True) as bar:
        for size in pool.map(_pdf, htmls, chunksize=4):
            total += size
            bar.update(1)
    t_pdf = time.perf_counter() - t0
    print(f"engine: {args.n} enterprises evaluated in {t_eval:.1f} s")
    print(f"kinds: {kinds}")
    print(f"HTML: {len(htmls)} documents in {t_html:.1f} s = {len(htmls) / t_html:.0f} documents/s")
    print(f"PDF ({args.jobs} processes): {len(htmls)} documents in {t_pdf:.1f} s = "
          f"{len(htmls) / t_pdf:.2f} documents/s, average {total / len(htmls) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
