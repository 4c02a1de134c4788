"""The system of record: the event ledger, consumer positions, ingest keys and frozen settlements."""

from services.store.database import create_engine, create_sessions, migrate
from services.store.keys import IngestKeys
from services.store.ledger import LedgerRow, LedgerStore, StoredEvent
from services.store.settlements import SettlementRecord, SettlementStateError, SettlementStore

__all__ = [
    "IngestKeys",
    "LedgerRow",
    "LedgerStore",
    "SettlementRecord",
    "SettlementStateError",
    "SettlementStore",
    "StoredEvent",
    "create_engine",
    "create_sessions",
    "migrate",
]
