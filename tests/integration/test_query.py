"""The query service against a real Tansu broker: measures-topic records in, live answers out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.broker.topics import MEASURES, ensure_topics
from services.plans import PlansInForce
from services.query.app import create_app
from services.query.deps import get_now
from services.query.read_model import ReadModel
from services.records import MEASURE_KINDS, record_message
from services.settings import Settings
from shared.fold import Fold
from shared.snapshot import record_keys
from tests.support.events import registered, sale
from tests.support.folds import fold_of
from tests.support.plans import plan_set, plans_dir

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
PLAN = """
plan: ae-flat
applies_to: {kind: workforce}
components:
  - {name: commission, type: rate, base: net_revenue, rate: 0.1}
"""
PLANS = plan_set(PLAN)


@pytest.fixture
def settings(tansu_bootstrap: str, tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap=tansu_bootstrap, data_dir=tmp_path, topic_prefix="test.", partitions=2,
                    auth=False, kafka_idempotent_producer=False)


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish(producer: AIOKafkaProducer, settings: Settings, fold: Fold,
                  keys: Iterable[tuple[str, ...]] | None = None) -> int:
    """Publish records of `fold` (default: every party and relationship) as the processor does; how many."""
    wanted = [key for key in record_keys(fold) if key[0] in MEASURE_KINDS] if keys is None else list(keys)
    for key in wanted:
        message_key, value = record_message(fold, key)
        await producer.send_and_wait(settings.topic(MEASURES), value, key=message_key)
    return len(wanted)


@asynccontextmanager
async def running_query(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The query service alone, its lifespan started, its clock pinned to `NOW`."""
    app = create_app(settings, PlansInForce.load(plans_dir(settings.data_dir / "plans", PLAN)))
    app.dependency_overrides[get_now] = lambda: NOW
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://test") as client:
        yield client


@pytest.fixture
async def http(settings: Settings, producer: AIOKafkaProducer) -> AsyncIterator[httpx.AsyncClient]:
    async with running_query(settings) as client:
        yield client


async def until(http: httpx.AsyncClient, path: str, holds: Callable[[httpx.Response], bool],
                timeout_s: float = 15) -> httpx.Response:
    """Poll `path` until its response satisfies `holds`."""
    async with asyncio.timeout(timeout_s):
        while not holds(response := await http.get(path)):
            await asyncio.sleep(0.02)
    return response


async def test_query_is_ready_once_it_has_read_what_was_published_before_it_started(
        settings: Settings, producer: AIOKafkaProducer) -> None:
    events = [registered("ae-1"), sale("o-1", "2026-03-03", "1000.00"), sale("o-2", "2026-03-04", "250.00")]
    await publish(producer, settings, fold_of(events))
    async with running_query(settings) as http:
        await until(http, "/healthz", lambda response: response.status_code == 200)
        # ready means caught up: no polling needed for data published before the start
        scorecard = (await http.get("/v1/scorecards/ae-1")).json()
        metrics = (await http.get("/metrics")).text
    assert scorecard["earnings"]["total"] == "125.00"
    assert "convergence_query_records_total" in metrics
    assert "convergence_query_request_seconds_count{route=\"/v1/scorecards/{party_id}\"}" in metrics


async def test_read_model_is_ready_only_once_it_holds_what_was_published_before_it_started(
        settings: Settings, producer: AIOKafkaProducer) -> None:
    fold = fold_of(sale(f"o-{n}", "2026-03-03", "10.00", customer=f"c-{n}") for n in range(300))
    published = await publish(producer, settings, fold)
    model = ReadModel(settings, PLANS, max_records=10)  # many batches: readiness must wait for the last
    await model.start()
    try:
        async with asyncio.timeout(15):
            while not await model.healthy():
                await asyncio.sleep(0)  # yield to the consumer only: the check below runs right after it is ready
        assert len(model.fold.relationships["ae-1"]) == 300
        assert sum(model.positions.values()) == published  # a fresh topic: offsets count the records
    finally:
        await model.stop()


async def test_query_follows_new_records_and_tombstones(settings: Settings, producer: AIOKafkaProducer,
                                                       http: httpx.AsyncClient) -> None:
    fold = fold_of([registered("ae-1"), sale("o-1", "2026-03-03", "1000.00")])
    await publish(producer, settings, fold)
    first = await until(http, "/v1/relationships/ae-1/c-1", lambda response: response.status_code == 200)
    assert first.json()["measures"]["revenue"] == "1000"

    fold.apply(sale("o-2", "2026-03-05", "300.00", customer="c-2"))
    fold.apply(sale("o-3", "2026-03-06", "200.00"))
    await publish(producer, settings, fold, [("relationship", "ae-1", "c-1"), ("relationship", "ae-1", "c-2")])
    updated = await until(http, "/v1/scorecards/ae-1",
                          lambda response: response.json()["earnings"]["total"] == "150.00")
    assert updated.json()["metrics"] == []  # no scorecard applies

    await producer.send_and_wait(settings.topic(MEASURES), None,
                                 key=record_message(fold, ("relationship", "ae-1", "c-2"))[0])
    gone = await until(http, "/v1/relationships/ae-1/c-2", lambda response: response.status_code == 404)
    assert gone.json()["error"]["code"] == "not_found"
    listed = (await http.get("/v1/relationships/ae-1")).json()
    assert [r["counterparty_id"] for r in listed["relationships"]] == ["c-1"]
