"""The ingest service: its producer and keys store opened in a lifespan, and the app to run it alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.routes import router
from services.lifespans import standalone
from services.settings import Settings
from services.store.keys import IngestKeys
from services.web import add_health_check, service_app

__all__ = ["create_app", "ingest_lifespan"]

HEALTH_TIMEOUT_S = 2.0


@asynccontextmanager
async def ingest_lifespan(app: FastAPI, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Give the ingest routes a started producer and the keys store on `app.state`; stop it on exit."""
    settings: Settings = app.state.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.resolved_kafka_bootstrap,
                                enable_idempotence=settings.kafka_idempotent_producer, acks="all",
                                request_timeout_ms=settings.publish_timeout_ms)
    await producer.start()

    async def broker_answers() -> bool:
        return await asyncio.wait_for(producer.client.force_metadata_update(), HEALTH_TIMEOUT_S)

    app.state.producer = producer
    app.state.ingest_keys = IngestKeys(sessions)
    add_health_check(app, "kafka", broker_answers)
    try:
        yield
    finally:
        await producer.stop()


def create_app(settings: Settings) -> FastAPI:
    """The ingest service alone: `POST /v1/events`, `/healthz` and `/metrics`, on a migrated database."""

    return service_app("Convergence ingest", settings, standalone(settings, ingest_lifespan), router)
