"""The processor's Prometheus metrics, declared once."""

from __future__ import annotations

from typing import TypedDict

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["BATCH_SECONDS", "EVENTS", "LAG_SECONDS", "PARTITION_LAG"]


class _Names(TypedDict):
    """The keyword arguments every metric here shares (a plain dict would not type-check as `**` arguments)."""

    namespace: str
    subsystem: str


_PROCESSOR: _Names = {"namespace": "convergence", "subsystem": "processor"}

EVENTS = Counter("events", "Ledger events folded, by outcome (applied|dead_letter).", ["outcome"],
                 **_PROCESSOR)
BATCH_SECONDS = Histogram("batch_seconds", "Time to fold one batch and hand its writes to the producer.",
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                          **_PROCESSOR)
LAG_SECONDS = Gauge("lag_seconds", "Seconds from the Kafka timestamp of a batch's newest stream message "
                                   "to the end of that batch.", **_PROCESSOR)
PARTITION_LAG = Gauge("partition_lag_messages", "Stream messages of a partition this worker holds that it has not "
                      "folded yet (the partition's high watermark at its last batch, less its next offset).",
                      ["partition"], **_PROCESSOR)
for _outcome in ("applied", "dead_letter"):  # at 0 from the start: a first dead letter is an increase
    EVENTS.labels(_outcome)
