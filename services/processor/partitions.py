"""One partition of the processor: the fold of the keys it owns (`shared.fold`), applied from one input log.

The stream topic's partition `p` is that log. Its messages are JSON, of two kinds:

* from the relay, `{"epoch", "ledger": [after, upto], "events": [[seq, event], …]}`: every ledger row of
  this partition's keys with `after < seq ≤ upto`, in ledger order (`services.ledger.relay`);
* from partition `q`, `{"epoch", "from": q, "seq": n, "messages": […]}`: the `n`-th batch of fold messages
  `q` sent here (`Fold.outbox`).

`epoch` is the broker log the sender meant the message for (`services.broker.identity`): one that reached
another log (sent as the broker was replaced) is ignored.

A partition keeps a mark per sender: the last ledger seq, or the last `n` of each partition, it applied. A
message at or below its mark was applied already (sent again after a crash, or by a second relay) and is
skipped; one beyond the next expected means a message was not read (`Gap`). Since a partition reads only
its own log, in order, and the fold is deterministic, what it sends is the same however often it reads
the log again: so at-least-once delivery, crashes and replays never count anything twice, with no Kafka
transactions and no set of every event key ever seen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from services.broker.binding import loads
from services.broker.topics import DEAD_LETTER, MEASURES, STREAM
from services.heap import collector_paused
from services.records import MEASURE_KINDS, encode_key
from services.settings import Settings
from services.store.processing import Checkpoint, PartitionState
from shared.events import parse_event
from shared.fold import Conflict, Fold, home_key, partition_of
from shared.snapshot import get_record, put_stored

__all__ = ["LEDGER", "Folded", "Gap", "Outgoing", "Partition", "Poisoned"]

LEDGER = "ledger"  # the relay's name among a partition's senders
MESSAGES_PER_SEND = 2000  # fold messages per stream message: a few hundred kB
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """A message to send: to a partition of its topic, or by its key when `partition` is None."""

    topic: str
    partition: int | None
    key: str | None
    value: str | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Folded:
    """What one batch of one partition did: its checkpoint, what to send once it is written, and counts."""

    checkpoint: Checkpoint
    outgoing: list[Outgoing]
    applied: int = 0
    dead_letters: int = 0


class Gap(Exception):
    """A message of a sender was not read: the partition cannot go on from what it has."""


class Poisoned(Exception):
    """Folding the ledger row `seq` failed with something other than a `Conflict`; the fold may hold part of it."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.reason = seq, reason


def _received(message: list) -> tuple:
    """A fold message as sent (`Fold.outbox`) from its JSON form, amounts back as `Decimal`."""
    kind = message[0]
    if kind == "add":
        return ("add", message[1], message[2], message[3],
                tuple(Decimal(v) if v.__class__ is str else v for v in message[4]))
    if kind == "reverse":
        return ("reverse", *message[1:5], Decimal(message[5]), message[6])
    if kind == "refer":
        return ("refer", *message[1:6], Decimal(message[6]))
    if kind == "own":
        return ("own", *message[1:4], tuple(message[4]))
    if kind == "referred":
        return ("referred", *message[1:4], Decimal(message[4]))
    return tuple(message)


