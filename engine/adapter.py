"""The only module that touches durable_rules. A small, safe wrapper over its C engine.

The C engine runs in a child process (`engine.enginehost`), so that a crash inside it costs
one call — an `EngineCrashed` the caller turns into a clean error — never the service or the
batch. The child calls the engine's own entry points (`durable_rules_engine`) rather than the
`durable.lang` host, which starts timer threads (PITFALLS 17, 18), runs actions as Python
promises that swallow exceptions (12, 13) and raises on unhandled facts (3, 16). Here:

* every call holds one process-wide lock — concurrent calls segfault the engine (1);
* one fresh sid per call, `delete_state` in `finally` — at most one live sid (2, 19);
* every fact carries a unique `yid` within its sid, so no fact is ever "observed" twice (4);
* facts, never events: every matching rule sees every fact (5);
* facts per call are bounded (`MAX_FACTS`) and tested at that bound (17);
* rules carry `cap`, so one action delivers every matching fact; no Python action code runs,
  so nothing can be swallowed or run later on a timer (12, 18);
* a catch-all rule proves that every asserted fact was processed; a fact id reported twice
  by an OR rule is recorded once (10);
* numbers are whole numbers within ±2^53, written as plain digits: the engine segfaults on
  exponent spellings such as `1e-05` or `2e+16` and misorders integers beyond 64 bits
  (tests/test_adapter.py); the compiler encodes every number in fixed point, and this module
  refuses anything else before it reaches the engine;
* a call that takes longer than `CALL_TIMEOUT` (a hang, PITFALLS 6) kills the child;
* a rule's results are read as sets of fact ids; the caller decides what they mean.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

MAX_FACTS = 2000          # facts per sid; tests/test_adapter.py runs this bound
CAP = 100000              # > MAX_FACTS: one action carries every match of a rule
CATCH_ALL = "all"
SAFE_INT = 2 ** 53        # |n| < SAFE_INT: exact in every number path of the engine
CALL_TIMEOUT = 60.0       # seconds; a call this long is a hang
RECYCLE_CALLS = 100_000   # the engine leaks ~110 bytes per session (PITFALLS 19): a fresh
                          # process after this many calls keeps that under 11 MB

_LOCK = threading.Lock()
_SIDS = itertools.count(1)
_NAMES = itertools.count(1)
NEVER = {"$lt": {"yid": -1}}      # a rule body no fact matches (yid ≥ 0)


class EngineError(RuntimeError):
    """durable_rules reported or did something the adapter cannot trust."""


class EngineCrashed(EngineError):
    """The engine's process died (or hung) during a call; the next call starts a new one."""


class EngineHung(EngineCrashed):
    """The engine did not answer within CALL_TIMEOUT; its process was killed."""


def _check_value(v: Any, where: str) -> None:
    if v is None or isinstance(v, str):
        return
    if type(v) is not int or not -SAFE_INT < v < SAFE_INT:
        raise EngineError(f"{where}: {type(v).__name__} {str(v)[:40]} is not a value the engine "
                          "handles safely (whole numbers within ±2^53, text or null)")


def _check_rule(body: Any, where: str) -> None:
    if isinstance(body, dict):
        for k, v in body.items():
            _check_rule(v, f"{where}.{k}")
    elif isinstance(body, list):
        for i, v in enumerate(body):
            _check_rule(v, f"{where}[{i}]")
    else:
        _check_value(body, where)


