"""The durable_rules adapter against the measured pitfalls (shared/durable-rules/PITFALLS.md).

Every test that drives the C engine has a timeout: a hang (PITFALLS 6) fails instead of
blocking CI. Crash-prone scenarios run in a subprocess so a segfault is a failure, not a
dead test runner.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from engine.adapter import MAX_FACTS, CompiledRuleset, EngineError

ROOT = Path(__file__).resolve().parent.parent


def run_isolated(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, timeout=timeout,
                          capture_output=True, text=True)


@pytest.mark.timeout(30)
def test_comparisons_never_match_null_or_missing_properties():
    # PITFALLS 6/7: the compiler relies on a null or absent property matching no comparison,
    # including `$neq`, so "unknown" is simply "neither the pass nor the fail rule fired".
    rs = CompiledRuleset({"eq": {"x": 5}, "neq": {"$neq": {"x": 5}}, "lt": {"$lt": {"x": 5}},
                          "gte": {"$gte": {"x": 5}}})
    fired = rs.run([{"x": 5}, {"x": None}, {}, {"x": 4}])
    assert fired["eq"] == {0} and fired["gte"] == {0}
    assert fired["neq"] == {3} and fired["lt"] == {3}


@pytest.mark.timeout(30)
def test_or_rule_firing_once_per_branch_is_recorded_once():
    # PITFALLS 10: an OR whose two branches are true reports the fact twice.
    rs = CompiledRuleset({"or": {"$or": [{"a": 1}, {"b": 1}]}})
    assert rs.run([{"a": 1, "b": 1}, {"a": 0, "b": 0}]) == {"or": {0}}


@pytest.mark.timeout(30)
def test_identical_facts_are_not_rejected_as_observed():
    # PITFALLS 4: identical facts would raise MessageObservedException; the adapter ids them.
    rs = CompiledRuleset({"p": {"x": 1}})
    assert rs.run([{"x": 1}] * 50) == {"p": set(range(50))}


@pytest.mark.timeout(30)
def test_facts_that_match_no_rule_are_not_an_error():
    # PITFALLS 3/16: unmatched facts raise in the Python host; here they are simply unmatched,
    # and the catch-all rule still proves they were processed.
    rs = CompiledRuleset({"p": {"x": 1}})
    assert rs.run([{"x": 2}, {"x": 1}, {"y": 3}]) == {"p": {1}}


@pytest.mark.timeout(60)
def test_more_than_1024_sequential_calls_leave_no_live_sessions():
    # PITFALLS 2: MemoryError at the 1,024th live sid unless every state is deleted.
    rs = CompiledRuleset({"p": {"$gte": {"x": 0}}})
    for i in range(1500):
        assert rs.run([{"x": i}]) == {"p": {0}}


@pytest.mark.timeout(60)
def test_the_per_call_fact_bound_itself_runs_and_is_enforced():
    # PITFALLS 17: big sessions segfaulted with the host's timers; the adapter has none and
    # bounds facts per sid. Run exactly at the bound, and refuse beyond it.
    rs = CompiledRuleset({"even": {"$or": [{"x": 0}, {"x": 2}]}, "odd": {"x": 1}})
    fired = rs.run([{"x": i % 3} for i in range(MAX_FACTS)])
    assert fired["odd"] == {i for i in range(MAX_FACTS) if i % 3 == 1}
    assert fired["even"] == {i for i in range(MAX_FACTS) if i % 3 != 1}
    with pytest.raises(ValueError):
        rs.run([{"x": 0}] * (MAX_FACTS + 1))


@pytest.mark.timeout(120)
def test_concurrent_evaluations_from_many_threads_are_safe_and_correct(engine_eval):
    # PITFALLS 1: unserialized calls from threads segfault. Run in a subprocess so a crash is
    # reported as a failure; compare every thread's result with a sequential one.
    proc = run_isolated("""
        import json, threading, sys
        sys.path.insert(0, "tests")
        from datetime import date
        from engine import Evaluator, load_rulebook
        from profiles import profiles
        from hypothesis import given, settings
        ev = Evaluator(load_rulebook())
        ps = [profiles().example() for _ in range(40)]
        want = [json.dumps(ev.evaluate(p, date(2026, 3, 31)).model_dump()) for p in ps]
        bad = []
        def worker(k):
            for i in range(len(ps)):
                j = (i + k) % len(ps)
                if json.dumps(ev.evaluate(ps[j], date(2026, 3, 31)).model_dump()) != want[j]:
                    bad.append(j)
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print("BAD", len(bad))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "BAD 0" in proc.stdout