@dataclass
class Partition:
    """Partition `number` of `count` on broker log `epoch`, as loaded from its last checkpoint (`version`)."""

    settings: Settings
    epoch: str
    number: int
    count: int
    version: int = 0
    next_offset: int | None = None  # of its stream partition; None: its first
    marks: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    fold: Fold = field(init=False)

    @classmethod
    def loaded(cls, settings: Settings, epoch: str, number: int, count: int, state: PartitionState) -> Partition:
        partition = cls(settings, epoch, number, count, state.version, state.next_offset, dict(state.marks),
                        dict(state.sent))
        with collector_paused():  # a year of records is millions of containers, none of them garbage
            for key, value in state.records.items():
                put_stored(partition.fold, tuple(orjson.loads(key)), value, orjson.loads)
        partition.changed.clear()
        return partition

    def __post_init__(self) -> None:
        self.fold = Fold(self.settings.provider_id, track_changes=True, partition=self.number, partitions=self.count)

    @property
    def changed(self) -> set[tuple[str, ...]]:
        assert self.fold.changed is not None  # tracked: see __post_init__
        return self.fold.changed

    def fold_batch(self, values: Sequence[bytes], next_offset: int, poisoned: Mapping[int, str] | None = None
                   ) -> Folded:
        """Fold this partition's stream messages, the next ones in offset order (then it reads on at
        `next_offset`); the ledger rows in `poisoned` (seq -> why) are dead-lettered instead. Raises `Gap`, or
        `Poisoned` (the fold may then hold part of that row: load the partition again and fold the batch with
        it poisoned)."""
        letters: list[Outgoing] = []
        applied, poisoned = 0, poisoned or {}
        for value in values:
            message = loads(value)
            if message["epoch"] != self.epoch:
                continue
            if "ledger" in message:
                applied += self._ledger_rows(message, poisoned, letters)
            else:
                self._messages(message)
        outgoing = self._sends() + letters
        records: dict[str, str | None] = {}
        for record in self.changed:
            data = get_record(self.fold, record)
            key, text = encode_key(record).decode(), None if data is None else orjson.dumps(data, default=str).decode()
            records[key] = text
            if record[0] in MEASURE_KINDS:
                outgoing.append(Outgoing(self.settings.topic(MEASURES), None, key, text))
        self.changed.clear()
        self.next_offset = next_offset
        body = json.dumps([[o.topic, o.partition, o.key, o.value, o.headers] for o in outgoing]) if outgoing else None
        return Folded(Checkpoint(records, next_offset, dict(self.marks), dict(self.sent), body), outgoing, applied,
                      len(letters))

    def _ledger_rows(self, message: dict, poisoned: Mapping[int, str], letters: list[Outgoing]) -> int:
        after, upto = message["ledger"]
        mark = self.marks.get(LEDGER, 0)
        if after > mark:
            raise Gap(f"partition {self.number}: ledger rows after {mark} up to {after} were not read")
        applied = 0
        for seq, raw in message["events"]:
            if seq <= mark:
                continue
            reason = poisoned.get(seq) or self._apply(seq, raw)
            if reason is None:
                applied += 1
            else:
                letters.append(self._dead_letter(seq, raw, reason))
        self.marks[LEDGER] = max(mark, upto)
        return applied

    def _apply(self, seq: int, raw: Any) -> str | None:
        """Fold one ledger row in; the reason it is refused, or None."""
        try:
            event = parse_event(raw, self.settings.currency)
        except ValueError as error:  # stored before a bound it breaks was enforced
            return f"invalid event: {error}"
        try:
            self.fold.apply(event)
        except Conflict as error:
            return f"conflict: {error}"
        except Exception as error:
            log.exception("folding ledger row %d failed", seq)
            raise Poisoned(seq, f"processing failed: {type(error).__name__}: {error}") from error
        return None

    def _dead_letter(self, seq: int, raw: Any, reason: str) -> Outgoing:
        try:
            key: str | None = home_key(parse_event(raw, self.settings.currency))
        except ValueError:  # an event that does not parse has no home key; its dead letter needs none
            key = None
        headers = (("error", reason), ("source_topic", self.settings.topic(STREAM)), ("ledger_seq", str(seq)))
        return Outgoing(self.settings.topic(DEAD_LETTER), None, key, json.dumps(raw, default=str), headers)

    def _messages(self, message: dict) -> None:
        sender, seq = str(message["from"]), message["seq"]
        mark = self.marks.get(sender, 0)
        if seq <= mark:
            return
        if seq != mark + 1:
            raise Gap(f"partition {self.number}: messages {mark + 1} to {seq - 1} from partition {sender} "
                      "were not read")
        for received in message["messages"]:
            self.fold.receive(_received(received))
        self.marks[sender] = seq

    def _sends(self) -> list[Outgoing]:
        """The fold's messages for other partitions: stream messages per destination, numbered, each small
        enough for a broker's default 1 MB message size."""
        by_destination: dict[int, list[tuple]] = {}
        for message in self.fold.outbox:
            by_destination.setdefault(partition_of(message[1], self.count), []).append(message)
        self.fold.outbox.clear()
        outgoing = []
        for destination, messages in sorted(by_destination.items()):
            for first in range(0, len(messages), MESSAGES_PER_SEND):
                seq = self.sent[str(destination)] = self.sent.get(str(destination), 0) + 1
                value = json.dumps({"epoch": self.epoch, "from": self.number, "seq": seq,
                                    "messages": messages[first:first + MESSAGES_PER_SEND]}, default=str)
                outgoing.append(Outgoing(self.settings.topic(STREAM), destination, None, value))
        return outgoing
