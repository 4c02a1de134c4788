"""Dependency aliases of the settlement routes, resolved from `app.state` (filled by the lifespan)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.settlement.closer import Closer
from services.store.audit import AuditLog
from services.store.settlements import SettlementStore

__all__ = ["AuditDep", "ClockDep", "CloserDep", "SettlementsDep"]


def get_closer(request: Request) -> Closer:
    return request.app.state.closer


def get_settlements(request: Request) -> SettlementStore:
    return request.app.state.settlements


def get_clock(request: Request) -> Callable[[], datetime]:
    return request.app.state.clock


def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


CloserDep = Annotated[Closer, Depends(get_closer)]
SettlementsDep = Annotated[SettlementStore, Depends(get_settlements)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
