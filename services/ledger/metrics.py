"""The ledger's Prometheus metrics, declared once."""

from typing import TypedDict

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["BATCH_SECONDS", "DEAD_LETTERS", "DUPLICATES", "EVENTS", "LAG", "RELAYED", "RELAY_CURSOR"]


class _Names(TypedDict):
    """The keyword arguments every metric here shares (a plain dict would not type-check as `**` arguments)."""

    namespace: str
    subsystem: str


_LEDGER: _Names = {"namespace": "convergence", "subsystem": "ledger"}

EVENTS = Counter("events", "Events appended to the ledger.", **_LEDGER)
DUPLICATES = Counter("duplicates", "Valid events already in the ledger, not appended again.", **_LEDGER)
DEAD_LETTERS = Counter("dead_letters", "Refused messages stored as dead letters.", **_LEDGER)
RELAYED = Counter("relayed", "Ledger rows published into the inbound topics.", **_LEDGER)
RELAY_CURSOR = Gauge("relay_cursor_seq", "The ledger seq up to which the broker log in use has every row.",
                     **_LEDGER)
BATCH_SECONDS = Histogram("batch_seconds", "Time to decode and append one fetched batch.", **_LEDGER)
LAG = Gauge("lag_messages", "Messages on the inbound topics the ledger has not appended (at the last health check).",
            **_LEDGER)
