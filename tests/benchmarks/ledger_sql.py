"""The read benchmark's baseline: a scorecard's figures by SQL over the ledger, under the same load as the API.

Without the processor's roll-ups, a scorecard would be an aggregate over the ledger table for one party and
period. `scorecard_sql` computes two of the account executive scorecard's figures that way, exactly as the
fold does: the period's net revenue (the party's credited share of the period's sales, less what the
period's reversals of those orders took: each at most what is left of its order, in event-time order, SPEC
§3) and the NPS of the surveys about it in the 90 days to the period's end. (Retention needs each customer's
owners at every retention event, and earnings the plan engine: left out, so this baseline is cheaper than a
whole scorecard.) SQLite only, read-only, with the standard library's driver, one connection per client.

`closed_loop` times any call the way `bench_reads.wrk` times requests: a number of clients, each calling back
to back for a number of seconds, and the same summary.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.periods import Period
from tests.benchmarks.bench_freshness import percentiles

__all__ = ["closed_loop", "ledger_connection", "scorecard_sql"]

SCORECARD = """
WITH sales AS MATERIALIZED (
  SELECT e.body ->> '$.data.order_id' AS order_id, CAST(e.body ->> '$.data.amount' AS REAL) AS amount,
         CAST(credit.value ->> '$.share' AS REAL) AS share
  FROM events AS e, json_each(e.body, '$.data.credits') AS credit
  WHERE e.type = 'sale.closed' AND e.time >= :start AND e.time < :end AND credit.value ->> '$.party_id' = :party),
orders AS MATERIALIZED (SELECT DISTINCT order_id, amount FROM sales),
asked AS (
  SELECT r.time, r.tie, o.order_id, o.amount, COALESCE(r.asked, o.amount) AS asked
  FROM (SELECT time, source || '/' || id AS tie, body ->> '$.data.order_id' AS order_id,
               CAST(body ->> '$.data.amount' AS REAL) AS asked
        FROM events WHERE type = 'sale.reversed') AS r
  JOIN orders AS o USING (order_id)),
taken AS (
  SELECT time, order_id,
         MIN(amount, SUM(asked) OVER running) - MIN(amount, SUM(asked) OVER running - asked) AS amount
  FROM asked WINDOW running AS (PARTITION BY order_id ORDER BY time, tie))
SELECT
  (SELECT TOTAL(amount * share) FROM sales)
  - (SELECT TOTAL(taken.amount * sales.share) FROM taken JOIN sales USING (order_id)
     WHERE taken.time >= :start AND taken.time < :end) AS net_revenue,
  (SELECT 100.0 * (TOTAL(nps >= 9) - TOTAL(nps <= 6)) / COUNT(nps)
   FROM (SELECT CAST(body ->> '$.data.nps' AS INTEGER) AS nps FROM events
         WHERE type = 'survey.responded' AND time >= :since_90d AND time < :end
           AND body ->> '$.data.about_id' = :party)) AS nps
"""


def _stored(moment: datetime) -> str:
    """A time as SQLAlchemy stores a `DateTime` in SQLite (UTC, no offset), which compares as text."""
    return f"{moment:%Y-%m-%d %H:%M:%S.%f}"


def ledger_connection(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite database at `path`, usable from the thread that is given it."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def scorecard_sql(connection: sqlite3.Connection, party: str, period: Period) -> tuple[float, float | None]:
    """The party's net revenue in `period` and its 90-day NPS at the period's end, from the ledger alone (a
    scorecard read after the period's end sees the same)."""
    end = period.end
    row = connection.execute(SCORECARD, {"party": party, "start": _stored(period.start), "end": _stored(end),
                                         "since_90d": _stored(end - timedelta(days=90))}).fetchone()
    return row[0], row[1]


def closed_loop(clients: int, seconds: float, connect: Callable[[], Any], call: Callable[[Any, int], bool]) -> dict:
    """`clients` threads, each with a connection of its own from `connect`, calling `call(connection, n)` back to
    back for `seconds` (n counts every client's calls, to cycle over parties; `call` says whether it succeeded),
    summarised as `bench_reads.wrk` summarises a run. A call still under way at the end is waited for and
    counted, unlike wrk, since one call may take longer than the whole run."""
    latencies: list[float] = []  # appended from every thread: list.append is atomic
    failures: list[int] = []
    ready = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(first: int) -> None:
        with closing(connect()) as connection:
            ready.wait()
            number = first
            while time.monotonic() < deadline[0]:
                began = time.perf_counter()
                (latencies if call(connection, number) else failures).append(time.perf_counter() - began)
                number += clients

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(client, first) for first in range(clients)]
        started = time.monotonic()
        deadline[0] = started + seconds
        ready.wait()
        for each in running:
            each.result()  # a failing connection or call fails the run
    elapsed = time.monotonic() - started
    if not latencies:
        raise RuntimeError(f"no call succeeded in {elapsed:.1f} s ({len(failures)} failed)")
    figures = percentiles(latencies)
    return {"requests": len(latencies), "seconds": elapsed, "p50_us": figures["p50_ms"] * 1000,
            "p99_us": figures["p99_ms"] * 1000, "errors": len(failures)}
