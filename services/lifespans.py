"""The lifespan of a service run alone: its topics exist and its database is migrated and open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.broker.topics import ensure_topics
from services.settings import Settings
from services.store.database import opened_database
from services.web import Lifespan

__all__ = ["standalone"]

Inner = Callable[[FastAPI, async_sessionmaker[AsyncSession]], AbstractAsyncContextManager]


def standalone(settings: Settings, inner: Inner) -> Lifespan:
    """A lifespan that creates missing topics, opens the migrated database, then runs `inner(app, sessions)`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        async with opened_database(settings.resolved_database_url) as sessions, inner(app, sessions):
            yield

    return lifespan
