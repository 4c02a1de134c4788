"""Fold throughput (events/s, one core) and memory per relationship on a generated year of history.

    python -m tests.benchmarks.bench_core [--events 1000000] [--customers 40000]

Three passes over the same history, each in a new interpreter, parsed in chunks (parsing is not
timed): the first times `Fold.apply` under the collector's defaults, the second as the services run it,
with a `HeapKeeper` after every batch (its collections are timed too), the third traces allocations to
size the fold's retained state once every chunk of events has been dropped.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context

import shared.fold
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


def throughput(events: int, customers: int, kept: bool) -> tuple[float, int]:
    """Events per second of `Fold.apply` in batches of `BATCH` (with a `HeapKeeper` after each batch if
    `kept`), and the number of relationships folded."""
    fold, seconds, keeper = Fold(), 0.0, HeapKeeper(BATCH) if kept else None
    for chunk in _chunks(events, customers):
        started = time.perf_counter()
        _fold_chunk(fold, chunk, keeper)
        seconds += time.perf_counter() - started
    return events / seconds, sum(len(mine) for mine in fold.relationships.values())


def retained_bytes(events: int, customers: int) -> int:
    """Bytes still allocated by parsing and folding once the events themselves are gone."""
    tracemalloc.start()
    fold = Fold()
    for chunk in _chunks(events, customers):
        _fold_chunk(fold, chunk)
        del chunk
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size


def fresh(function, *args):
    """`function(*args)` in a new interpreter: no pass inherits the heap (and its fragments) of another."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=40_000)
    args = parser.parse_args()
    default_rate, relationships = fresh(throughput, args.events, args.customers, False)
    kept_rate, _ = fresh(throughput, args.events, args.customers, True)
    size = fresh(retained_bytes, args.events, args.customers)
    compiled = shared.fold.__file__.endswith(".so")
    print(f"fold             {'compiled by mypyc' if compiled else 'plain Python (see make compile)':>12}")
    print(f"events           {args.events:>12,}")
    print(f"relationships    {relationships:>12,}")
    print(f"fold, default GC {default_rate:>12,.0f} events/s")
    print(f"fold, as services{kept_rate:>12,.0f} events/s  (HeapKeeper after each batch of {BATCH:,} events)")
    print(f"state            {size / 2**20:>12,.1f} MiB = {size / relationships:,.0f} bytes per relationship-year")


if __name__ == "__main__":
    main()
