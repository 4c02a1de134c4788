"""The query service: its read model started in a lifespan, and the app to run it alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.broker.topics import ensure_topics
from services.plan_routes import router as plans_router
from services.plans import PlansInForce, serving_plans
from services.query.read_model import ReadModel
from services.query.routes import router
from services.settings import Settings
from services.web import add_health_check, service_app
from services.webapp.router import webapp_router
from shared.plans import PlanSet

__all__ = ["create_app", "query_lifespan"]


@asynccontextmanager
async def query_lifespan(app: FastAPI, plans: PlansInForce) -> AsyncIterator[ReadModel]:
    """Give the query routes a started read model on `app.state` (the measures topic must exist); stop it on exit.

    `/healthz` fails until the model has caught up with the topic. The model's plans follow `plans`: each
    accepted reload swaps them, which drops its memoized results.
    """
    model = ReadModel(app.state.settings, plans.current)

    def swap(current: PlanSet) -> None:
        model.plans = current

    await model.start()
    unfollow = plans.follow(swap)  # with what is in force now, then at each reload
    app.state.read_model = model
    add_health_check(app, "measures", model.healthy)
    try:
        yield model
    finally:
        unfollow()
        await model.stop()


def create_app(settings: Settings, plans: PlansInForce) -> FastAPI:
    """The query service alone: the `/v1` read API and the plans in force, `/healthz`, `/metrics` and the web app
    (its pages that need another service say it is not here).

    It has no database: its own reloads of `plans` (it watches their directory) are logged, not audited; the
    settlement, watching the same directory, audits each change of it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)  # alone, it may start before the processor has created its topic
        async with serving_plans(app, plans, None), query_lifespan(app, plans):
            yield

    return service_app("Convergence query", settings, lifespan, router, plans_router, webapp_router())
