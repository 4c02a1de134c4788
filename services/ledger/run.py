"""Running the ledger service alone, until interrupted."""

from __future__ import annotations

import asyncio
import contextlib

from services.ledger.consumer import LedgerService
from services.settings import Settings
from services.store.database import create_engine, create_sessions, migrate
from services.store.ledger import LedgerStore

__all__ = ["run_ledger"]


async def _run(settings: Settings) -> None:
    await migrate(settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    service = LedgerService(settings, LedgerStore(create_sessions(engine)))
    await service.start()
    try:
        await asyncio.Event().wait()
    finally:
        await service.stop()
        await engine.dispose()


def run_ledger(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(settings))
