"""Keeping a large, long-lived fold out of the garbage collector's way.

A fold of a year of history is millions of small dicts and tuples that live as long as the process.
CPython's generational collector examines them again and again as they are created, updated and
promoted: on `make bench-core` that was 30-40 % of the fold's time. So a process that folds events
calls `HeapKeeper.folded` after each batch. Every `every` events it collects the young generations
(where the batch's cyclic garbage is) and freezes what survived (`gc.freeze`), which the collector then
never scans again. Objects that become garbage only after they were frozen are reclaimed by a full
collection every `full_every_s` seconds, or less often if full collections would otherwise take more
than `full_share` of the process's time. A full collection also thaws the state, which the collector
then re-examines once more as it changes, so it costs more than its own time: at most every ten minutes
by default, the garbage it reclaims stays bounded and its cost small, whatever the heap's size.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["HeapKeeper", "collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collection while the block builds state that makes no cyclic garbage (records decoded into a fold): a
    collection would only examine the new containers again and again, 30 % of loading a partition. The next
    `HeapKeeper.folded` freezes them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class HeapKeeper:
    """Counts folded events; collects young garbage and freezes the rest every `every` events."""

    def __init__(self, every: int = 1000, full_every_s: float = 600.0, full_share: float = 0.01,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.full_every_s, self.full_share, self.clock = every, full_every_s, full_share, clock
        self._pending = 0  # events since the last freeze
        self._next_full = clock()

    def folded(self, events: int) -> None:
        self._pending += events
        if self._pending < self.every:
            return
        self._pending = 0
        started = self.clock()
        if started >= self._next_full:
            gc.unfreeze()
            gc.collect()
            ended = self.clock()
            self._next_full = ended + max(self.full_every_s, (ended - started) * (1 / self.full_share - 1))
        else:
            gc.collect(1)
        gc.freeze()
