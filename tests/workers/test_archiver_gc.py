"""The archiver's GC tuning (ADR 0036): once started, what exists is frozen out of the collector's walks and
the young generation is collected every ``GC_YOUNG`` allocations, not Python's 700."""

from __future__ import annotations

import gc

from parley.workers.archiver import GC_YOUNG, tune_gc


def test_tune_gc_freezes_what_exists_and_raises_the_young_threshold():
    before = gc.get_threshold()
    survivor = [object()]  # tracked: a list that outlives the call
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG, *before[1:])
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(survivor) and all(o is not survivor for o in gc.get_objects())  # frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
