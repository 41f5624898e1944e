"""Engine benchmark: durable_rules path vs the plain-Python interpreter (the reference semantics), same profiles, one process.

    .venv/bin/python bench/engine.py [--n 20000] [--memory 200000] [--batch 500]

Prints profiles/second for both backends on the same synthetic profiles (shipped rules, full
traces), the ratio, and RSS before/after `--memory` durable_rules evaluations.
Targets (issue 2): durable_rules ≥ 2,000 profiles/s, within 10× of the interpreter's time,
RSS growth < 50 MB over 200,000 evaluations.
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Evaluator, load_rulebook  # noqa: E402
from engine.profile import parse_profile  # noqa: E402
from engine.uscc import make_uscc  # noqa: E402

AS_OF = date(2026, 3, 31)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def synthetic(i: int, rnd: random.Random) -> dict:
    """A realistic mix: most fields known, some null, 0–3 certificates, 0–2 violations."""
    def maybe(v, p=0.1):
        return None if rnd.random() < p else v
    regs = [{"certificate_no": rnd.choice(["川械注准{}217{:04d}", "国械注准{}317{:04d}", "国械注进{}317{:04d}",
                                           "川资械备{}{:04d}号"]).format(rnd.randint(2018, 2026), (i * 3 + k) % 10000),
             "origin": maybe(rnd.choice(["self_developed", "introduced"])),
             "obtained_on": maybe(date(2025, rnd.randint(1, 12), rnd.randint(1, 28)).isoformat()),
             "innovative": maybe(rnd.random() < 0.2)} for k in range(rnd.randint(0, 3))]
    return {
        "uscc": make_uscc(f"91512000MA{i:07d}"[:17]), "name": f"资阳测试{i}口腔医疗器械有限公司",
        "in_park": maybe(rnd.random() < 0.9), "industry_code": maybe(rnd.choice(["C3589", "F5174", "M7320"])),
        "tax_collection": maybe(rnd.choice(["audit", "deemed"])),
        "employees_avg": maybe(rnd.randint(1, 600)), "total_assets_avg_cny": maybe(float(rnd.randint(1, 10**8))),
        "taxable_income_cny": maybe(float(rnd.randint(-10**6, 6 * 10**6))),
        "restricted_industry": maybe(rnd.random() < 0.05), "rd_excluded_industry": maybe(rnd.random() < 0.1),
        "rd_expense_cny": maybe(float(rnd.randint(0, 5 * 10**6))),
        "four_industries_sales_share": maybe(round(rnd.random(), 2)),
        "vat_credit_positive_months": maybe(rnd.randint(0, 12)),
        "vat_credit_increase_cny": maybe(float(rnd.randint(0, 2 * 10**6))),
        "tax_credit_rating": maybe(rnd.choice("ABMCD")), "immediate_refund_since_2019_04": maybe(rnd.random() < 0.1),
        "hnte_certificate": rnd.choice([None, False, {"number": "GR2024", "issued_on": "2024-11-01"}]),
        "western_encouraged_share": maybe(round(rnd.random(), 2)),
        "export_refund_class": maybe(rnd.randint(0, 4)), "on_serious_dishonest_list": maybe(rnd.random() < 0.03),
        # facts added in round 2 (legal review): known as often as the others
        "hnte_year_conditions_met": maybe(rnd.random() < 0.8),
        "vat_period_end_credit_cny": maybe(float(rnd.randint(0, 2 * 10**6))),
        "vat_input_composition_ratio": maybe(round(rnd.random(), 2)),
        "thirteen_industries_sales_share": maybe(round(rnd.random(), 2)),
        "vat_enterprise_size": maybe(rnd.choice(["micro", "small", "medium", "large"])),
        "vat_increment_cny": maybe(float(rnd.randint(-10**5, 2 * 10**6))),
        "vat_increment_positive_months": maybe(rnd.randint(0, 12)),
        "device_registrations": maybe(regs),
        "violations": maybe([{"kind": rnd.choice(["tax_evasion", "refund_fraud", "other"]),
                              "decided_on": date(rnd.randint(2020, 2025), rnd.randint(1, 12), 1).isoformat()}
                             for _ in range(rnd.choice([0, 0, 0, 1, 2]))]),
    }


BENEFITS: list[str] | None = None     # --benefits: the same set as an earlier release, to compare


def run(ev: Evaluator, profiles: list, batch: int) -> float:
    t = time.perf_counter()
    for s in range(0, len(profiles), batch):
        ev.evaluate_many(profiles[s:s + batch], AS_OF, awarded=set(), benefits=BENEFITS)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--memory", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--benefits", nargs="*", help="only these benefit ids (e.g. the six of release 0.1.0)")
    args = ap.parse_args()
    global BENEFITS
    BENEFITS = args.benefits or None
    rnd = random.Random(7)
    book = load_rulebook()
    profiles = [parse_profile(synthetic(i, rnd), book.fields) for i in range(args.n)]
    n_crit = sum(len(b.criteria) for b in book.benefits.values() if not BENEFITS or b.id in BENEFITS)
    subjects = sum(1 + len(p.device_registrations or []) for p in profiles)
    print(f"{args.n} profiles ({subjects} subjects), {len(BENEFITS or book.benefits)} benefits, {n_crit} criteria, "
          f"batch {args.batch}, as_of {AS_OF}")
    engine, interp = Evaluator(book, "durable_rules"), Evaluator(book, "interpreter")
    run(engine, profiles[:1000], args.batch)            # compile + warm up
    run(interp, profiles[:1000], args.batch)
    # Two rounds: the 20,000 parsed input profiles held in a list make every full cyclic-GC
    # pass scan them (cost of the bench's own input, not of evaluation); the second round
    # freezes them out of the GC's view, as a worker streaming its input would have them.
    for label in ("inputs visible to the GC", "inputs frozen (gc.freeze)"):
        if label.startswith("inputs frozen"):
            gc.collect()
            gc.freeze()
        t_interp = run(interp, profiles, args.batch)
        t_engine = run(engine, profiles, args.batch)
        print(f"[{label}]")
        print(f"  interpreter (plain Python):{args.n / t_interp:9.0f} profiles/s  ({t_interp:.2f} s)")
        print(f"  durable_rules:          {args.n / t_engine:9.0f} profiles/s  ({t_engine:.2f} s)")
        print(f"  ratio durable_rules/interpreter time: {t_engine / t_interp:.2f}×")
    same = all(a == b for a, b in zip(engine.evaluate_many(profiles[:2000], AS_OF, awarded=set(), benefits=BENEFITS),
                                      interp.evaluate_many(profiles[:2000], AS_OF, awarded=set(), benefits=BENEFITS)))
    print(f"identical results on 2,000 profiles: {same}")
    t_single = time.perf_counter()
    for p in profiles[:2000]:
        engine.evaluate(p, AS_OF, awarded=set(), benefits=BENEFITS)
    t_single = time.perf_counter() - t_single
    print(f"durable_rules, one profile per call (API shape): {2000 / t_single:9.0f} profiles/s")

    if args.memory:
        gc.collect()
        before = rss_mb()
        done, t = 0, time.perf_counter()
        while done < args.memory:
            chunk = profiles[: min(args.batch, args.memory - done)]
            engine.evaluate_many(chunk, AS_OF, awarded=set(), benefits=BENEFITS)
            done += len(chunk)
        gc.collect()
        after = rss_mb()
        print(f"RSS over {args.memory} durable_rules evaluations: {before:.1f} MB → {after:.1f} MB "
              f"(growth {after - before:+.1f} MB, {args.memory / (time.perf_counter() - t):.0f} profiles/s)")


if __name__ == "__main__":
    main()
