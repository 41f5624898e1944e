"""The only module that touches durable_rules. A small, safe wrapper over its C engine.

It calls the engine's own entry points (`durable_rules_engine`) rather than the
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
* a rule's results are read as sets of fact ids; the caller decides what they mean.
"""
from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any

import durable_rules_engine as _dre

MAX_FACTS = 2000          # facts per sid; tests/test_adapter.py runs this bound
CAP = 100000              # > MAX_FACTS: one action carries every match of a rule
CATCH_ALL = "all"

_LOCK = threading.Lock()
_SIDS = itertools.count(1)
_NAMES = itertools.count(1)
_ID = re.compile(r'"yid": (\d+)')
NEVER = {"$lt": {"yid": -1}}      # a rule body no fact matches (yid ≥ 0)


class EngineError(RuntimeError):
    """durable_rules reported or did something the adapter cannot trust."""


class CompiledRuleset:
    """A ruleset registered with the C engine. Rulesets cannot be unregistered (jruizgit/rules
    #121), so callers cache them and create a bounded number."""

    def __init__(self, rules: dict[str, Any]):
        if CATCH_ALL in rules:
            raise ValueError(f"rule name {CATCH_ALL!r} is reserved")
        body = {name: {"all": [{"m": expr}], "cap": CAP} for name, expr in rules.items()}
        body[CATCH_ALL] = {"all": [{"m": {"$gte": {"yid": 0}}}], "cap": CAP}
        self.name = f"yagu{next(_NAMES)}"
        self.rule_names = tuple(rules)
        with _LOCK:
            self._handle = _dre.create_ruleset(self.name, json.dumps(body))

    def run(self, facts: list[dict[str, Any]]) -> dict[str, set[int]]:
        """Assert `facts` (dicts of scalars) in one fresh sid; return rule name → fact indexes."""
        if not facts:
            return {}
        if len(facts) > MAX_FACTS:
            raise ValueError(f"at most {MAX_FACTS} facts per call, got {len(facts)}")
        with _LOCK:
            sid = str(next(_SIDS))
            payload = json.dumps([{"yid": i, "sid": sid, **f} for i, f in enumerate(facts)])
            fired: dict[str, set[int]] = {}
            state = None
            try:
                code, state = _dre.assert_facts(self._handle, payload)
                if code not in (0, 1):      # 1 = some fact matched no rule: not an error (3)
                    raise EngineError(f"durable_rules assert_facts returned code {code}")
                result = _dre.start_action_for_state(self._handle, state)
                message = result[1] if result else None
                while message:
                    name = message[2:message.index('"', 2)]
                    fired.setdefault(name, set()).update(int(x) for x in _ID.findall(message))
                    message = _dre.complete_and_start_action(self._handle, state)
            finally:
                _dre.delete_state(self._handle, sid)
        seen = fired.pop(CATCH_ALL, set())
        if len(seen) != len(facts):
            raise EngineError(f"durable_rules processed {len(seen)} of {len(facts)} facts")
        unknown = set(fired) - set(self.rule_names)
        if unknown:
            raise EngineError(f"durable_rules fired unknown rules {sorted(unknown)}")
        return fired

