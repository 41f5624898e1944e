"""Benchmark: notices per second as HTML and as PDF, and KiB per PDF, for every notice kind.

    .venv/bin/python bench/notices.py [--n 100] [--repeat 3] [--kinds one_time,award,...]

No database: synthetic enterprises are judged by the engine (the reference interpreter, same
verdicts) for the 2026 H1 window, and each kind's notice is built from those results the way
the service builds it. The one-time notice is the realistic heavy case: four certificates per
enterprise (one in order, an imported one, one obtained before the coverage period, a class I
filing) and, for every third enterprise, most enterprise facts unknown, so the notices list
failed and undecidable criteria, missing facts and materials over three to four pages.

Per kind it prints HTML docs/s (one process), PDF docs/s with 1 and 2 worker processes (each
warmed before the clock starts, the way a server or the bundle job reuses its engine) and
the CPU milliseconds per PDF (which other load on the machine does not change), the average
KiB and pages per PDF, and how many times longer a PDF takes than its HTML.
Target (issue 14): one-time notices ≥ 50 PDFs/s on 2 cores and ≤ 120 KiB each.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pypdf import PdfReader  # noqa: E402

from engine import Evaluator, load_rulebook  # noqa: E402
from engine.uscc import make_uscc  # noqa: E402
from notices.pdf import typst_to_pdf  # noqa: E402
from notices.render import NoticeRenderer  # noqa: E402
from notices.settings import load_settings  # noqa: E402
from notices.view import NoticeInput, NoticeNotApplicable, build, from_response  # noqa: E402
from store.notices import KINDS  # noqa: E402

AS_OF = dt.date(2026, 3, 31)           # the 2026 H1 window's judging day
ISSUED = dt.date(2026, 4, 1)
SETTINGS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "notice-settings.yaml"


def profile(i: int) -> dict:
    """An enterprise whose one-time notice has every part: failed and unknown criteria (some
    from unknown enterprise facts), missing facts and materials, on several certificates."""
    known = i % 3 != 0                  # every third one leaves most enterprise facts blank
    regs = [
        {"certificate_no": f"川械注准2025217{i % 10000:04d}", "product_name": "隐形矫治器", "origin": "self_developed",
         "obtained_on": "2025-11-15", "innovative": False},                        # class unknown
        {"certificate_no": f"国械注进2025317{i % 10000:04d}", "product_name": "种植体", "origin": "introduced",
         "obtained_on": "2026-01-10", "device_class": "III"},                      # imported: fails
        {"certificate_no": f"川械注准2024217{(i + 1) % 10000:04d}", "product_name": "义齿基托树脂",
         "origin": "introduced", "obtained_on": "2024-06-01", "device_class": "II"},  # before coverage
        {"certificate_no": f"川资械备2025{i % 10000:04d}号", "product_name": "牙科手术器械",
         "origin": "self_developed", "obtained_on": "2025-12-01", "device_class": "I"},  # a filing
    ]
    p = {"uscc": make_uscc(f"91512000MA{i:07d}"), "name": f"资阳牙谷测试口腔医疗器械有限公司{i:04d}",
         "in_park": True, "industry_code": "C3589", "device_registrations": regs,
         "violations": [] if known else None}
    if known:
        p.update({"tax_collection": "audit", "employees_avg": 120, "total_assets_avg_cny": 30_000_000.0,
                  "taxable_income_cny": 1_800_000.0, "restricted_industry": False, "tax_credit_rating": "B",
                  "on_serious_dishonest_list": False, "rd_excluded_industry": False,
                  "rd_expense_cny": 2_400_000.0, "hnte_certificate": {"number": "GR202451000123",
                                                                       "issued_on": "2024-12-06"},
                  "western_encouraged_share": 0.72})
    return p


def eligible_profile(i: int) -> dict:
    """An enterprise with two certificates that qualify (the award notice)."""
    p = profile(i)
    p.update({"on_serious_dishonest_list": False, "violations": [], "tax_credit_rating": "A"})
    p["device_registrations"] = [
        {"certificate_no": f"川械注准2026217{(i + k) % 10000:04d}", "product_name": f"口腔扫描仪{k}",
         "origin": "self_developed", "obtained_on": "2026-01-15", "device_class": "II", "innovative": k == 1}
        for k in range(2)]
    return p


def inputs(n: int, kinds: list[str]) -> dict[str, list[NoticeInput]]:
    ev = Evaluator(load_rulebook(), "interpreter")
    settings = load_settings(SETTINGS)
    out: dict[str, list[NoticeInput]] = {k: [] for k in kinds}
    for make in (profile, eligible_profile):
        profiles = [make(i) for i in range(n)]
        for i, (p, resp) in enumerate(zip(profiles, ev.evaluate_many(profiles, AS_OF, awarded=set()))):
            for kind in kinds:
                k = KINDS[kind]
                extra = {"issued_on": ISSUED, "application_id": f"A{i:07d}",
                         "window": {"id": "2026-H1", "label": "2026年上半年集中申报"}}
                if k.char:
                    extra["number"] = f"资高新惠{k.char}〔2026〕第{i + 1:04d}号"
                if kind == "one_time":
                    extra["correction_due"] = dt.date(2026, 4, 9)
                n_in = from_response(k, ev, p, resp, settings, **extra)
                try:
                    build(n_in)
                except NoticeNotApplicable:
                    continue
                if len(out[kind]) < n:
                    out[kind].append(n_in)
    return out


# --- worker processes: spawned (a process that ran Typst cannot fork a working child), each
# rebuilding the same inputs and warming its compiler before the clock starts -------------------
_JOBS: list[NoticeInput] = []
_renderer: NoticeRenderer | None = None


def _start(n: int, kind: str) -> None:
    global _JOBS, _renderer
    _JOBS, _renderer = inputs(n, [kind])[kind], NoticeRenderer()


def _pdf(i: int) -> float:
    """CPU seconds of one PDF (this process's threads: Typst lays out in parallel too)."""
    t = time.process_time()
    pdf_of(_renderer, _JOBS[i % len(_JOBS)])
    return time.process_time() - t


def pdf_of(renderer: NoticeRenderer, n: NoticeInput) -> bytes:
    return typst_to_pdf(renderer.render_typst(n))


def pdf_rate(n: int, kind: str, count: int, procs: int) -> tuple[float, float]:
    """(PDFs per second, CPU ms per PDF) with `procs` worker processes."""
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start, initargs=(n, kind)) as pool:
        list(pool.map(_pdf, range(procs * 4)))           # every worker started and warm
        t = time.perf_counter()
        cpu = sum(pool.map(_pdf, range(count), chunksize=4))
        return count / (time.perf_counter() - t), cpu / count * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="notices per kind")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--repeat", type=int, default=3, help="PDF passes over the notices")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    t = time.perf_counter()
    docs = inputs(args.n, kinds)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; inputs built in "
          f"{time.perf_counter() - t:.1f} s")
    renderer = NoticeRenderer()
    for kind in kinds:
        batch = docs[kind]
        if not batch:
            print(f"{kind}: no notices")
            continue
        for n in batch[:3]:
            renderer.render_html(n)                                     # templates compiled
        t = time.perf_counter()
        for _ in range(5):
            for n in batch:
                renderer.render_html(n)
        html_rate = 5 * len(batch) / (time.perf_counter() - t)
        sample = [pdf_of(renderer, n) for n in batch[:5]]
        kib = sum(map(len, sample)) / len(sample) / 1024
        pages = sum(len(PdfReader(io.BytesIO(b)).pages) for b in sample) / len(sample)
        count = len(batch) * args.repeat
        (one, _), (two, cpu_ms) = pdf_rate(args.n, kind, count, 1), pdf_rate(args.n, kind, count, 2)
        print(f"{KINDS[kind].title}（{kind}，{len(batch)} 份）: HTML {html_rate:,.0f} docs/s | "
              f"PDF {one:.1f} docs/s (1 process), {two:.1f} docs/s (2 processes), {cpu_ms:.0f} ms CPU each | "
              f"{kib:.0f} KiB, {pages:.1f} pages per PDF | PDF/HTML time {html_rate / two:.0f}× (2 processes)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (docs/s count only on an idle machine; "
          "CPU ms do not depend on other load)")


if __name__ == "__main__":
    main()
