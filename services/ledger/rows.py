"""From a consumed Kafka message to a ledger row, and from stored rows back to events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import ConsumerRecord

from services.broker.binding import decode, loads, topic_for
from services.settings import Settings
from services.store.ledger import LedgerRow, LedgerStore
from shared.events import Event, parse_event

__all__ = ["ledger_events", "ledger_row"]


def _is_binary(headers: list[tuple[str, bytes | None]]) -> bool:
    return any(name.lower() == "ce_specversion" for name, _ in headers)


def _structured_json(value: bytes | None, headers: list[tuple[str, bytes | None]], raw: Any) -> str:
    """The message value itself in structured mode; otherwise the event re-encoded, decimals as strings."""
    if value is not None and not _is_binary(headers):
        try:
            return value.decode()
        except UnicodeDecodeError:  # JSON in UTF-16 or UTF-32 decodes too; keep it as UTF-8 text
            pass
    return json.dumps(raw, default=str)


def ledger_row(record: ConsumerRecord[bytes, bytes], settings: Settings) -> LedgerRow:
    """The row of a message; ValueError when it is not a valid event of its topic's family."""
    headers = list(record.headers)
    raw = decode(record.value, headers)
    event = parse_event(raw, settings.currency)
    if topic_for(event.type, settings) != record.topic:
        raise ValueError(f"a {event.type} event does not belong on {record.topic}")
    return LedgerRow.of(event, _structured_json(record.value, headers, raw),
                        record.topic, record.partition, record.offset)


async def ledger_events(ledger: LedgerStore, currency: str, *, after_seq: int = 0,
                        up_to_seq: int | None = None) -> AsyncIterator[tuple[int, Event]]:
    """(seq, event) of the ledger rows after `after_seq` (up to `up_to_seq`), in ledger order."""
    async for stored in ledger.iter_events(up_to_seq=up_to_seq, after_seq=after_seq):
        yield stored.seq, parse_event(loads(stored.body), currency)
