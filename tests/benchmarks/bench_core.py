"""Fold throughput (events/s, one core) and memory per relationship on a generated year of history.

    python -m tests.benchmarks.bench_core [--events 1000000] [--customers 40000]

Three passes over the same history, parsed in chunks (parsing is not timed): the first times
`Fold.apply` under the collector's defaults, the second as the services run it, with a `HeapKeeper`
after every batch (its collections are timed too), the third traces allocations to size the fold's
retained state once every chunk of events has been dropped.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from itertools import islice

from services.heap import HeapKeeper
from shared.events import parse_event
from shared.fold import Conflict, Fold
from tests.benchmarks.history import raw_history

CHUNK = 50_000
BATCH = 1000


def _chunks(events: int, customers: int):
    raw = raw_history(events, customers)
    while chunk := [parse_event(item) for item in islice(raw, CHUNK)]:
        yield chunk


def _fold_chunk(fold: Fold, chunk, keeper: HeapKeeper | None = None) -> None:
    for start in range(0, len(chunk), BATCH):
        batch = chunk[start:start + BATCH]
        for event in batch:
            try:  # noqa: SIM105 (not contextlib.suppress: a context manager per event would be timed too)
                fold.apply(event)
            except Conflict:
                pass
        if keeper is not None:
            keeper.folded(len(batch))


def throughput(events: int, customers: int, keeper: HeapKeeper | None) -> tuple[float, Fold]:
    """Events per second of `Fold.apply` in batches of `BATCH`, with `keeper` after each batch if given."""
    fold, seconds = Fold(), 0.0
    for chunk in _chunks(events, customers):
        started = time.perf_counter()
        _fold_chunk(fold, chunk, keeper)
        seconds += time.perf_counter() - started
    gc.unfreeze()
    return events / seconds, fold


def retained_bytes(events: int, customers: int) -> int:
    """Bytes still allocated by parsing and folding once the events themselves are gone."""
    gc.collect()
    tracemalloc.start()
    fold = Fold()
    for chunk in _chunks(events, customers):
        _fold_chunk(fold, chunk)
        del chunk
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=40_000)
    args = parser.parse_args()
    default_rate, fold = throughput(args.events, args.customers, keeper=None)
    relationships = sum(len(mine) for mine in fold.relationships.values())
    del fold
    gc.collect()
    kept_rate, _ = throughput(args.events, args.customers, keeper=HeapKeeper(BATCH))
    size = retained_bytes(args.events, args.customers)
    print(f"events           {args.events:>12,}")
    print(f"relationships    {relationships:>12,}")
    print(f"fold, default GC {default_rate:>12,.0f} events/s")
    print(f"fold, as services{kept_rate:>12,.0f} events/s  (HeapKeeper after each batch of {BATCH:,} events)")
    print(f"state            {size / 2**20:>12,.1f} MiB = {size / relationships:,.0f} bytes per relationship-year")


if __name__ == "__main__":
    main()
