"""The processor's state without Kafka: dedup, dead letters, and restoring as of the last complete batch."""

from __future__ import annotations

from services.broker.binding import encode, topic_for
from services.processor.state import MARKER, Inbound, ProcessorState
from services.settings import Settings
from shared.snapshot import encode_fold
from tests.support.events import registered, sale

SETTINGS = Settings(_env_file=None)


def message(event, offset: int) -> Inbound:
    key, value, headers = encode(event)
    return Inbound(topic_for(event.type, SETTINGS), 0, offset, key, value, headers)


def complete(state: ProcessorState, table: dict, messages: list[Inbound]) -> None:
    table[MARKER] = state.marker(state.process(messages))


def test_duplicates_and_poison_change_nothing() -> None:
    state = ProcessorState(SETTINGS, {})
    good = message(sale("o-1", "2026-03-02", "100"), 0)
    garbage = Inbound(good.topic, 0, 2, None, b"{", [])
    wrong = Inbound(good.topic, 0, 3, None, message(registered("ae-9"), 0).value, [])
    batch = state.process([good, Inbound(good.topic, 0, 1, good.key, good.value, good.headers), garbage, wrong])
    assert (batch.applied, batch.duplicates) == (1, 1)
    assert [r.reason.split(":")[0] for r in batch.rejected] == ["invalid event", "wrong topic"]
    assert "ae-9" not in state.fold.parties


def test_restore_rolls_back_a_batch_without_marker_and_skips_applied_offsets() -> None:
    table: dict[bytes, bytes] = {}
    first = ProcessorState(SETTINGS, table)
    complete(first, table, [message(sale("o-1", "2026-03-02", "100"), 0)])
    first.process([message(sale("o-2", "2026-03-03", "50"), 1)])  # crashed before its marker

    restored = ProcessorState(SETTINGS, table)
    assert restored.restore() > 0
    assert set(restored.fold.orders) == {"o-1"}
    replay = [message(sale("o-1", "2026-03-02", "100"), 0), message(sale("o-2", "2026-03-03", "50"), 1)]
    batch = restored.process(replay)
    assert (batch.replayed, batch.applied) == (1, 1)
    table[MARKER] = restored.marker(batch)

    again = ProcessorState(SETTINGS, table)
    assert again.restore() == 0
    assert set(again.fold.orders) == {"o-1", "o-2"}
    assert table[b'["relationship", "ae-1", "c-1"]'].split(b"\x00")[0] == str(batch.number).encode()


def test_missing_names_the_offsets_a_batch_skips_after_the_expected_one() -> None:
    state = ProcessorState(SETTINGS, {})
    events = [sale(f"o-{n}", "2026-03-02", "10") for n in range(10)]
    state.process([message(event, offset) for offset, event in enumerate(events[:3])])  # expects offset 3 next
    topic = message(events[0], 0).topic
    assert state.missing([message(events[n], n) for n in (1, 2, 3, 4)], {}) == {}  # replayed, then contiguous
    assert state.missing([message(events[n], n) for n in (3, 5, 6, 9)], {}) == {(topic, 0): (4, 9)}
    assert state.missing([message(events[n], n) for n in (6, 7)], {}) == {(topic, 0): (3, 7)}
    other = [Inbound("convergence.events.service", 1, offset, None, b"{}", []) for offset in (2, 3)]
    assert state.missing(other, {}) == {}  # a partition never read, its first offset unknown
    assert state.missing(other, {("convergence.events.service", 1): 0}) == {("convergence.events.service", 1): (0, 3)}


def test_an_event_the_fold_fails_on_is_dead_lettered_and_leaves_no_part_of_it() -> None:
    table: dict[bytes, bytes] = {}
    state = ProcessorState(SETTINGS, table)
    complete(state, table, [message(sale("o-1", "2026-03-02", "100"), 0)])
    reference = ProcessorState(SETTINGS, {})
    reference.process([message(sale("o-1", "2026-03-02", "100"), 0), message(sale("o-3", "2026-03-04", "7"), 3)])
    handlers = state.fold._handlers
    apply_sale = handlers["sale.closed"]

    def fail_half_way(event) -> None:  # a bug that strikes after part of the event is folded
        apply_sale(event)
        if event.data.order_id == "o-2":
            raise ArithmeticError("boom")

    handlers["sale.closed"] = fail_half_way
    poison = sale("o-2", "2026-03-03", "50")
    batch = state.process([message(poison, 1), message(sale("o-3", "2026-03-04", "7"), 3)])

    assert [r.reason for r in batch.rejected] == ["processing failed: ArithmeticError: boom"]
    assert batch.applied == 1 and set(state.fold.orders) == {"o-1", "o-3"}
    assert encode_fold(state.fold) == encode_fold(reference.fold)
    assert state.positions == {(message(sale("o-1", "2026-03-02", "1"), 0).topic, 0): 4}
    assert poison.key not in state.seen
