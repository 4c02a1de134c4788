"""One partition of the processor, without I/O: sequence marks, gaps, dead letters and a poisoned row."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.ledger.relay import stream_messages
from services.processor.partitions import LEDGER, MESSAGES_PER_SEND, Gap, Partition, Poisoned
from services.settings import Settings
from services.store.ledger import StoredEvent
from services.store.processing import PartitionState
from shared.events import Event
from shared.fold import Fold, home_key, partition_of
from tests.support.events import make_event
from tests.support.folds import measures

SETTINGS = Settings(_env_file=None)
EPOCH = "log-1"


def rows(*events: Event) -> list[StoredEvent]:
    """The ledger rows of `events`, seq 1, 2, …"""
    return [StoredEvent(seq, json.dumps(event.to_json_dict()), "", home_key(event))
            for seq, event in enumerate(events, 1)]


def sale_of(order_id: str, amount: str, id: str | None = None) -> Event:
    return make_event("sale.closed", "2026-03-02", id=id, order_id=order_id, customer_id="c-1", amount=amount,
                      currency="USD", credits=[{"party_id": "ae-1", "share": "1"}])


def one_partition() -> Partition:
    return Partition.loaded(SETTINGS, EPOCH, 0, 1, PartitionState())


def relayed(stored: list[StoredEvent], after: int = 0) -> list[bytes]:
    return stream_messages(EPOCH, stored, after, stored[-1].seq if stored else after, 1)[0]


def test_ledger_rows_it_has_are_skipped_and_a_conflict_is_dead_lettered() -> None:
    partition = one_partition()
    stored = rows(sale_of("o-1", "100"), sale_of("o-1", "5", id="again"))
    folded = partition.fold_batch(relayed(stored), 0)
    assert (folded.applied, folded.dead_letters, partition.marks[LEDGER]) == (1, 1, 2)
    letter = next(o for o in folded.outgoing if o.topic.endswith("dead-letter"))
    assert dict(letter.headers)["error"].startswith("conflict:") and json.loads(letter.value)["id"] == "again"
    again = partition.fold_batch(relayed(stored), 0)  # published twice: nothing more
    assert (again.applied, again.dead_letters, again.checkpoint.records) == (0, 0, {})


def test_a_ledger_range_after_a_missing_one_is_a_gap_unless_it_was_meant_for_another_log() -> None:
    stored = rows(sale_of("o-1", "100"), sale_of("o-2", "5"))
    with pytest.raises(Gap):
        one_partition().fold_batch(relayed(stored[1:], after=1), 0)
    stray = stream_messages("log-0", stored[1:], 1, 2, 1)[0]
    assert one_partition().fold_batch(stray, 0).applied == 0


def test_messages_from_a_partition_apply_once_and_in_order() -> None:
    partition = one_partition()
    message = {"epoch": EPOCH, "from": 3, "seq": 1, "messages": [["seen", "c-9", "customer"]]}
    partition.fold_batch([json.dumps(message).encode()] * 2, 0)
    assert partition.marks["3"] == 1 and partition.fold.parties["c-9"].kind == "customer"
    with pytest.raises(Gap):
        partition.fold_batch([json.dumps({**message, "seq": 3}).encode()], 0)


class FailsOn:
    """A fold that raises, as a bug would, after applying the sale of one order (so it holds part of it)."""

    def __init__(self, order_id: str, fold: Fold) -> None:
        self._order_id, self._fold = order_id, fold

    def apply(self, event: Event) -> None:
        self._fold.apply(event)
        if event.data.order_id == self._order_id:
            raise RuntimeError("boom")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fold, name)


def test_a_row_the_fold_fails_on_is_dead_lettered_and_keeps_no_part(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = rows(sale_of("o-1", "100"), sale_of("o-2", "7"), sale_of("o-3", "1"))
    failing = one_partition()
    monkeypatch.setattr(failing, "fold", FailsOn("o-2", failing.fold))
    with pytest.raises(Poisoned) as poisoned:
        failing.fold_batch(relayed(stored), 0)
    assert poisoned.value.seq == 2

    fresh = one_partition()  # as loaded again from the last checkpoint
    folded = fresh.fold_batch(relayed(stored), 0, {2: poisoned.value.reason})
    assert (folded.applied, folded.dead_letters) == (2, 1)
    assert "o-2" not in fresh.fold.orders
    assert measures(fresh.fold, "ae-1")["revenue"] == 101


def test_what_a_batch_sends_one_partition_is_split_into_numbered_messages_of_bounded_size() -> None:
    sender = Partition.loaded(SETTINGS, EPOCH, 0, 2, PartitionState())
    remote = next(f"c-{n}" for n in range(100) if partition_of(f"c-{n}", 2) == 1)
    sender.fold.outbox.extend(("seen", remote, "customer") for _ in range(MESSAGES_PER_SEND * 2 + 1))
    sent = sender.fold_batch([], 0).outgoing
    stream = [json.loads(o.value) for o in sent if o.partition == 1]
    assert [m["seq"] for m in stream] == [1, 2, 3]
    assert [len(m["messages"]) for m in stream] == [MESSAGES_PER_SEND, MESSAGES_PER_SEND, 1]
    assert sender.sent == {"1": 3}
