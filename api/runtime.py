"""What the routes need at run time: the evaluator (compiled once) and the store handle."""
from __future__ import annotations

import threading
import time
from datetime import date
from typing import Any

from api.errors import ApiError
from api.settings import Settings


LEDGER_TTL = 2.0   # seconds


class Runtime:
    def __init__(self, settings: Settings, evaluator: Any = None):
        self.settings = settings
        self._evaluator = evaluator
        self._lock = threading.Lock()
        self._store = None
        self._benefit_ids = None
        self._ledger: frozenset[str] | None = None
        self._ledger_at = float("-inf")

    @property
    def evaluator(self):
        # Compiling the rulebook is slow; do it once, even under concurrent first requests.
        if self._evaluator is None:
            with self._lock:
                if self._evaluator is None:
                    from engine import Evaluator, load_rulebook
                    self._evaluator = Evaluator(load_rulebook())
        return self._evaluator

    @property
    def store(self):
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from api import domain
                    self._store = domain.open_store(self.settings)
        return self._store

    def ledger(self) -> frozenset[str] | None:
        """The award ledger for self-checks, re-read at most every LEDGER_TTL seconds: it only
        changes when a window closes, and a close itself is guarded by the database constraint,
        not by this cache. None when the store cannot answer (→ the criterion is unknown)."""
        now = time.monotonic()
        if now - self._ledger_at > LEDGER_TTL:
            from store.ledger import awarded_subjects
            found = awarded_subjects(self.store)
            self._ledger = None if found is None else frozenset(found)
            self._ledger_at = now
        return self._ledger

    def invalidate_ledger(self) -> None:
        self._ledger_at = float("-inf")

    def benefit_ids(self) -> frozenset[str]:
        if self._benefit_ids is None:
            self._benefit_ids = frozenset(r["id"] for r in rule_summaries(self.evaluator))
        return self._benefit_ids


def today() -> date:
    from engine.profile import shanghai_today
    return shanghai_today()


def rulebook_of(ev) -> Any:
    for name in ("rulebook", "book", "_book"):
        book = getattr(ev, name, None)
        if book is not None:
            return book
    raise RuntimeError("evaluator exposes no rulebook")


def _rules_of(book) -> list:
    for name in ("benefits", "rules"):
        rules = getattr(book, name, None)
        if rules is not None:
            return list(rules.values()) if isinstance(rules, dict) else list(rules)
    raise RuntimeError("rulebook exposes no rules")


def _dump(obj) -> dict:
    obj = getattr(obj, "spec", obj)  # engine.loader.Benefit wraps the parsed rule file
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", by_alias=True, exclude_none=False)
    return dict(obj)


def rule_full(ev, benefit_id: str) -> dict:
    for rule in _rules_of(rulebook_of(ev)):
        d = _dump(rule)
        if d.get("id") == benefit_id:
            return d
    raise ApiError(404, f"未找到政策：{benefit_id}")


def rule_summaries(ev) -> list[dict]:
    out = []
    for rule in _rules_of(rulebook_of(ev)):
        d = _dump(rule)
        periods = d.get("in_force") or []
        if isinstance(periods, dict):
            periods = [periods]
        froms = [p.get("from") for p in periods if p.get("from")]
        tos = [p.get("to") for p in periods]
        in_force = {"from": min(froms) if froms else None,
                    "to": None if (not tos or any(t is None for t in tos)) else max(tos)}
        out.append({"id": d.get("id"), "title": d.get("title"), "kind": d.get("kind"),
                    "unit": d.get("unit"), "in_force": in_force,
                    "legal_basis": d.get("legal_basis") or []})
    return out
