"""One contract suite for the store, run against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store import (
    DeadLetterStore,
    LedgerRow,
    LedgerStore,
    NewDeadLetter,
    SettlementStateError,
    SettlementStore,
    create_engine,
    create_sessions,
    migrate,
)
from services.store.processing import Checkpoint, ProcessorStore

pytestmark = pytest.mark.integration

CONSUMER = "test-consumer"
T0 = datetime(2026, 3, 14, 10, 22, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate(database_url)
    engine = create_engine(database_url)
    yield create_sessions(engine)
    await engine.dispose()


def row(event_id: str, offset: int | None = None, *, source: str = "crm", partition: int = 0,
        epoch: str | None = "log-1") -> LedgerRow:
    """A row read from log `epoch` at `offset`, or (offset None) one accepted over HTTP."""
    where = {} if offset is None else {"partition": partition, "offset": offset, "epoch": epoch}
    return LedgerRow(source, event_id, "party.registered", T0, "events.parties", event_id,
                     f'{{"id": "{event_id}", "source": "{source}"}}', **where)


async def stored_bodies(ledger: LedgerStore) -> list[str]:
    return [entry.body async for entry in ledger.iter_events()]


async def test_services_migrating_one_database_at_once_all_succeed(database_url: str) -> None:
    await asyncio.gather(*(migrate(database_url) for _ in range(4)))
    await migrate(database_url)


async def test_migrating_twice_changes_nothing(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)


async def test_appending_the_same_batch_twice_stores_it_once_and_advances_positions(sessions) -> None:
    ledger = LedgerStore(sessions)
    batch = [row("e-1", 0), row("e-2", 1)]

    assert await ledger.append(batch, {("events.parties", 0): 2}, consumer=CONSUMER, epoch="log-1") == 2
    assert await ledger.append(batch, {("events.parties", 0): 5}, consumer=CONSUMER, epoch="log-1") == 0

    assert len(await stored_bodies(ledger)) == 2
    assert await ledger.positions(CONSUMER, "log-1") == {("events.parties", 0): 5}


async def test_a_key_twice_within_one_batch_is_stored_once(sessions) -> None:
    ledger = LedgerStore(sessions)

    appended = await ledger.append([row("e-1", 0), row("e-1", 1), row("e-1", 2, source="erp")],
                                   {("events.parties", 0): 3}, consumer=CONSUMER, epoch="log-1")

    assert appended == 2
    assert await ledger.last_seq() > 0


async def test_positions_belong_to_their_consumer_log_and_partition(sessions) -> None:
    ledger = LedgerStore(sessions)

    await ledger.append([], {("a", 0): 3, ("a", 1): 7}, consumer=CONSUMER, epoch="log-1")
    await ledger.append([], {("a", 0): 9}, consumer="other", epoch="log-1")
    await ledger.append([], {("a", 0): 1}, consumer=CONSUMER, epoch="log-2")

    assert await ledger.positions(CONSUMER, "log-1") == {("a", 0): 3, ("a", 1): 7}
    assert await ledger.positions(CONSUMER, "log-2") == {("a", 0): 1}
    assert await ledger.positions("other", "log-1") == {("a", 0): 9}
    assert await ledger.positions("nobody", "log-1") == {}
    assert await ledger.positions(CONSUMER, "log-3") == {}


async def test_rows_are_rolled_back_when_their_positions_cannot_be_stored(sessions) -> None:
    ledger = LedgerStore(sessions)

    with pytest.raises(IntegrityError):
        await ledger.append([row("e-1", 0)], {("events.parties", 0): None},  # type: ignore[dict-item]
                            consumer=CONSUMER, epoch="log-1")

    assert await stored_bodies(ledger) == []
    assert await ledger.positions(CONSUMER, "log-1") == {}


async def test_iter_events_yields_the_ledger_in_seq_order_across_batches(sessions) -> None:
    ledger = LedgerStore(sessions)
    ids = [f"e-{n}" for n in range(7)]
    await ledger.append([row(i, n) for n, i in enumerate(ids[:4])])
    await ledger.append([row(i) for i in ids[4:]])

    entries = [entry async for entry in ledger.iter_events(batch=3)]

    assert [entry.body for entry in entries] == [row(i, 0).body for i in ids]
    assert [entry.seq for entry in entries] == sorted(entry.seq for entry in entries)
    assert entries[-1].seq == await ledger.last_seq()
    up_to = [entry.seq async for entry in ledger.iter_events(up_to_seq=entries[2].seq, batch=2)]
    assert up_to == [entry.seq for entry in entries[:3]]


async def test_an_empty_ledger_has_last_seq_zero(sessions) -> None:
    assert await LedgerStore(sessions).last_seq() == 0


async def test_the_relay_publishes_every_row_wherever_it_was_read(sessions) -> None:
    ledger = LedgerStore(sessions)
    await ledger.append([row("http-1"), row("kafka-1", 0, epoch="log-1"), row("kafka-2", 1, epoch="log-2")])

    rows, upto = await ledger.unpublished(0, 100)

    assert [json.loads(r.body)["id"] for r in rows] == ["http-1", "kafka-1", "kafka-2"]
    assert upto == await ledger.last_seq()
    assert (rows[0].topic, rows[0].key) == ("events.parties", "http-1")


async def test_the_relay_cursor_moves_per_log_and_never_back(sessions) -> None:
    ledger = LedgerStore(sessions)
    await ledger.append([row(f"e-{n}") for n in range(5)])
    first, upto = await ledger.unpublished(0, 2)
    assert upto == first[-1].seq  # a full page: the rest waits for the next round

    await ledger.move_relay_cursor("log-1", upto)
    await ledger.move_relay_cursor("log-1", upto - 1)

    assert await ledger.relay_cursor("log-1") == upto
    assert await ledger.relay_cursor("log-2") == 0
    rest, end = await ledger.unpublished(upto, 100)
    assert len(rest) == 3 and end == await ledger.last_seq()


async def test_concurrent_appends_of_the_same_events_store_each_once(sessions) -> None:
    ledger = LedgerStore(sessions)
    wanted = [row(str(n)) for n in range(50)]

    appended = await asyncio.gather(*(ledger.append(wanted) for _ in range(5)))

    assert sum(appended) == 50
    assert len(await stored_bodies(ledger)) == 50


async def test_dead_letters_are_stored_once_per_key_and_paged_oldest_first(sessions) -> None:
    letters = DeadLetterStore(sessions, clock=lambda: T0)
    new = [NewDeadLetter(f"k-{n}", f"reason {n}", f"value {n}", "events.sales", 0, n) for n in range(3)]

    assert await letters.add([*new, new[0]]) == 3
    assert await letters.add(new[1:]) == 0

    page = await letters.page(0, 2)
    assert [letter.reason for letter in page] == ["reason 0", "reason 1"]
    assert [letter.reason for letter in await letters.page(page[-1].id, 2)] == ["reason 2"]
    assert (await letters.get(page[0].id)) == page[0] and page[0].dead_lettered_at == T0
    assert await letters.get(10_000) is None


async def test_a_saved_settlement_reads_back_with_its_times_in_utc(sessions) -> None:
    store = SettlementStore(sessions)
    closed_at = datetime(2026, 4, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))

    saved = await store.save("2026-03", closed_at, {"reps": "abc"}, '{"statements": []}', 42, closed_by="alice")

    assert saved == await store.get("2026-03")
    assert (saved.period, saved.status, saved.plan_hashes, saved.body, saved.event_seq) == (
        "2026-03", "closed", {"reps": "abc"}, '{"statements": []}', 42)
    assert saved.closed_at == closed_at and saved.closed_at.tzinfo == UTC
    assert saved.approved_at is None and saved.exported_at is None and saved.export_id is None
    assert await store.get("2026-04") is None


async def test_saving_a_closed_period_again_keeps_the_frozen_body(sessions) -> None:
    store = SettlementStore(sessions)
    first = await store.save("2026-03", T0, {"reps": "abc"}, '{"total": "1.00"}', 1, closed_by="alice")

    again = await store.save("2026-03", T0 + timedelta(days=1), {"reps": "xyz"}, '{"total": "9.99"}', 7,
                             closed_by="alice")

    assert again == first == await store.get("2026-03")


async def test_a_settlement_is_approved_then_exported_once(sessions) -> None:
    store = SettlementStore(sessions)
    await store.save("2026-03", T0, {}, "{}", 1, closed_by="alice")
    with pytest.raises(SettlementStateError):
        await store.mark_exported("2026-03", "x-0", T0, by="payroll")

    approved = await store.approve("2026-03", T0 + timedelta(hours=1), by="bob")
    exported = await store.mark_exported("2026-03", "x-1", T0 + timedelta(hours=2), by="payroll")
    pulled_again = await store.mark_exported("2026-03", "x-2", T0 + timedelta(hours=3), by="payroll")

    assert (approved.status, approved.approved_at) == ("approved", T0 + timedelta(hours=1))
    assert (exported.status, exported.export_id, exported.exported_at) == (
        "exported", "x-1", T0 + timedelta(hours=2))
    assert pulled_again == exported == await store.approve("2026-03", T0 + timedelta(hours=4), by="bob")
    assert exported.body == "{}"


async def test_transitions_of_an_unclosed_period_are_refused(sessions) -> None:
    store = SettlementStore(sessions)

    with pytest.raises(SettlementStateError):
        await store.approve("2026-03", T0, by="bob")
    with pytest.raises(SettlementStateError):
        await store.mark_exported("2026-03", "x-1", T0, by="payroll")


async def test_all_lists_settlements_by_period(sessions) -> None:
    store = SettlementStore(sessions)
    for period in ("2026-05", "2026-03", "2026-04"):
        await store.save(period, T0, {}, "{}", 1, closed_by="alice")

    assert [record.period for record in await store.all()] == ["2026-03", "2026-04", "2026-05"]


# ---- the processor's partitions ------------------------------------------------------------------------------

async def test_a_partition_checkpointed_loads_as_written_and_only_by_its_version(sessions) -> None:
    store = ProcessorStore(sessions)
    assert (await store.load("log-1", 0)).version == 0  # never written
    first = Checkpoint({'["party","a"]': '["workforce",[]]', '["party","b"]': '["partner",[]]'}, 7,
                       {"ledger": 3}, {"1": 2}, '[["t",1,null,"m",[]]]')
    assert await store.checkpoint("log-1", 0, 0, first)
    assert not await store.checkpoint("log-1", 0, 0, first)  # another worker wrote version 1 meanwhile
    second = Checkpoint({'["party","a"]': None, '["party","c"]': '["customer",[]]'}, 9, {"ledger": 5}, {"1": 2}, None)
    assert await store.checkpoint("log-1", 0, 1, second)
    state = await store.load("log-1", 0)
    assert (state.version, state.next_offset, state.marks, state.sent, state.outbox) == (
        2, 9, {"ledger": 5}, {"1": 2}, [])
    assert state.records == {'["party","b"]': '["partner",[]]', '["party","c"]': '["customer",[]]'}
    assert (await store.load("log-1", 1)).records == {} and (await store.load("log-2", 0)).version == 0
    await store.forget_other_logs("log-2")
    assert (await store.load("log-1", 0)).version == 0
