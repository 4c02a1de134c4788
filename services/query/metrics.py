"""Prometheus metrics of the query service, declared once."""

from __future__ import annotations

from typing import TypedDict

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["POSITION", "RECORDS", "REQUEST_SECONDS"]

class _Names(TypedDict):
    """The keyword arguments every metric here shares (a plain dict would not type-check as `**` arguments)."""

    namespace: str
    subsystem: str


_QUERY: _Names = {"namespace": "convergence", "subsystem": "query"}

REQUEST_SECONDS = Histogram("request_seconds", "Time to answer a query request, by route template", ["route"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                            **_QUERY)
RECORDS = Counter("records", "Measures-topic records applied to the read model", **_QUERY)
POSITION = Gauge("position", "Next offset of the measures topic the read model will apply, by partition",
                 ["partition"], **_QUERY)
