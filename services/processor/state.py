"""The processor's state — the fold, the dedup keys, the applied input positions — kept in one table.

No Faust here: the table is any mutable mapping of bytes to bytes (the data of a Faust table in the
worker, a dict in tests); every write is also returned in `Batch.changelog`, for the caller to publish to
the table's changelog topic. Keys are JSON arrays; every value carries the number `b` of the batch that
wrote it:

* `["party", id]`, `["relationship", party, cp]`, … — a fold record: `b NUL data NUL previous` (data
  and previous as JSON, `null` when absent; JSON escapes NUL, so the split is unambiguous), where
  `previous` is its value as of the last complete batch before `b` (the undo image) — kept as bytes, so
  a write copies the previous image instead of decoding and encoding it again;
* `["applied", topic, partition, first offset]` — one per input partition per batch:
  `{"b", "next": offset after the batch, "seen": [[source, id], …]}` (the dedup keys that batch added);
* `["batch"]` — `{"b"}`, the last complete batch: written only once all of its other writes are
  acknowledged, to every changelog partition, alone. Tansu reports a partition's end offset as the base
  offset of its last record batch (+1), so Faust's recovery (which reads up to that end) would miss the
  tail of a multi-record batch; a partition that ends with this one-record batch is read in full.

Without Kafka transactions a crash can leave part of a batch in the changelog. `restore` therefore takes
every entry of a batch after the marker at its undo image (records) or drops it (applied): the state is
exactly that of the last complete batch, and Faust re-reads everything after it (offsets are committed
only after the producer is flushed, so never past an incomplete batch); the first batch then rewrites
the rolled-back entries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.broker.binding import decode, topic_for
from services.records import MEASURE_KINDS, encode_key
from services.settings import Settings
from shared.events import parse_event
from shared.fold import Conflict, Fold
from shared.snapshot import get_record, put_record

__all__ = ["APPLIED", "MARKER", "Batch", "Inbound", "ProcessorState", "Rejection"]

APPLIED = "applied"
MARKER = b'["batch"]'
Headers = list[tuple[str, bytes | None]]
log = logging.getLogger(__name__)


class _FoldFailed(Exception):
    """The fold raised something other than `Conflict` on the message at `where`."""

    def __init__(self, where: tuple[str, int, int], reason: str) -> None:
        super().__init__(reason)
        self.where, self.reason = where, reason


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
    """What one batch did: its number, the measure messages to publish, rejections and counts."""

    number: int
    changelog: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    measures: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    replayed: int = 0  # read again after a restart, already in the state: skipped silently
    newest_timestamp_s: float | None = None


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _record_entry(batch: int, data: bytes, previous: bytes) -> bytes:
    return b"%d\x00%s\x00%s" % (batch, data, previous)


def _record_parts(entry: bytes) -> tuple[int, bytes, bytes]:
    """(batch, data JSON, previous JSON) of a record entry."""
    number, data, previous = entry.split(b"\x00", 2)
    return int(number), data, previous


class ProcessorState:
    """The processor's recoverable state: one `Fold`, the dedup keys seen, the next offset per input partition."""

    def __init__(self, settings: Settings, table: MutableMapping[bytes, bytes]) -> None:
        self._settings = settings
        self._table = table
        self.fold = Fold(settings.provider_id, track_changes=True)
        self.seen: set[tuple[str, str]] = set()
        self.positions: dict[tuple[str, int], int] = {}
        self.batch_number = 0
        # entries of batches after the last complete one: records to rewrite at their undo image, applied to drop
        self._repairs: dict[tuple[str, ...], bytes] = {}
        self._stale: list[bytes] = []

    @property
    def _changed(self) -> set[tuple[str, ...]]:
        """The keys of the records the fold changed since they were last written (its `changed`, tracked here)."""
        changed = self.fold.changed
        assert changed is not None, "the state's fold is made with track_changes"
        return changed

    def restore(self) -> int:
        """Load the table (after Faust's recovery) as of its last complete batch; return how many entries
        of later, incomplete batches were rolled back."""
        complete = json.loads(self._table[MARKER])["b"] if MARKER in self._table else 0
        self.batch_number = complete
        for key, value in self._table.items():
            if key == MARKER:
                continue
            parts = json.loads(key)
            if parts[0] != APPLIED:
                number, data, previous = _record_parts(value)
                self.batch_number = max(self.batch_number, number)
                image = data if number <= complete else previous
                if image != b"null":
                    put_record(self.fold, tuple(parts), json.loads(image))
                if number > complete:
                    self._repairs[tuple(parts)] = image
                continue
            entry = json.loads(value)
            self.batch_number = max(self.batch_number, entry["b"])
            if entry["b"] <= complete:
                where = (parts[1], parts[2])
                self.positions[where] = max(self.positions.get(where, 0), entry["next"])
                self.seen.update((source, event_id) for source, event_id in entry["seen"])
            else:
                self._stale.append(key)
        self._changed.clear()
        return len(self._repairs) + len(self._stale)

    def process(self, messages: Sequence[Inbound]) -> Batch:
        """Fold a batch in and write it to the table; return what to publish. Then write its `marker`.

        An event the fold fails on (not a `Conflict`: a bug, or input no check foresaw) may have changed
        part of the state: the batch is then rolled back to the table (which holds the state before it)
        and folded again without that event, which is dead-lettered with the failure.
        """
        failed: dict[tuple[str, int, int], str] = {}
        positions, seen = dict(self.positions), set(self.seen)
        while True:
            try:
                return self._process(messages, failed)
            except _FoldFailed as failure:
                failed[failure.where] = failure.reason
                self._roll_back()
                self.positions, self.seen = dict(positions), set(seen)
                self.batch_number -= 1

    def _process(self, messages: Sequence[Inbound], failed: Mapping[tuple[str, int, int], str]) -> Batch:
        self.batch_number += 1
        batch = Batch(self.batch_number)
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
            reason = failed.get((*where, message.offset))
            if reason is None:
                self._one(message, batch, added.setdefault(where, []))
            else:
                added.setdefault(where, [])
                batch.rejected.append(Rejection(message, reason))
        self._write(batch, firsts, added)
        return batch

    def _roll_back(self) -> None:
        """Put every record the unfinished batch changed back as the table has it."""
        for record in self._changed:
            image = self._repairs.get(record)
            if image is None:
                image = self._committed(encode_key(record))
            put_record(self.fold, record, json.loads(image))
        self._changed.clear()

    def missing(self, messages: Sequence[Inbound], starts: Mapping[tuple[str, int], int]
                ) -> dict[tuple[str, int], tuple[int, int]]:
        """Per input partition, the offsets `[first, end)` between the next one this state expects (its
        position, or `starts` for a partition it never read) and the last of `messages` that `messages`
        skip; the offsets already there are not asked for again. Empty when the batch is contiguous."""
        offsets: dict[tuple[str, int], list[int]] = {}
        for message in messages:
            offsets.setdefault((message.topic, message.partition), []).append(message.offset)
        gaps = {}
        for where, got in offsets.items():
            expected = self.positions.get(where, starts.get(where))
            if expected is None:
                continue
            new = {offset for offset in got if offset >= expected}
            if new and len(new) != max(new) - expected + 1:
                gaps[where] = (next(o for o in range(expected, max(new)) if o not in new), max(new))
        return gaps

    @staticmethod
    def marker(batch: Batch) -> bytes:
        """The value of `MARKER` that declares `batch` complete: write it once the batch is acknowledged."""
        return _dump({"b": batch.number})

    def _write(self, batch: Batch, firsts: dict[tuple[str, int], int], added: dict[tuple[str, int], list]) -> None:
        for key in self._stale:
            self._put(batch, key, None)
        for where, first in firsts.items():
            self._put(batch, encode_key((APPLIED, *where, first)),
                      _dump({"b": batch.number, "next": self.positions[where], "seen": added[where]}))
        for record in self._changed | self._repairs.keys():
            key, data = encode_key(record), _dump(get_record(self.fold, record))
            previous = self._repairs[record] if record in self._repairs else self._committed(key)
            self._put(batch, key, _record_entry(batch.number, data, previous))
            if record[0] in MEASURE_KINDS:
                batch.measures.append((key, None if data == b"null" else data))
        self._changed.clear()
        self._stale, self._repairs = [], {}

    def _put(self, batch: Batch, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._table.pop(key, None)
        else:
            self._table[key] = value
        batch.changelog.append((key, value))

    def _committed(self, key: bytes) -> bytes:
        entry = self._table.get(key)
        return b"null" if entry is None else _record_parts(entry)[1]

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
        except Exception as error:
            log.exception("folding %s[%d]@%d failed", message.topic, message.partition, message.offset)
            raise _FoldFailed((message.topic, message.partition, message.offset),
                              f"processing failed: {type(error).__name__}: {error}") from error
        self.seen.add(event.key)
        added.append(list(event.key))
        batch.applied += 1
