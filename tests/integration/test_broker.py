"""The embedded Tansu broker and topic provisioning, against the real binary."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.broker.embedded import BrokerStartError, embedded_broker, free_port
from services.broker.topics import delete_topics, ensure_topics
from services.settings import Settings
from tests.support.broker import broker_epoch

pytestmark = pytest.mark.integration

TOPICS = {"x.events.parties", "x.events.sales", "x.events.service", "x.events.referrals",
          "x.events.retention", "x.events.dead-letter", "x.measures", "x.settlements", "x.processor.stream"}


async def test_a_busy_port_is_refused_with_a_clear_error() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerStartError, match=f"127.0.0.1:{port} is already in use"):
            async with embedded_broker(port):
                pass


async def test_the_broker_is_gone_and_its_port_free_after_exit() -> None:
    port = free_port()
    async with embedded_broker(port) as bootstrap:
        assert bootstrap == f"127.0.0.1:{port}"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_ensure_topics_creates_every_topic_once_and_answers_the_epoch(tansu_bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=tansu_bootstrap, topic_prefix="x.", partitions=3)
    epoch = await ensure_topics(settings)
    assert epoch == await broker_epoch(settings) == await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=tansu_bootstrap)
    await admin.start()
    try:
        assert set(await admin.list_topics()) >= {*TOPICS, "x.broker.identity"}
        described = await admin.describe_topics(sorted(TOPICS))
    finally:
        await admin.close()
    assert {len(topic["partitions"]) for topic in described} == {3}


async def test_the_broker_gets_one_identity_whoever_creates_its_topics_and_a_new_one_once_they_are_gone(
        tansu_bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=tansu_bootstrap, topic_prefix="x.", partitions=1)
    assert await broker_epoch(settings) is None

    await asyncio.gather(*(ensure_topics(settings) for _ in range(3)))  # services starting together
    first = await broker_epoch(settings)
    await ensure_topics(settings)
    assert first is not None and await broker_epoch(settings) == first

    assert set(await delete_topics(settings, "x.processor-")) == {*TOPICS, "x.broker.identity"}
    async with asyncio.timeout(10):
        while await broker_epoch(settings) is not None:
            await asyncio.sleep(0.1)
    await ensure_topics(settings)
    assert await broker_epoch(settings) not in (None, first)
