"""The settlement service: its closer opened in a lifespan, and the app to run it alone."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.broker.identity import BrokerIdentity
from services.broker.topics import SETTLEMENTS, inbound_topics
from services.lifespans import standalone
from services.plan_routes import router as plans_router
from services.plans import PlansInForce, serving_plans
from services.settings import Settings
from services.settlement.autoclose import closing_automatically
from services.settlement.closer import Closer
from services.settlement.routes import router
from services.store.audit import AuditLog
from services.store.database import reachable
from services.store.ledger import LedgerStore
from services.store.reading import wait_caught_up
from services.store.settlements import SettlementStore
from services.web import add_health_check, service_app
from shared.settlement import Settlement

__all__ = ["create_app", "settlement_lifespan"]

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _announcer(settings: Settings, producer: AIOKafkaProducer) -> Callable[[Settlement], Awaitable[None]]:
    async def announce(settlement: Settlement) -> None:
        """Publish `settlement.closed` (a CloudEvent) once the period is frozen."""
        event = {"specversion": "1.0", "id": f"settlement.closed/{settlement.period}",
                 "source": "convergence/settlement", "type": "settlement.closed",
                 "time": settlement.closed_at.isoformat(),
                 "data": {"period": settlement.period, "plan_hashes": settlement.plan_hashes,
                          "totals": {c: str(a) for c, a in settlement.totals.items()},
                          "statements": len(settlement.statements)}}
        try:
            await producer.send_and_wait(settings.topic(SETTLEMENTS), json.dumps(event).encode(),
                                         key=settlement.period.encode(),
                                         headers=[("content-type", b"application/cloudevents+json")])
        except KafkaError as error:  # the period is frozen either way; the announcement is a courtesy
            log.warning("settlement.closed for %s was not published: %s", settlement.period, error)
    return announce


@asynccontextmanager
async def settlement_lifespan(app: FastAPI, sessions: async_sessionmaker[AsyncSession], plans: PlansInForce,
                              catch_up: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[None]:
    """Give the settlement routes a closer, the store and the audit log on `app.state`.

    `catch_up` waits for the ledger; without one, the ledger is watched from here (it runs elsewhere).
    """
    settings: Settings = app.state.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.resolved_kafka_bootstrap,
                                enable_idempotence=settings.idempotent_producer, acks="all",
                                request_timeout_ms=settings.broker_timeout_ms)
    watcher = AIOKafkaConsumer(bootstrap_servers=settings.resolved_kafka_bootstrap,
                               request_timeout_ms=settings.broker_timeout_ms)
    identity = BrokerIdentity(settings)
    await producer.start()
    await watcher.start()
    ledger = LedgerStore(sessions)
    if catch_up is None:
        async def catch_up() -> None:
            await wait_caught_up(watcher, identity, ledger, inbound_topics(settings),
                                 settings.close_catch_up_timeout_s, settings.broker_timeout_ms / 1000)
    add_health_check(app, "database", lambda: reachable(sessions))
    app.state.settlements = SettlementStore(sessions)
    app.state.audit = AuditLog(sessions)
    app.state.clock = getattr(app.state, "clock", _now)
    app.state.closer = Closer(settings, plans, ledger, app.state.settlements, catch_up,
                              _announcer(settings, producer), app.state.clock)
    try:
        if settings.close_grace_hours is None:
            yield
        else:
            async with closing_automatically(app.state.closer, plans, timedelta(hours=settings.close_grace_hours),
                                             app.state.clock):
                yield
    finally:
        await identity.stop()
        await watcher.stop()
        await producer.stop()


def create_app(settings: Settings, plans: PlansInForce) -> FastAPI:
    """The settlement service alone, on a migrated database, with the ledger running elsewhere; it watches the
    plans directory and audits each reload."""

    @asynccontextmanager
    async def inner(app: FastAPI, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
        async with serving_plans(app, plans, sessions), settlement_lifespan(app, sessions, plans):
            yield

    return service_app("Convergence settlement", settings, standalone(settings, inner), router, plans_router)
