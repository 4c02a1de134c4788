"""The ledger's Prometheus metrics, declared once."""

from prometheus_client import Counter, Histogram

__all__ = ["BATCH_SECONDS", "DUPLICATES", "EVENTS", "SKIPPED"]

_LEDGER = {"namespace": "convergence", "subsystem": "ledger"}

EVENTS = Counter("events", "Events appended to the ledger.", **_LEDGER)
DUPLICATES = Counter("duplicates", "Valid events already in the ledger, not appended again.", **_LEDGER)
SKIPPED = Counter("skipped", "Messages that are not a valid event of their topic (the processor "
                             "dead-letters them).", **_LEDGER)
BATCH_SECONDS = Histogram("batch_seconds", "Time to decode and append one fetched batch.", **_LEDGER)
