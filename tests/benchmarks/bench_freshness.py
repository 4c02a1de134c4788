"""Freshness under load: how long an event accepted by `POST /v1/events` takes to show in a live scorecard.

    python -m tests.benchmarks.bench_freshness [--rate 2000] [--seconds 30] [--workers 1]

Starts the real system (`convergence up`: embedded broker, SQLite, `--workers` processor workers, API), sends a steady
simulated stream at `--rate` events/s in batches every 100 ms, each batch carrying one probe sale of 1.00
for a probe account executive, and polls that party's scorecard: the latency of a batch is the time
from its 202 to the first scorecard whose net revenue counts it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

from services.demo.simulator import roster, stream
from services.plan_files import DEFAULT_PLANS_DIR
from tests.support.system import running_system

PROBE = "probe-ae"
TICK_S = 0.1
CUSTOMERS = 20_000  # a business sending 2 000 events/s has many customers, each with a short history


def _probe_sale(probe: str, number: int) -> dict:
    now = datetime.now(UTC)
    return {"specversion": "1.0", "id": f"{probe}-{number}", "source": "bench", "type": "sale.closed",
            "time": now.isoformat(), "data": {"order_id": f"{probe}-o{number}", "customer_id": "probe-cust",
                                              "amount": "1.00", "currency": "USD",
                                              "credits": [{"party_id": probe, "share": "1"}]}}


async def _probe_value(client: httpx.AsyncClient, probe: str) -> int:
    response = await client.get(f"/v1/scorecards/{probe}")
    if response.status_code != 200:
        return 0
    revenue = next((m for m in response.json()["metrics"] if m["measure"] == "net_revenue"), None)
    return int(Decimal(revenue["value"])) if revenue and revenue["value"] is not None else 0


async def freshness(base_url: str, token: str, rate: int, seconds: float, probe: str = PROBE
                    ) -> tuple[list[float], float]:
    """The latency of every probed batch, and the rate sent, at `rate` events/s offered for `seconds`; each run
    on one system needs a `probe` party of its own."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        now = datetime.now(UTC)
        party = {"party_id": probe, "kind": "workforce", "role": "account_executive", "manager_id": "mgr-0"}
        register = [*roster(now), {**roster(now)[2], "id": f"{probe}-reg", "data": party}]
        assert (await client.post("/v1/events", json=register)).status_code == 202
        await client.post("/v1/events", json=[_probe_sale(probe, 0)])
        while await _probe_value(client, probe) < 1:  # the processor has joined and caught up
            await asyncio.sleep(0.2)
        events = stream(random.Random(7), lambda: datetime.now(UTC), CUSTOMERS)
        acked: dict[int, float] = {}
        seen: dict[int, float] = {}
        per_batch = max(1, int(rate * TICK_S) - 1)
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set() or len(seen) < len(acked):
                value = await _probe_value(client, probe) - 1
                stamp = time.monotonic()
                for number in range(1, value + 1):
                    seen.setdefault(number, stamp)
                await asyncio.sleep(0.01)

        poller = asyncio.create_task(poll())
        started = time.monotonic()
        for number in itertools.count(1):
            tick = started + number * TICK_S
            if tick - started > seconds:
                break
            batch = [*itertools.islice(events, per_batch), _probe_sale(probe, number)]
            response = await client.post("/v1/events", json=batch)
            assert response.status_code == 202, response.text
            acked[number] = time.monotonic()
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        sent_rate = len(acked) * (per_batch + 1) / (time.monotonic() - started)
        done.set()
        await asyncio.wait_for(poller, 120)
    return [seen[n] - acked[n] for n in acked], sent_rate


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50, p99 and the maximum of `latencies`, in milliseconds."""
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000, "max_ms": ordered[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=1, help="processor workers (one consumer group)")
    args = parser.parse_args()
    with (tempfile.TemporaryDirectory() as tmp,
          running_system(Path(tmp), DEFAULT_PLANS_DIR, workers=args.workers) as system):
        latencies, sent = asyncio.run(freshness(system.base_url, system.token, args.rate, args.seconds))
    figures = percentiles(latencies)
    print(f"sent {sent:,.0f} events/s for {args.seconds:.0f} s to {args.workers} processor worker(s) "
          f"({len(latencies)} probed batches)")
    print(f"freshness p50 {figures['p50_ms']:,.0f} ms  p99 {figures['p99_ms']:,.0f} ms  "
          f"max {figures['max_ms']:,.0f} ms")


if __name__ == "__main__":
    main()
