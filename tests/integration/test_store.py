"""One contract suite for the store, run against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store import (
    IngestKeys,
    LedgerRow,
    LedgerStore,
    SettlementStateError,
    SettlementStore,
    create_engine,
    create_sessions,
    migrate,
)

pytestmark = pytest.mark.integration

CONSUMER = "test-consumer"
T0 = datetime(2026, 3, 14, 10, 22, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate(database_url)
    engine = create_engine(database_url)
    yield create_sessions(engine)
    await engine.dispose()


def row(event_id: str, offset: int, *, source: str = "crm", partition: int = 0) -> LedgerRow:
    return LedgerRow(source, event_id, "party.registered", T0, "events.parties", partition, offset,
                     f'{{"id": "{event_id}", "source": "{source}"}}')


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

    assert await ledger.append(batch, {("events.parties", 0): 2}, consumer=CONSUMER) == 2
    assert await ledger.append(batch, {("events.parties", 0): 5}, consumer=CONSUMER) == 0

    assert len(await stored_bodies(ledger)) == 2
    assert await ledger.positions(CONSUMER) == {("events.parties", 0): 5}


async def test_a_key_twice_within_one_batch_is_stored_once(sessions) -> None:
    ledger = LedgerStore(sessions)

    appended = await ledger.append([row("e-1", 0), row("e-1", 1), row("e-1", 2, source="erp")],
                                   {("events.parties", 0): 3}, consumer=CONSUMER)

    assert appended == 2
    assert await ledger.last_seq() > 0


async def test_positions_belong_to_their_consumer_and_partition(sessions) -> None:
    ledger = LedgerStore(sessions)

    await ledger.append([], {("a", 0): 3, ("a", 1): 7}, consumer=CONSUMER)
    await ledger.append([], {("a", 0): 9}, consumer="other")

    assert await ledger.positions(CONSUMER) == {("a", 0): 3, ("a", 1): 7}
    assert await ledger.positions("other") == {("a", 0): 9}
    assert await ledger.positions("nobody") == {}


async def test_rows_are_rolled_back_when_their_positions_cannot_be_stored(sessions) -> None:
    ledger = LedgerStore(sessions)

    with pytest.raises(IntegrityError):
        await ledger.append([row("e-1", 0)], {("events.parties", 0): None}, consumer=CONSUMER)  # type: ignore[dict-item]

    assert await stored_bodies(ledger) == []
    assert await ledger.positions(CONSUMER) == {}


async def test_iter_events_yields_the_ledger_in_seq_order_across_batches(sessions) -> None:
    ledger = LedgerStore(sessions)
    ids = [f"e-{n}" for n in range(7)]
    await ledger.append([row(i, n) for n, i in enumerate(ids[:4])], {}, consumer=CONSUMER)
    await ledger.append([row(i, n) for n, i in enumerate(ids[4:], 4)], {}, consumer=CONSUMER)

    entries = [entry async for entry in ledger.iter_events(batch=3)]

    assert [entry.body for entry in entries] == [row(i, 0).body for i in ids]
    assert [entry.seq for entry in entries] == sorted(entry.seq for entry in entries)
    assert entries[-1].seq == await ledger.last_seq()
    up_to = [entry.seq async for entry in ledger.iter_events(up_to_seq=entries[2].seq, batch=2)]
    assert up_to == [entry.seq for entry in entries[:3]]


async def test_an_empty_ledger_has_last_seq_zero(sessions) -> None:
    assert await LedgerStore(sessions).last_seq() == 0


async def test_claim_returns_only_keys_never_claimed_before(sessions) -> None:
    keys = IngestKeys(sessions)

    assert await keys.claim([("crm", "1"), ("crm", "2")]) == {("crm", "1"), ("crm", "2")}
    assert await keys.claim([("crm", "2"), ("crm", "3"), ("erp", "2")]) == {("crm", "3"), ("erp", "2")}
    assert await keys.claim([]) == set()


async def test_missing_accepted_counts_keys_accepted_until_then_and_not_yet_in_the_ledger(sessions) -> None:
    ledger = LedgerStore(sessions)
    await IngestKeys(sessions, clock=lambda: T0).claim([("crm", "1"), ("crm", "2")])
    await IngestKeys(sessions, clock=lambda: T0 + timedelta(seconds=1)).claim([("crm", "3")])

    assert await ledger.missing_accepted(T0) == 2
    await ledger.append([row("1", 0)], {}, consumer=CONSUMER)
    assert await ledger.missing_accepted(T0) == 1
    await ledger.append([row("2", 1)], {}, consumer=CONSUMER)
    assert await ledger.missing_accepted(T0) == 0
    assert await ledger.missing_accepted(T0 + timedelta(seconds=1)) == 1


async def test_a_key_repeated_within_one_claim_is_claimed_once(sessions) -> None:
    assert await IngestKeys(sessions).claim([("crm", "1"), ("crm", "1")]) == {("crm", "1")}


async def test_concurrent_claims_of_the_same_keys_claim_each_key_exactly_once(sessions) -> None:
    keys = IngestKeys(sessions)
    wanted = [("crm", str(n)) for n in range(50)]

    claims = await asyncio.gather(*(keys.claim(wanted) for _ in range(5)))

    claimed = [key for claim in claims for key in claim]
    assert sorted(claimed) == sorted(wanted)


async def test_released_keys_can_be_claimed_again(sessions) -> None:
    keys = IngestKeys(sessions)
    await keys.claim([("crm", "1"), ("crm", "2")])

    await keys.release([("crm", "1"), ("crm", "never-claimed")])

    assert await keys.claim([("crm", "1"), ("crm", "2")]) == {("crm", "1")}


async def test_a_saved_settlement_reads_back_with_its_times_in_utc(sessions) -> None:
    store = SettlementStore(sessions)
    closed_at = datetime(2026, 4, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))

    saved = await store.save("2026-03", closed_at, {"reps": "abc"}, '{"statements": []}', 42)

    assert saved == await store.get("2026-03")
    assert (saved.period, saved.status, saved.plan_hashes, saved.body, saved.event_seq) == (
        "2026-03", "closed", {"reps": "abc"}, '{"statements": []}', 42)
    assert saved.closed_at == closed_at and saved.closed_at.tzinfo == UTC
    assert saved.approved_at is None and saved.exported_at is None and saved.export_id is None
    assert await store.get("2026-04") is None


async def test_saving_a_closed_period_again_keeps_the_frozen_body(sessions) -> None:
    store = SettlementStore(sessions)
    first = await store.save("2026-03", T0, {"reps": "abc"}, '{"total": "1.00"}', 1)

    again = await store.save("2026-03", T0 + timedelta(days=1), {"reps": "xyz"}, '{"total": "9.99"}', 7)

    assert again == first == await store.get("2026-03")


async def test_a_settlement_is_approved_then_exported_once(sessions) -> None:
    store = SettlementStore(sessions)
    await store.save("2026-03", T0, {}, "{}", 1)
    with pytest.raises(SettlementStateError):
        await store.mark_exported("2026-03", "x-0", T0)

    approved = await store.approve("2026-03", T0 + timedelta(hours=1))
    exported = await store.mark_exported("2026-03", "x-1", T0 + timedelta(hours=2))
    pulled_again = await store.mark_exported("2026-03", "x-2", T0 + timedelta(hours=3))

    assert (approved.status, approved.approved_at) == ("approved", T0 + timedelta(hours=1))
    assert (exported.status, exported.export_id, exported.exported_at) == (
        "exported", "x-1", T0 + timedelta(hours=2))
    assert pulled_again == exported == await store.approve("2026-03", T0 + timedelta(hours=4))
    assert exported.body == "{}"


async def test_transitions_of_an_unclosed_period_are_refused(sessions) -> None:
    store = SettlementStore(sessions)

    with pytest.raises(SettlementStateError):
        await store.approve("2026-03", T0)
    with pytest.raises(SettlementStateError):
        await store.mark_exported("2026-03", "x-1", T0)


async def test_all_lists_settlements_by_period(sessions) -> None:
    store = SettlementStore(sessions)
    for period in ("2026-05", "2026-03", "2026-04"):
        await store.save(period, T0, {}, "{}", 1)

    assert [record.period for record in await store.all()] == ["2026-03", "2026-04", "2026-05"]
