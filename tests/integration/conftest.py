"""Fixtures of the integration tier: a real, private Tansu broker per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from services.broker.embedded import embedded_broker, free_port
from services.broker.topics import ensure_topics
from services.settings import Settings


@pytest.fixture
async def tansu_bootstrap() -> AsyncIterator[str]:
    """The bootstrap address of an in-memory Tansu broker that lives for one test."""
    async with embedded_broker(free_port()) as bootstrap:
        yield bootstrap


@pytest.fixture
async def broker_settings(tansu_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings on that broker, with its topics created (two partitions each) and a private data dir."""
    settings = Settings(kafka_bootstrap=tansu_bootstrap, partitions=2, data_dir=tmp_path,
                        kafka_idempotent_producer=False, _env_file=None)
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def producer(broker_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer on that broker."""
    producer = AIOKafkaProducer(bootstrap_servers=broker_settings.resolved_kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()