class _Host:
    """The engine's child process and the rulesets registered in it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.enginehost"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True, cwd=os.path.dirname(os.path.dirname(__file__)))
        self.out = Connection(os.dup(self.proc.stdin.fileno()), readable=False)   # type: ignore[union-attr]
        self.inp = Connection(os.dup(self.proc.stdout.fileno()), writable=False)  # type: ignore[union-attr]
        self.proc.stdin.close()    # type: ignore[union-attr]
        self.proc.stdout.close()   # type: ignore[union-attr]
        self.pid = os.getpid()
        self.defined: set[str] = set()
        self.calls = 0

    def call(self, msg: tuple) -> Any:
        try:
            self.out.send(msg)
            if not self.inp.poll(CALL_TIMEOUT):
                self.proc.kill()
                raise EngineHung(f"durable_rules 在 {CALL_TIMEOUT:.0f} 秒内没有返回，已终止引擎进程")
            status, value = self.inp.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self.proc.wait(timeout=10)
            raise EngineCrashed(f"durable_rules 引擎进程异常退出（退出码 {code}）") from None
        if status != "ok":
            raise EngineError(f"durable_rules: {value}")
        return value

    def close(self) -> None:
        for c in (self.out, self.inp):
            try:
                c.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


_host: _Host | None = None


def _current_host() -> _Host:
    """The engine process of this process (a forked child starts its own)."""
    global _host
    if _host is not None and _host.pid == os.getpid() and _host.calls >= RECYCLE_CALLS:
        _restart()
    if _host is None or _host.pid != os.getpid() or _host.proc.poll() is not None:
        _host = _Host()
    _host.calls += 1
    return _host


def engine_pid() -> int | None:
    """The engine process of this process, if one runs (for tests and the health check)."""
    return _host.proc.pid if _host is not None and _host.pid == os.getpid() else None


def _restart() -> None:
    global _host
    if _host is not None and _host.pid == os.getpid():
        _host.close()
    _host = None


class CompiledRuleset:
    """A ruleset registered with the C engine. Rulesets cannot be unregistered (jruizgit/rules
    #121), so callers cache them and create a bounded number."""

    def __init__(self, rules: dict[str, Any]):
        if CATCH_ALL in rules:
            raise ValueError(f"rule name {CATCH_ALL!r} is reserved")
        body = {name: {"all": [{"m": expr}], "cap": CAP} for name, expr in rules.items()}
        body[CATCH_ALL] = {"all": [{"m": {"$gte": {"yid": 0}}}], "cap": CAP}
        _check_rule(body, "rule")
        self.name = f"yagu{next(_NAMES)}"
        self.rule_names = tuple(rules)
        self._body = json.dumps(body)
        with _LOCK:
            self._define(_current_host())

    def _define(self, host: _Host) -> None:
        if self.name not in host.defined:
            try:
                host.call(("define", self.name, self._body))
            except EngineCrashed:
                _restart()
                raise
            host.defined.add(self.name)

    def run(self, facts: list[dict[str, Any]]) -> dict[str, set[int]]:
        """Assert `facts` (dicts of scalars) in one fresh sid; return rule name → fact indexes."""
        if not facts:
            return {}
        if len(facts) > MAX_FACTS:
            raise ValueError(f"at most {MAX_FACTS} facts per call, got {len(facts)}")
        for f in facts:
            for k, v in f.items():
                # the common cases inline (a window checks millions of values)
                if not (v is None or type(v) is str or type(v) is int and -SAFE_INT < v < SAFE_INT):
                    _check_value(v, k)
        with _LOCK:
            sid = str(next(_SIDS))
            payload = json.dumps([{"yid": i, "sid": sid, **f} for i, f in enumerate(facts)])
            fired = self._run_payload(payload, sid)
        seen = fired.pop(CATCH_ALL, set())
        if len(seen) != len(facts):
            raise EngineError(f"durable_rules processed {len(seen)} of {len(facts)} facts")
        unknown = set(fired) - set(self.rule_names)
        if unknown:
            raise EngineError(f"durable_rules fired unknown rules {sorted(unknown)}")
        return fired

    def _run_payload(self, payload: str, sid: str) -> dict[str, set[int]]:
        """One call in the engine process (the lock is held). A crash restarts the process and
        the call is tried once more in the fresh one: the old process may have died before this
        call (killed from outside, e.g. by the OOM killer, while `poll()` still saw it alive).
        A call that kills the fresh process too, or hangs, is reported."""
        for attempt in (1, 2):
            host = _current_host()
            try:
                self._define(host)
                fired = host.call(("run", self.name, payload, sid))
                return {name: set(ids) for name, ids in fired.items()}
            except EngineCrashed as exc:
                _restart()
                if attempt == 2 or isinstance(exc, EngineHung):
                    raise
        raise AssertionError("unreachable")
