"""`POST /v1/events` against a real Tansu broker and a real SQLite ledger: written, then published."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.auth import create_token
from services.broker.embedded import embedded_broker, free_port
from services.broker.topics import STREAM, ensure_topics
from services.ingest.app import create_app
from services.settings import Settings
from services.store import LedgerStore, create_engine, create_sessions, migrate
from shared.fold import partition_of

pytestmark = pytest.mark.integration

TIME = "2026-03-14T10:22:00Z"
SALE = {"order_id": "o-1", "customer_id": "c-1", "amount": "250.00", "currency": "USD",
        "credits": [{"party_id": "ae-1", "share": 1}]}


def event(event_id: str, event_type: str = "sale.closed", data: dict | None = None) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "crm", "type": event_type, "time": TIME,
            "data": SALE if data is None else data}


def settings_for(bootstrap: str, tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, database_url=f"sqlite+aiosqlite:///{tmp_path}/convergence.db",
                    tokens_file=tmp_path / "tokens.json", topic_prefix="test.", partitions=2,
                    broker_timeout_ms=1000, kafka_idempotent_producer=False)


@asynccontextmanager
async def running_ingest(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(settings.resolved_database_url)
    await ensure_topics(settings)
    token = create_token(settings.resolved_tokens_file, ["events:write"])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            yield client


@pytest.fixture
def settings(tansu_bootstrap: str, tmp_path: Path) -> Settings:
    return settings_for(tansu_bootstrap, tmp_path)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_ingest(settings) as client:
        yield client


async def published(settings: Settings, count: int, *, distinct: bool = False) -> list[tuple[int, dict]]:
    """The first `count` events (`distinct`: of distinct ids) the relay published into the processor's stream
    (soon after the 202), each with its stream partition."""
    partitions = [TopicPartition(settings.topic(STREAM), p) for p in range(settings.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=settings.fetch_max_wait_ms)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        events: list[tuple[int, dict]] = []
        async with asyncio.timeout(10):
            while len(set(ids(events)) if distinct else events) < count:
                for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                    events += [(tp.partition, event) for r in batch for _, event in json.loads(r.value)["events"]]
        return events
    finally:
        await consumer.stop()


async def in_ledger(settings: Settings) -> list[str]:
    """The ids in the ledger, in ledger order: what has been acknowledged."""
    engine = create_engine(settings.resolved_database_url)
    try:
        return [json.loads(entry.body)["id"] async for entry in LedgerStore(create_sessions(engine)).iter_events()]
    finally:
        await engine.dispose()


def ids(events: list[tuple[int, dict]]) -> list[str]:
    return sorted(event["id"] for _, event in events)


async def test_a_structured_event_is_published_to_the_partition_of_its_key(
        http: httpx.AsyncClient, settings: Settings) -> None:
    response = await http.post("/v1/events", content=json.dumps(event("e-1")),
                               headers={"Content-Type": "application/cloudevents+json"})
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "duplicates": 0})
    assert await in_ledger(settings) == ["e-1"]
    [(partition, published_event)] = await published(settings, 1)
    assert partition == partition_of("o-1", settings.partitions)
    assert published_event["data"]["amount"] == "250.00"


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", [event("e-1"), event("e-2")]),
    ("application/cloudevents-batch+json", [event("e-1"), event("e-2")]),
])
async def test_arrays_and_batches_are_accepted_whole(
        http: httpx.AsyncClient, settings: Settings, content_type: str, body: list) -> None:
    response = await http.post("/v1/events", content=json.dumps(body), headers={"Content-Type": content_type})
    assert response.json() == {"accepted": 2, "duplicates": 0}
    assert ids(await published(settings, 2)) == ["e-1", "e-2"]


async def test_a_binary_mode_event_is_accepted(http: httpx.AsyncClient, settings: Settings) -> None:
    headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "e-9",
               "ce-source": "crm", "ce-type": "sale.closed", "ce-time": TIME}
    response = await http.post("/v1/events", content=json.dumps(SALE), headers=headers)
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "duplicates": 0})
    assert ids(await published(settings, 1)) == ["e-9"]


async def test_duplicates_within_and_across_requests_are_published_once(
        http: httpx.AsyncClient, settings: Settings) -> None:
    first = await http.post("/v1/events", json=[event("e-1"), event("e-1"), event("e-2")])
    again = await http.post("/v1/events", json=[event("e-2"), event("e-3"), event("e-1")])
    assert first.json() == {"accepted": 2, "duplicates": 1}
    assert again.json() == {"accepted": 1, "duplicates": 2}
    assert await in_ledger(settings) == ["e-1", "e-2", "e-3"]
    assert ids(await published(settings, 3)) == ["e-1", "e-2", "e-3"]


async def test_one_invalid_event_rejects_the_whole_request(
        http: httpx.AsyncClient, settings: Settings) -> None:
    negative = {**SALE, "amount": "-5"}
    body = [event("e-1"), event("e-2", data=negative), event("e-3", "sale.exploded"), "junk",
            {**event("e-5"), "id": 5.5}]
    response = await http.post("/v1/events", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["index"], e["id"]) for e in errors] == [(1, "e-2"), (2, "e-3"), (3, None), (4, None)]
    assert "data.amount: must not be negative" in errors[0]["error"]
    assert "unknown event type" in errors[1]["error"]
    assert await in_ledger(settings) == []
    retried = await http.post("/v1/events", json=event("e-1"))
    assert retried.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize(("event_type", "data", "key"), [
    ("party.registered", {"party_id": "ae-1", "kind": "workforce"}, "ae-1"),
    ("sale.reversed", {"order_id": "o-7"}, "o-7"),
    ("service.case_resolved", {"case_id": "k-1", "customer_id": "c-4", "resolver_id": "sa-1",
                               "first_contact": False}, "c-4"),
    ("survey.responded", {"survey_id": "s-1", "customer_id": "c-5", "about_id": "sa-1", "csat": 4}, "c-5"),
    ("referral.made", {"referral_id": "r-1", "referrer_id": "p-1", "prospect_id": "c-2"}, "r-1"),
    ("retention.churned", {"contract_id": "k-9", "customer_id": "c-6", "arr": 10}, "c-6"),
])
async def test_each_event_goes_to_the_partition_of_its_home_key(
        http: httpx.AsyncClient, settings: Settings, event_type: str, data: dict, key: str) -> None:
    assert (await http.post("/v1/events", json=event("e-1", event_type, data))).status_code == 202
    [(partition, _)] = await published(settings, 1)
    assert partition == partition_of(key, settings.partitions)


async def test_without_a_valid_token_or_scope_nothing_is_accepted(
        http: httpx.AsyncClient, settings: Settings) -> None:
    reader = create_token(settings.resolved_tokens_file, ["scorecards:read"])
    anonymous = await http.post("/v1/events", json=event("e-1"), headers={"Authorization": ""})
    forbidden = await http.post("/v1/events", json=event("e-1"),
                                headers={"Authorization": f"Bearer {reader}"})
    assert (anonymous.status_code, forbidden.status_code) == (401, 403)
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert await in_ledger(settings) == []


async def test_a_request_too_large_or_unreadable_is_refused(http: httpx.AsyncClient) -> None:
    too_many = await http.post("/v1/events", json=[event(f"e-{n}") for n in range(10_001)])
    unreadable = await http.post("/v1/events", content=b"{", headers={"Content-Type": "application/json"})
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (413, "payload_too_large")
    assert (unreadable.status_code, unreadable.json()["error"]["code"]) == (400, "bad_request")


async def test_while_the_broker_is_away_events_are_acknowledged_and_reach_the_broker_that_comes_back(
        tmp_path: Path) -> None:
    port = free_port()
    async with AsyncExitStack() as first_broker:
        settings = settings_for(await first_broker.enter_async_context(embedded_broker(port)), tmp_path)
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(running_ingest(settings))
            assert (await http.post("/v1/events", json=event("e-0"))).status_code == 202
            assert ids(await published(settings, 1)) == ["e-0"]
            await first_broker.aclose()  # the embedded broker's log is gone with it

            away = await http.post("/v1/events", json=event("e-1", data={**SALE, "order_id": "o-2"}))
            assert (away.status_code, away.json()) == (202, {"accepted": 1, "duplicates": 0})
            assert await in_ledger(settings) == ["e-0", "e-1"]

            async with embedded_broker(port):  # a new, empty broker at the same address
                # at least once: a send in flight as the broker went may arrive too, and readers deduplicate
                assert set(ids(await published(settings, 2, distinct=True))) == {"e-0", "e-1"}
