"""The ledger's Prometheus metrics, declared once."""

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["BATCH_SECONDS", "DEAD_LETTERS", "DUPLICATES", "EVENTS", "RELAYED", "RELAY_BACKLOG"]

_LEDGER = {"namespace": "convergence", "subsystem": "ledger"}

EVENTS = Counter("events", "Events appended to the ledger.", **_LEDGER)
DUPLICATES = Counter("duplicates", "Valid events already in the ledger, not appended again.", **_LEDGER)
DEAD_LETTERS = Counter("dead_letters", "Refused messages stored as dead letters.", **_LEDGER)
RELAYED = Counter("relayed", "Ledger rows published into the inbound topics.", **_LEDGER)
RELAY_BACKLOG = Gauge("relay_backlog", "Rows the last relay round left for the next (a full batch: more wait).",
                      **_LEDGER)
BATCH_SECONDS = Histogram("batch_seconds", "Time to decode and append one fetched batch.", **_LEDGER)