@pytest.mark.timeout(60)
def test_no_engine_thread_runs_actions_outside_a_call():
    # PITFALLS 18: the Python host's timer threads ran actions late, after deletion. The
    # adapter never creates a Host: no durable_rules thread exists before or after calls.
    before = {t.name for t in threading.enumerate()}
    rs = CompiledRuleset({"p": {"x": 1}})
    for _ in range(20):
        rs.run([{"x": 1}])
    after = {t.name for t in threading.enumerate()}
    assert after == before


@pytest.mark.timeout(30)
def test_engine_inconsistency_is_raised_not_hidden(book):
    # A criterion whose pass and fail rules both fire would be an engine or compiler bug:
    # the evaluator refuses to answer rather than pick one.
    from engine.evaluator import _outcomes
    with pytest.raises(EngineError):
        _outcomes({"p0": {0}, "f0": {0}}, [(0, None)], 1)


CRASHING_SPELLINGS = ["1e-05", "2e+16", "1e16", "1e308", "1e-07", "1e5", "0e0"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spelling", CRASHING_SPELLINGS)
def test_exponent_spellings_without_a_point_segfault_the_c_engine(spelling):
    # The measured pitfall itself (kept so a new durable_rules release can be checked): a JSON
    # number with an exponent and no decimal point kills the process inside the C engine.
    proc = run_isolated(f"""
        import durable_rules_engine as d, json
        h = d.create_ruleset("p", json.dumps({{"r": {{"all": [{{"m": {{"$lt": {{"x": 5}}}}}}]}}}}))
        code, state = d.assert_facts(h, '[{{"sid": "1", "x": {spelling}}}]')
        d.start_action_for_state(h, state)     # the matched fact is read back: crash
        print("SURVIVED")
    """, timeout=60)
    assert proc.returncode == -11 and "SURVIVED" not in proc.stdout


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", [1e-05, 2e16, 0.5, 2 ** 53, -(2 ** 53), 2 ** 63, 10 ** 30, True])
def test_the_adapter_hands_the_engine_only_safe_whole_numbers(value):
    # Floats (any spelling) and integers beyond ±2^53 never reach the engine: the compiler
    # encodes numbers in fixed point, and the adapter refuses anything else.
    rs = CompiledRuleset({"p": {"$lt": {"x": 5}}})
    with pytest.raises(EngineError, match="safely"):
        rs.run([{"x": value}])
    with pytest.raises(EngineError, match="safely"):
        CompiledRuleset({"p": {"$lt": {"x": value}}})
    assert rs.run([{"x": 2 ** 53 - 1}, {"x": -(2 ** 53) + 1}]) == {"p": {1}}


@pytest.mark.timeout(60)
def test_a_crash_in_the_c_engine_costs_one_call_not_the_process():
    from engine.adapter import EngineCrashed, engine_pid
    rs = CompiledRuleset({"p": {"$lt": {"x": 5}}})
    assert rs.run([{"x": 1}]) == {"p": {0}}
    before = engine_pid()
    with pytest.raises(EngineCrashed):
        rs._run_payload('[{"yid": 0, "sid": "s", "x": 1e-05}]', "s")   # bypasses the guard
    assert rs.run([{"x": 1}, {"x": 9}]) == {"p": {0}}     # a fresh engine, rules re-registered
    assert engine_pid() not in (None, before)


@pytest.mark.timeout(300)
def test_memory_stays_flat_over_many_evaluations():
    # PITFALLS 19 (leak per session) and jruizgit/rules #137: RSS after 30,000 evaluations
    # must not keep growing after warm-up.
    proc = run_isolated("""
        import sys, gc
        from datetime import date
        import random
        from engine import Evaluator, load_rulebook
        from engine.profile import parse_profile
        import importlib.util
        spec = importlib.util.spec_from_file_location("b", "bench/engine.py")
        b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
        rnd = random.Random(1)
        ev = Evaluator(load_rulebook())
        ps = [parse_profile(b.synthetic(i, rnd), ev.registry) for i in range(500)]
        from engine.adapter import engine_pid
        def rss():   # this process and the engine's
            return sum(int(open(f"/proc/{pid}/statm").read().split()[1]) * 4096 / 2**20
                       for pid in ("self", engine_pid()))
        for _ in range(10): ev.evaluate_many(ps, date(2026, 3, 31), awarded=set())
        gc.collect(); r0 = rss()
        for _ in range(60): ev.evaluate_many(ps, date(2026, 3, 31), awarded=set())
        gc.collect(); print("GROWTH", rss() - r0)
    """, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth = float(proc.stdout.split("GROWTH")[1])
    assert growth < 20, f"RSS grew {growth:.1f} MB over 30,000 evaluations"
