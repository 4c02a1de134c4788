"""Fold throughput (events/s, one core) and memory per relationship on a generated year of history.

    python -m tests.benchmarks.bench_core [--events 1000000] [--customers 40000]

Two passes over the same history, parsed in chunks: the first times `Fold.apply` alone (parsing is
not timed), the second traces allocations to size the fold's retained state once every chunk of
events has been dropped.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from itertools import islice

from shared.events import parse_event
from shared.fold import Conflict, Fold
from tests.benchmarks.history import raw_history

CHUNK = 50_000


def _chunks(events: int, customers: int):
    raw = raw_history(events, customers)
    while chunk := [parse_event(item) for item in islice(raw, CHUNK)]:
        yield chunk


def _fold_chunk(fold: Fold, chunk) -> int:
    conflicts = 0
    for event in chunk:
        try:
            fold.apply(event)
        except Conflict:
            conflicts += 1
    return conflicts


def throughput(events: int, customers: int, freeze: bool) -> tuple[float, Fold]:
    """Events per second of `Fold.apply`; `freeze` moves the state out of the GC's way after each chunk."""
    fold, seconds = Fold(), 0.0
    for chunk in _chunks(events, customers):
        started = time.perf_counter()
        _fold_chunk(fold, chunk)
        seconds += time.perf_counter() - started
        if freeze:
            gc.freeze()
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
    default_rate, fold = throughput(args.events, args.customers, freeze=False)
    relationships = sum(len(mine) for mine in fold.relationships.values())
    del fold
    frozen_rate, _ = throughput(args.events, args.customers, freeze=True)
    size = retained_bytes(args.events, args.customers)
    print(f"events           {args.events:>12,}")
    print(f"relationships    {relationships:>12,}")
    print(f"fold, default GC {default_rate:>12,.0f} events/s")
    print(f"fold, GC frozen  {frozen_rate:>12,.0f} events/s  (gc.freeze() after each {CHUNK:,} events)")
    print(f"state            {size / 2**20:>12,.1f} MiB = {size / relationships:,.0f} bytes per relationship-year")


if __name__ == "__main__":
    main()
