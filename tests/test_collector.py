"""The garbage collector's bulk setting (store.collector): it speeds a job up without keeping
its garbage, and the server gets its defaults back however jobs overlap or fail."""
from __future__ import annotations

import gc
import threading
import weakref

import pytest

from store.collector import BULK_THRESHOLD, bulk_work


class Node:
    def __init__(self):
        self.me = self          # a reference cycle: only the collector frees it


def test_defaults_come_back_after_overlapping_jobs_and_a_failing_one():
    before = gc.get_threshold()
    started, release = threading.Event(), threading.Event()

    def other_job():
        with bulk_work():
            started.set()
            release.wait(5)

    t = threading.Thread(target=other_job)
    t.start()
    started.wait(5)
    with pytest.raises(RuntimeError):
        with bulk_work():
            assert gc.get_threshold()[0] == max(before[0], BULK_THRESHOLD)
            raise RuntimeError("a job fails")
    assert gc.get_threshold()[0] == max(before[0], BULK_THRESHOLD)   # the other job still runs
    release.set()
    t.join(5)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_garbage_made_during_bulk_work_is_still_collected():
    freed = []
    with bulk_work():
        refs = [weakref.ref(Node(), freed.append) for _ in range(100)]
        junk = [[i] for i in range(BULK_THRESHOLD * 3)]     # allocations that trigger a pass
        del junk
        assert len(freed) == 100 and all(r() is None for r in refs)
