"""From a consumed Kafka message to a ledger row or a dead letter, and from stored rows back to events."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiokafka import ConsumerRecord

from services.broker.binding import decode, topic_for
from services.settings import Settings
from services.store.dead_letters import NewDeadLetter
from services.store.ledger import LedgerRow
from shared.events import Event, parse_event
from shared.fold import home_key

__all__ = ["dead_letter_of", "event_row", "ledger_row", "refused"]

Headers = list[tuple[str, bytes | None]]
log = logging.getLogger(__name__)


def _is_binary(headers: Headers) -> bool:
    return any(name.lower() == "ce_specversion" for name, _ in headers)


def _structured_json(value: bytes | None, headers: Headers, raw: Any) -> str:
    """The message value itself in structured mode; otherwise the event re-encoded, decimals as strings."""
    if value is not None and not _is_binary(headers):
        try:
            return value.decode()
        except UnicodeDecodeError:  # JSON in UTF-16 or UTF-32 decodes too; keep it as UTF-8 text
            pass
    return json.dumps(raw, default=str)


def event_row(event: Event, body: str, settings: Settings, **where: Any) -> LedgerRow:
    """The row of a validated event whose structured-mode JSON is `body` (`where`: partition, offset, epoch)."""
    return LedgerRow(event.source, event.id, event.type, event.time, topic_for(event.type, settings),
                     home_key(event), body, **where)


def ledger_row(record: ConsumerRecord[bytes, bytes], settings: Settings, epoch: str) -> LedgerRow:
    """The row of a message read from log `epoch`; ValueError when it is not a valid event of its topic."""
    headers = list(record.headers)
    raw = decode(record.value, headers)
    event = parse_event(raw, settings.currency)
    if topic_for(event.type, settings) != record.topic:
        raise ValueError(f"wrong topic: a {event.type} event belongs on {topic_for(event.type, settings)}")
    return event_row(event, _structured_json(record.value, headers, raw), settings,
                     partition=record.partition, offset=record.offset, epoch=epoch)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode(errors="replace")


def _dedup_key(value: str, where: tuple[str | None, int | None, int | None], epoch: str) -> str:
    """An event is named by (source, id) wherever it was read; anything else by its place in one log."""
    try:
        raw = json.loads(value)
    except ValueError:
        raw = None
    if isinstance(raw, dict) and isinstance(raw.get("source"), str) and isinstance(raw.get("id"), str):
        return json.dumps(["event", raw["source"], raw["id"]])
    return json.dumps(["at", epoch, *where])


def _received(record: ConsumerRecord[bytes, bytes]) -> str:
    """The message as a person can read and replay it: the event of a binary-mode message, else its value."""
    headers = list(record.headers)
    if _is_binary(headers):
        try:
            return json.dumps(decode(record.value, headers), default=str)
        except ValueError:
            pass
    return _text(record.value) or ""


def refused(record: ConsumerRecord[bytes, bytes], epoch: str, reason: str) -> NewDeadLetter:
    """The dead letter of an inbound message that is not a valid event of its topic."""
    value, where = _received(record), (record.topic, record.partition, record.offset)
    return NewDeadLetter(_dedup_key(value, where, epoch), reason, value, *where, key=_text(record.key))


def dead_letter_of(record: ConsumerRecord[bytes, bytes], epoch: str) -> NewDeadLetter:
    """The dead letter of a message on the dead-letter topic (the processor's: `error` and `source_*` headers)."""
    headers = {name: _text(raw) for name, raw in record.headers}
    partition, offset = headers.get("source_partition"), headers.get("source_offset")
    where = (headers.get("source_topic"), int(partition) if partition else None, int(offset) if offset else None)
    value = _text(record.value) or ""
    return NewDeadLetter(_dedup_key(value, where, epoch), headers.get("error") or "dead-lettered", value, *where,
                         key=_text(record.key))
