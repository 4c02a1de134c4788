"""Prometheus metrics of the ingest service, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["EVENTS", "REQUEST_SECONDS"]

EVENTS = Counter("events", "CloudEvents received over HTTP, by outcome (accepted|duplicate|rejected)",
                 ["outcome"], namespace="convergence", subsystem="ingest")
REQUEST_SECONDS = Histogram("request_seconds", "Time to answer POST /v1/events, the ledger write included",
                            namespace="convergence", subsystem="ingest",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
for _outcome in ("accepted", "duplicate", "rejected"):  # at 0 from the start: a rate from the first event on
    EVENTS.labels(_outcome)
