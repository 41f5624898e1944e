"""What the routes need at run time: the database, the evaluator of the rules in force (one
per process, from store.rulesets) and a short-lived cache of the award ledger for self-checks."""
from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy.exc import DBAPIError

from engine import Evaluator
from engine.profile import Profile
from store import rulesets
from store.awards import awarded_among
from store.db import Database
from store.windows import StoreCalendar

LEDGER_TTL = 2.0   # seconds


class Runtime:
    def __init__(self, db: Database, evaluator: Evaluator | None = None):
        self.db = db
        if evaluator is not None:
            rulesets.use(evaluator)
        self._lock = threading.Lock()
        self._ledger: dict[tuple, tuple[float, frozenset[str] | None]] = {}

    @property
    def evaluator(self) -> Evaluator:
        return rulesets.current()

    def ledger_for(self, profile: Profile) -> frozenset[str] | None:
        """The ledger entries of this profile's subjects, re-read at most every LEDGER_TTL
        seconds (the ledger only changes when a window closes, and a close is guarded by the
        database, not by this cache). None when the store cannot answer: the criterion is
        then unknown, never a silent pass."""
        subjects = []
        for info in self.evaluator.registry.subjects.values():
            subjects += [info.key_of(i) for i in getattr(profile, info.name) or []]
        key = tuple(sorted(subjects))
        now = time.monotonic()
        with self._lock:
            hit = self._ledger.get(key)
        if hit is not None and now - hit[0] < LEDGER_TTL:
            return hit[1]
        found = awarded_among(self.db, list(key))
        value = None if found is None else frozenset(found)
        with self._lock:
            if len(self._ledger) > 10000:
                self._ledger.clear()
            self._ledger[key] = (now, value)
        return value

    def calendar(self) -> Any:
        """The windows a self-check judges in: as staff opened them (store.windows.StoreCalendar,
        one small read: a window just opened counts at once); the rules' default calendar while
        the database cannot answer."""
        try:
            return StoreCalendar.of(self.db, self.evaluator.book.calendar)
        except DBAPIError:
            return self.evaluator.book.calendar

    def invalidate_ledger(self) -> None:
        with self._lock:
            self._ledger.clear()
