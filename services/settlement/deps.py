"""Dependency aliases of the settlement routes, resolved from `app.state` (filled by the lifespan)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.settlement.closer import Closer
from services.store.settlements import SettlementStore

__all__ = ["ClockDep", "CloserDep", "SettlementsDep"]


def get_closer(request: Request) -> Closer:
    return request.app.state.closer


def get_settlements(request: Request) -> SettlementStore:
    return request.app.state.settlements


def get_clock(request: Request) -> Callable[[], datetime]:
    return request.app.state.clock


CloserDep = Annotated[Closer, Depends(get_closer)]
SettlementsDep = Annotated[SettlementStore, Depends(get_settlements)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
