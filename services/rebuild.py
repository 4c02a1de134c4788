"""`convergence rebuild`: the broker's topics made anew and the whole ledger published into them.

Deleting the topics deletes the broker's identity with them, so the topics come back with a new epoch
(`services.broker.identity`): the ledger reads the new log from its start, the processor finds its log
changed and is restarted onto it (its partitions of the old log are dropped, so it folds everything
again), the query's replica starts over, and the relay publishes every ledger row into the new log, in ledger
order.
"""

from __future__ import annotations

import asyncio

from services.broker.identity import BrokerIdentity
from services.broker.topics import delete_topics, ensure_topics, topic_names
from services.ledger.relay import Relay
from services.processor.app import internal_topics_prefix
from services.settings import Settings
from services.store.database import opened_database
from services.store.ledger import LedgerStore

__all__ = ["rebuild"]


async def rebuild(settings: Settings, timeout_s: float) -> dict[str, object]:
    """Delete and recreate the topics, then publish the ledger into them; what was done."""
    identity = BrokerIdentity(settings)
    try:
        old = await identity.read()
        deleted = await delete_topics(settings, internal_topics_prefix(settings))
        async with asyncio.timeout(timeout_s):  # deletion may finish after its answer
            while old is not None and await identity.read() == old:  # gone, or made anew by a service
                await asyncio.sleep(0.1)
    finally:
        await identity.stop()
    await ensure_topics(settings)
    async with opened_database(settings.resolved_database_url) as sessions:
        published = await Relay(settings, LedgerStore(sessions)).drain(timeout_s)
    return {"deleted_topics": len(deleted), "topics": len(topic_names(settings)), "published": published}
