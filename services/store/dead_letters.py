"""Dead letters, durably: every refused message once, with why and where it was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import Clock, insert_for, utc_now
from services.store.tables import DeadLetter

__all__ = ["DeadLetterStore", "NewDeadLetter", "StoredDeadLetter"]

TABLE = DeadLetter.__table__


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    """A refused message; `dedup_key` names it, so that reading it again stores nothing new."""

    dedup_key: str
    reason: str
    value: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A refused message: why, where it was read (none for one refused in processing of an HTTP event), and
    its value as received."""

    id: int
    reason: str
    topic: str | None
    partition: int | None
    offset: int | None
    key: str | None
    value: str
    dead_lettered_at: datetime


class DeadLetterStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    async def add(self, letters: Sequence[NewDeadLetter]) -> int:
        """Store the letters not stored yet; returns how many were new."""
        if not letters:
            return 0
        now = self._clock()
        async with self._sessions.begin() as session:
            statement = (insert_for(session, TABLE).on_conflict_do_nothing(index_elements=["dedup_key"])
                         .returning(TABLE.c.id))
            result = await session.execute(statement, [{**asdict(letter), "dead_lettered_at": now}
                                                       for letter in letters])
            return len(result.all())

    async def page(self, after: int, limit: int) -> list[StoredDeadLetter]:
        """The letters after id `after`, oldest first."""
        query = (select(*(TABLE.c[name] for name in StoredDeadLetter.__slots__))
                 .where(TABLE.c.id > after).order_by(TABLE.c.id).limit(limit))
        async with self._sessions() as session:
            return [StoredDeadLetter(*row) for row in (await session.execute(query)).all()]

    async def get(self, letter_id: int) -> StoredDeadLetter | None:
        letters = await self.page(letter_id - 1, 1)
        return letters[0] if letters and letters[0].id == letter_id else None
