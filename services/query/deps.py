"""Dependency aliases of the query routes: the read model (from `app.state`), the clock, the period asked for."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from services.query.metrics import REQUEST_SECONDS
from services.query.read_model import ReadModel
from services.web import ApiError, PeriodQuery
from shared.periods import Period

__all__ = ["NowDep", "PeriodDep", "ReadModelDep", "get_now", "timed"]


def get_read_model(request: Request) -> ReadModel:
    """The replica every query reads, started by the lifespan."""
    return request.app.state.read_model


def get_now() -> datetime:
    """The current time, UTC; tests override this dependency to pin the clock."""
    return datetime.now(UTC)


def requested_period(period: PeriodQuery = None) -> Period | None:
    """The `period` query parameter, parsed; a malformed or out-of-range one is a 422."""
    if period is None:
        return None
    try:
        return Period.parse(period)
    except ValueError as error:
        raise ApiError(422, f"query.period: {error}") from None


async def timed(request: Request) -> AsyncIterator[None]:
    """Observe the time to answer under the route's path template."""
    start = time.perf_counter()
    try:
        yield
    finally:
        REQUEST_SECONDS.labels(request.scope["route"].path).observe(time.perf_counter() - start)


ReadModelDep = Annotated[ReadModel, Depends(get_read_model)]
NowDep = Annotated[datetime, Depends(get_now)]
PeriodDep = Annotated[Period | None, Depends(requested_period)]
