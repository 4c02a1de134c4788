"""The ingest service: the ledger it writes to and the relay that publishes it, opened in a lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.background import running
from services.ingest.dead_letters import router as dead_letters_router
from services.ingest.routes import router
from services.ledger.relay import Relay
from services.lifespans import standalone
from services.settings import Settings
from services.store.dead_letters import DeadLetterStore
from services.store.ledger import LedgerStore
from services.web import add_health_check, service_app

__all__ = ["create_app", "ingest_lifespan"]


@asynccontextmanager
async def ingest_lifespan(app: FastAPI, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Give the ingest routes the ledger and the relay on `app.state`; publish while the app runs."""
    ledger = LedgerStore(sessions)
    relay = Relay(app.state.settings, ledger)
    app.state.ledger = ledger
    app.state.relay = relay
    app.state.dead_letters = DeadLetterStore(sessions)

    async with running(relay.run(), "relay") as task:

        async def relaying() -> bool | str:
            if task.done():
                return "the relay stopped"
            return True if relay.failing is None else f"the broker is unavailable ({relay.failing})"

        add_health_check(app, "kafka", relaying)
        yield


def create_app(settings: Settings) -> FastAPI:
    """The ingest service alone: `POST /v1/events`, the dead letters, `/healthz` and `/metrics`."""

    return service_app("Convergence ingest", settings, standalone(settings, ingest_lifespan), router,
                       dead_letters_router)
