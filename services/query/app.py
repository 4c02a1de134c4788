"""The query service: its read model started in a lifespan, and the app to run it alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.broker.topics import ensure_topics
from services.query.read_model import ReadModel
from services.query.routes import router
from services.settings import Settings
from services.web import add_health_check, service_app
from shared.plans import PlanSet

__all__ = ["create_app", "query_lifespan"]


@asynccontextmanager
async def query_lifespan(app: FastAPI, plans: PlanSet) -> AsyncIterator[ReadModel]:
    """Give the query routes a started read model on `app.state` (the measures topic must exist); stop it on exit.

    `/healthz` fails until the model has caught up with the topic. Swap `read_model.plans` to change plans.
    """
    model = ReadModel(app.state.settings, plans)
    await model.start()
    app.state.read_model = model
    add_health_check(app, "measures", model.healthy)
    try:
        yield model
    finally:
        await model.stop()


def create_app(settings: Settings, plans: PlanSet) -> FastAPI:
    """The query service alone: the `/v1` read API, `/healthz` and `/metrics`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)  # alone, it may start before the processor has created its topic
        async with query_lifespan(app, plans):
            yield

    return service_app("Convergence query", settings, lifespan, router)
