"""The ledger service: its consumer opened in a lifespan, and the app to run it alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.consumer import LedgerService
from services.lifespans import standalone
from services.settings import Settings
from services.web import add_health_check, service_app

__all__ = ["create_app", "ledger_lifespan"]


@asynccontextmanager
async def ledger_lifespan(app: FastAPI, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[LedgerService]:
    """Append the inbound topics to the ledger while the app runs; `/healthz` fails if the loop stops."""
    service = LedgerService.on(app.state.settings, sessions)
    await service.start()

    add_health_check(app, "ledger", service.health)
    try:
        yield service
    finally:
        await service.stop()


def create_app(settings: Settings) -> FastAPI:
    """The ledger alone, with `/healthz` and `/metrics`."""

    return service_app("Convergence ledger", settings, standalone(settings, ledger_lifespan))
