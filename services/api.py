"""The whole HTTP API of SPEC §6 on one port: ingest, query and settlement, with the ledger in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from services.ingest.app import ingest_lifespan
from services.ingest.dead_letters import router as dead_letters_router
from services.ingest.routes import router as ingest_router
from services.ledger.app import ledger_lifespan
from services.plan_routes import router as plans_router
from services.plans import PlansInForce, serving_plans
from services.query.app import query_lifespan
from services.query.routes import router as query_router
from services.settings import Settings
from services.settlement.app import settlement_lifespan
from services.settlement.routes import router as settlement_router
from services.store.database import opened_database
from services.web import add_health_check, processor_check, service_app
from services.webapp.router import webapp_router

__all__ = ["create_api"]


def create_api(settings: Settings, plans: PlansInForce) -> FastAPI:
    """One app serving every route, and the web app at `/`.

    The query and the settlement evaluate the same `plans`: one watcher reloads them for both, and each reload
    is audited in the app's database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            sessions = await stack.enter_async_context(opened_database(settings.resolved_database_url))
            ledger = await stack.enter_async_context(ledger_lifespan(app, sessions))
            await stack.enter_async_context(serving_plans(app, plans, sessions))
            await stack.enter_async_context(ingest_lifespan(app, sessions))
            await stack.enter_async_context(query_lifespan(app, plans))
            await stack.enter_async_context(settlement_lifespan(
                app, sessions, plans, catch_up=lambda: ledger.wait_caught_up(settings.close_catch_up_timeout_s)))
            if settings.processor_health_url:
                add_health_check(app, "processor", processor_check(settings.processor_health_url))
            yield

    return service_app("Convergence", settings, lifespan, ingest_router, dead_letters_router, query_router,
                       settlement_router, plans_router, webapp_router())
