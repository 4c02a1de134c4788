"""Dependency aliases of the ingest routes, resolved from `app.state` (filled by the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.ledger.relay import Relay
from services.store.dead_letters import DeadLetterStore
from services.store.ledger import LedgerStore

__all__ = ["DeadLettersDep", "LedgerDep", "RelayDep"]


def get_ledger(request: Request) -> LedgerStore:
    """The ledger every accepted event is written to before it is acknowledged."""
    return request.app.state.ledger


def get_relay(request: Request) -> Relay:
    """The relay that publishes the ledger into the inbound topics."""
    return request.app.state.relay


def get_dead_letters(request: Request) -> DeadLetterStore:
    return request.app.state.dead_letters


LedgerDep = Annotated[LedgerStore, Depends(get_ledger)]
RelayDep = Annotated[Relay, Depends(get_relay)]
DeadLettersDep = Annotated[DeadLetterStore, Depends(get_dead_letters)]
