"""HeapKeeper: young garbage is collected at each batch, survivors are frozen, and frozen garbage is freed later."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.heap import HeapKeeper


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    gc.collect()
    yield
    gc.unfreeze()
    gc.collect()


def test_nothing_happens_before_a_batch_is_complete() -> None:
    keeper = HeapKeeper(every=10)
    frozen = gc.get_freeze_count()
    keeper.folded(9)
    assert gc.get_freeze_count() == frozen


def test_a_batch_collects_the_cyclic_garbage_it_made_and_freezes_what_lives() -> None:
    keeper = HeapKeeper(every=10)
    dead, alive = Node(), Node()
    gone = weakref.ref(dead)
    del dead
    keeper.folded(10)
    assert gone() is None
    assert gc.is_tracked(alive) and gc.get_freeze_count() > 0


@pytest.mark.parametrize(("full_every_s", "times"), [
    (1.0, [0.0, 0.0, 2.0, 3.0, 4.0, 4.5]),  # a full collection from 0 to 2 at 50 %: the next is due at 4
    (5.0, [0.0, 0.0, 2.0, 6.0, 7.0, 7.5]),  # ... but no sooner than 5 s after it ended: at 7
])
def test_garbage_frozen_while_alive_is_freed_by_the_next_full_collection(full_every_s: float,
                                                                         times: list[float]) -> None:
    clock = iter(times)  # creation, then the start (and the end of a full collection) of each batch
    keeper = HeapKeeper(every=10, full_every_s=full_every_s, full_share=0.5, clock=lambda: next(clock))
    node = Node()
    gone = weakref.ref(node)
    keeper.folded(10)  # the first batch: a full collection, then frozen while alive
    del node
    keeper.folded(10)  # not yet due: young collection only
    assert gone() is not None  # frozen garbage: young collections do not see it
    keeper.folded(10)
    assert gone() is None
