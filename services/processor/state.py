"""The processor's state — the fold, the dedup keys, the applied input positions — and one batch through it.

No Faust here: the agent feeds `ProcessorState.process` the consumed messages and writes back what it
returns. The state table holds three kinds of entry, each keyed by a JSON array (as bytes):

* `["party", id]`, `["relationship", party, cp]`, … — a fold record, valued as `records.record_message`;
* `["applied", topic, partition, first offset]` — one per input partition per batch:
  `{"next": offset after the batch, "seen": [[source, id], …]}` (the dedup keys that batch added).

Restoring reads them all back: records into a `Fold`, the union of `seen`, the highest `next` per partition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.broker.binding import decode, topic_for
from services.records import MEASURE_KINDS, apply_message, record_message
from services.settings import Settings
from shared.events import parse_event
from shared.fold import Conflict, Fold

__all__ = ["APPLIED", "Batch", "Inbound", "ProcessorState", "Rejection"]

APPLIED = "applied"
Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Inbound:
    """One consumed message: where it was read, and what it holds."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_s: float | None = None


@dataclass(frozen=True)
class Rejection:
    """A message that is not an event of its topic, or clashes with the fold, and why."""

    message: Inbound
    reason: str


@dataclass
class Batch:
    """What one batch did: state-table writes (None deletes), measure messages, rejections and counts."""

    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    measures: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    replayed: int = 0  # read again after a restart, already in the state: skipped silently
    newest_timestamp_s: float | None = None


def _key(*parts: object) -> bytes:
    return json.dumps(list(parts)).encode()


class ProcessorState:
    """The processor's recoverable state: one `Fold`, the dedup keys seen, the next offset per input partition."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.fold = Fold(settings.provider_id, track_changes=True)
        self.seen: set[tuple[str, str]] = set()
        self.positions: dict[tuple[str, int], int] = {}

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Load the state table's entries (after Faust's recovery) into the fold, `seen` and positions."""
        for key, value in entries:
            parts = json.loads(key)
            if parts[0] == APPLIED:
                applied = json.loads(value)
                where = (parts[1], parts[2])
                self.positions[where] = max(self.positions.get(where, 0), applied["next"])
                self.seen.update((source, event_id) for source, event_id in applied["seen"])
            else:
                apply_message(self.fold, key, value)
        self.fold.changed.clear()

    def process(self, messages: Sequence[Inbound]) -> Batch:
        """Fold a batch in; return the writes that make it durable and what to publish."""
        batch = Batch()
        firsts: dict[tuple[str, int], int] = {}
        added: dict[tuple[str, int], list[list[str]]] = {}
        for message in messages:
            where = (message.topic, message.partition)
            if message.offset < self.positions.get(where, 0):
                batch.replayed += 1
                continue
            firsts.setdefault(where, message.offset)
            self.positions[where] = message.offset + 1
            if message.timestamp_s is not None:
                batch.newest_timestamp_s = max(batch.newest_timestamp_s or 0.0, message.timestamp_s)
            self._one(message, batch, added.setdefault(where, []))
        for where, first in firsts.items():
            batch.writes[_key(APPLIED, *where, first)] = json.dumps(
                {"next": self.positions[where], "seen": added[where]}).encode()
        for record in self.fold.changed:
            key, value = record_message(self.fold, record)
            batch.writes[key] = value
            if record[0] in MEASURE_KINDS:
                batch.measures.append((key, value))
        self.fold.changed.clear()
        return batch

    def _one(self, message: Inbound, batch: Batch, added: list[list[str]]) -> None:
        try:
            event = parse_event(decode(message.value, message.headers), self._settings.currency)
        except ValueError as error:  # not JSON, not a CloudEvent, or breaks the contract (EventError)
            batch.rejected.append(Rejection(message, f"invalid event: {error}"))
            return
        expected = topic_for(event.type, self._settings)
        if message.topic != expected:
            batch.rejected.append(Rejection(message, f"wrong topic: {event.type} belongs on {expected}"))
            return
        if event.key in self.seen:
            batch.duplicates += 1
            return
        try:
            self.fold.apply(event)
        except Conflict as error:
            batch.rejected.append(Rejection(message, f"conflict: {error}"))
            return
        self.seen.add(event.key)
        added.append(list(event.key))
        batch.applied += 1
