"""Running the ledger service alone, until interrupted."""

from __future__ import annotations

import asyncio
import contextlib

from services.broker.topics import ensure_topics
from services.ledger.consumer import LedgerService
from services.settings import Settings
from services.store.database import opened_database
from services.store.ledger import LedgerStore

__all__ = ["run_ledger"]


async def _run(settings: Settings) -> None:
    await ensure_topics(settings)
    async with opened_database(settings.resolved_database_url) as sessions:
        service = LedgerService(settings, LedgerStore(sessions))
        await service.start()
        try:
            await asyncio.Event().wait()
        finally:
            await service.stop()


def run_ledger(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(settings))
