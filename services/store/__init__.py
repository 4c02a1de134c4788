"""The system of record: the event ledger, consumer positions, dead letters and frozen settlements."""

from services.store.database import create_engine, create_sessions, migrate
from services.store.dead_letters import DeadLetterStore, NewDeadLetter, StoredDeadLetter
from services.store.ledger import LedgerRow, LedgerStore, StoredEvent
from services.store.settlements import SettlementRecord, SettlementStateError, SettlementStore

__all__ = [
    "DeadLetterStore",
    "LedgerRow",
    "LedgerStore",
    "NewDeadLetter",
    "SettlementRecord",
    "SettlementStateError",
    "SettlementStore",
    "StoredDeadLetter",
    "StoredEvent",
    "create_engine",
    "create_sessions",
    "migrate",
]
