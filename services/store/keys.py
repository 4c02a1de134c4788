"""The keys of events the HTTP ingest has accepted: a resent event is published once."""

from __future__ import annotations

from sqlalchemy import delete, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import Clock, insert_for, utc_now
from services.store.tables import IngestKey

__all__ = ["IngestKeys"]

KEYS = IngestKey.__table__
RELEASE_CHUNK = 1000  # keys per DELETE, well under every driver's bound-parameter limit


class IngestKeys:
    """Claims (source, id) keys atomically, so of two concurrent senders of one event only one wins."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    async def claim(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Record the keys not seen before and return them; keys already claimed are left out."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return set()
        now = self._clock()
        async with self._sessions.begin() as session:
            statement = (insert_for(session, KEYS)
                         .on_conflict_do_nothing(index_elements=["source", "id"])
                         .returning(KEYS.c.source, KEYS.c.id))
            result = await session.execute(
                statement, [{"source": source, "id": id_, "accepted_at": now} for source, id_ in unique])
            return {(source, id_) for source, id_ in result.all()}

    async def release(self, keys: list[tuple[str, str]]) -> None:
        """Forget claimed keys again, after publishing their events failed."""
        async with self._sessions.begin() as session:
            for start in range(0, len(keys), RELEASE_CHUNK):
                chunk = keys[start:start + RELEASE_CHUNK]
                await session.execute(delete(KEYS).where(tuple_(KEYS.c.source, KEYS.c.id).in_(chunk)))
