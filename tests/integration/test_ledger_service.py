"""The ledger service against the real embedded broker and a SQLite ledger."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from services.broker.binding import encode, topic_for
from services.broker.embedded import embedded_broker, free_port
from services.broker.topics import ensure_topics
from services.ledger.consumer import LedgerService
from services.settings import Settings
from services.store import DeadLetterStore, LedgerStore, create_engine, create_sessions, migrate
from services.store.reading import LEDGER_GROUP
from shared.events import parse_event
from tests.support.broker import broker_epoch

pytestmark = pytest.mark.integration

CATCH_UP_TIMEOUT_S = 30


def party(event_id: str, party_id: str = "rep-1") -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "hr", "type": "party.registered",
            "time": "2026-03-14T11:22:00+01:00", "data": {"party_id": party_id, "kind": "workforce"}}


@pytest.fixture
def settings(broker_settings: Settings) -> Settings:
    return broker_settings


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator:
    await migrate(settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    yield create_sessions(engine)
    await engine.dispose()


@pytest.fixture
def ledger(sessions) -> LedgerStore:
    return LedgerStore(sessions)


async def publish(producer: AIOKafkaProducer, settings: Settings, raw: dict) -> None:
    event = parse_event(raw)
    key, value, headers = encode(event)
    await producer.send_and_wait(topic_for(event.type, settings), value, key=key, headers=headers)


async def run_until_caught_up(settings: Settings, sessions) -> None:
    service = LedgerService.on(settings, sessions)
    await service.start()
    try:
        await service.wait_caught_up(CATCH_UP_TIMEOUT_S)
        assert await service.health() is True
    finally:
        await service.stop()


async def stored(ledger: LedgerStore) -> dict[tuple[str, str], dict]:
    bodies = [json.loads(entry.body, parse_float=Decimal) async for entry in ledger.iter_events()]
    keys = [(body["source"], body["id"]) for body in bodies]
    assert len(keys) == len(set(keys)), "a key is stored twice"
    return dict(zip(keys, bodies, strict=True))


def duplicates() -> float:
    return REGISTRY.get_sample_value("convergence_ledger_duplicates_total") or 0.0


async def test_valid_events_of_both_modes_are_stored_once_and_bad_ones_dead_lettered(
        settings: Settings, ledger: LedgerStore, sessions, producer: AIOKafkaProducer) -> None:
    parties, sales = settings.topic("events.parties"), settings.topic("events.sales")
    for event_id in ("p-1", "p-2", "p-1"):
        await publish(producer, settings, party(event_id))
    binary_headers = [("ce_specversion", b"1.0"), ("ce_id", b"s-1"), ("ce_source", b"crm"),
                      ("ce_type", b"sale.closed"), ("ce_time", b"2026-03-14T10:22:00Z"),
                      ("content-type", b"application/json")]
    sale_data = (b'{"order_id": "o-1", "customer_id": "c-1", "amount": 1234.10, "currency": "USD",'
                 b' "credits": [{"party_id": "rep-1", "share": 1}]}')
    await producer.send_and_wait(sales, sale_data, key=b"o-1", headers=binary_headers)
    await producer.send_and_wait(sales, b"{not json", key=b"o-2")
    await producer.send_and_wait(sales, json.dumps({**party("p-3"), "type": "sale.closed"}).encode())
    await producer.send_and_wait(sales, encode(parse_event(party("p-4")))[1])  # a party on the sales topic
    duplicates_before = duplicates()

    await run_until_caught_up(settings, sessions)

    events = await stored(ledger)
    assert set(events) == {("hr", "p-1"), ("hr", "p-2"), ("crm", "s-1")}
    assert duplicates() - duplicates_before == 1
    assert parse_event(events[("crm", "s-1")]).data.amount == Decimal("1234.10")
    assert parse_event(events[("hr", "p-1")]).time.isoformat() == "2026-03-14T10:22:00+00:00"
    positions = await ledger.positions(LEDGER_GROUP, await broker_epoch(settings))
    assert sum(offset for (topic, _), offset in positions.items() if topic == parties) == 3
    assert sum(offset for (topic, _), offset in positions.items() if topic == sales) == 4
    letters = await DeadLetterStore(sessions).page(0, 10)
    assert sorted((letter.topic, letter.reason.split(":")[0]) for letter in letters) == [
        (sales, "invalid event"), (sales, "invalid event"), (sales, "invalid event")]
    assert {letter.value for letter in letters} >= {"{not json"}


async def test_a_restarted_service_resumes_where_the_ledger_left_off(
        settings: Settings, ledger: LedgerStore, sessions, producer: AIOKafkaProducer) -> None:
    for event_id in ("p-1", "p-2"):
        await publish(producer, settings, party(event_id))
    await run_until_caught_up(settings, sessions)
    first_seq = await ledger.last_seq()
    await publish(producer, settings, party("p-3"))
    await publish(producer, settings, party("p-1"))  # resent by its source
    duplicates_before = duplicates()

    await run_until_caught_up(settings, sessions)

    assert set(await stored(ledger)) == {("hr", "p-1"), ("hr", "p-2"), ("hr", "p-3")}
    assert duplicates() - duplicates_before == 1  # only the resent one: nothing stored is read again
    assert [entry.seq async for entry in ledger.iter_events()][-1] == first_seq + 1


async def test_a_broker_that_lost_its_log_is_read_from_its_start_not_at_the_old_offsets(
        ledger: LedgerStore, sessions, tmp_path) -> None:
    port = free_port()
    async with embedded_broker(port) as bootstrap:
        settings = Settings(kafka_bootstrap=bootstrap, partitions=1, data_dir=tmp_path,
                            kafka_idempotent_producer=False, _env_file=None)
        await ensure_topics(settings)
        first_epoch = await broker_epoch(settings)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        for event_id in ("p-1", "p-2", "p-3"):
            await publish(producer, settings, party(event_id))
        await producer.stop()
        await run_until_caught_up(settings, sessions)
    async with embedded_broker(port):  # the same address, an empty log
        await ensure_topics(settings)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        await publish(producer, settings, party("p-4"))  # offset 0 of the new log, below the stored 3
        await producer.stop()
        await run_until_caught_up(settings, sessions)
        second_epoch = await broker_epoch(settings)

    assert second_epoch not in (None, first_epoch)
    assert set(await stored(ledger)) == {("hr", f"p-{n}") for n in range(1, 5)}
    assert await ledger.positions(LEDGER_GROUP, second_epoch) == {(settings.topic("events.parties"), 0): 1}
