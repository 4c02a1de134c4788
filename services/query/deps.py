"""What the query routes depend on, as one dependency (`ReadingDep`), and the route class that times them.

FastAPI solves every dependency of a route on every request, at a cost per dependency, so the replica,
the settings, the clock and the period asked for come as one. Each is an `async` function: FastAPI runs a
plain `def` dependency (a class too) in its thread pool, a hop per dependency and request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from services.query.metrics import REQUEST_SECONDS
from services.query.read_model import ReadModel
from services.settings import Settings
from services.web import ApiError, PeriodQuery
from shared.periods import Period

__all__ = ["Reading", "ReadingDep", "TimedRoute", "get_now", "get_reading"]


async def get_now() -> datetime:
    """The current time, UTC; tests override this dependency to pin the clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    """What a query reads: the replica and the settings, the time now and the period asked for, if any."""

    model: ReadModel
    settings: Settings
    now: datetime
    period: Period | None


async def get_reading(request: Request, now: Annotated[datetime, Depends(get_now)],
                      period: PeriodQuery = None) -> Reading:
    """The replica (started by the lifespan) and settings from `app.state`, the time (`get_now`) and the
    `period` query parameter, parsed: a malformed or out-of-range one is a 422."""
    try:
        parsed = None if period is None else Period.parse(period)
    except ValueError as error:
        raise ApiError(422, f"query.period: {error}") from None
    return Reading(request.app.state.read_model, request.app.state.settings, now, parsed)


ReadingDep = Annotated[Reading, Depends(get_reading)]


class TimedRoute(APIRoute):
    """A route that observes its time to answer under its path template (`REQUEST_SECONDS`).

    A route class rather than a dependency with `yield`: FastAPI enters those in an exit stack, at a
    cost on every request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler, seconds = super().get_route_handler(), REQUEST_SECONDS.labels(self.path)

        async def timed(request: Request) -> Response:
            start = time.perf_counter()
            try:
                return await handler(request)
            finally:
                seconds.observe(time.perf_counter() - start)

        return timed
