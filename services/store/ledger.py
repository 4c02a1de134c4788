"""The append-only event ledger and the consumer positions committed with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import Clock, insert_for, utc_now
from services.store.tables import ConsumerOffset, IngestKey, LedgerEvent
from shared.events import Event

__all__ = ["LedgerRow", "LedgerStore", "Positions", "StoredEvent"]

EVENTS = LedgerEvent.__table__
OFFSETS = ConsumerOffset.__table__

Positions = Mapping[tuple[str, int], int]
"""(topic, partition) -> the next offset to read."""


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A validated event to append, with the topic position it was read from."""

    source: str
    id: str
    type: str
    time: datetime
    topic: str
    partition: int
    offset: int
    body: str

    @classmethod
    def of(cls, event: Event, body: str, topic: str, partition: int, offset: int) -> LedgerRow:
        """The row of `event`, whose structured-mode JSON is `body`."""
        return cls(event.source, event.id, event.type, event.time, topic, partition, offset, body)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A ledger entry: its place in ingest order and its structured-mode CloudEvent JSON."""

    seq: int
    body: str


class LedgerStore:
    """Appends events once per (source, id) and keeps each consumer's positions in the same transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    async def append(self, rows: Sequence[LedgerRow], positions: Positions, *, consumer: str) -> int:
        """Insert the rows not stored yet and move `consumer` to `positions`; returns how many were new."""
        async with self._sessions.begin() as session:
            inserted = await self._insert(session, rows) if rows else 0
            if positions:
                await self._advance(session, consumer, positions)
        return inserted

    async def _insert(self, session: AsyncSession, rows: Sequence[LedgerRow]) -> int:
        now = self._clock()
        statement = (insert_for(session, EVENTS)
                     .on_conflict_do_nothing(index_elements=["source", "id"])
                     .returning(EVENTS.c.seq))
        result = await session.execute(statement, [{**asdict(row), "ingested_at": now} for row in rows])
        return len(result.all())

    @staticmethod
    async def _advance(session: AsyncSession, consumer: str, positions: Positions) -> None:
        statement = insert_for(session, OFFSETS)
        statement = statement.on_conflict_do_update(
            index_elements=["consumer", "topic", "partition"],
            set_={"next_offset": statement.excluded.next_offset},
        )
        await session.execute(statement, [
            {"consumer": consumer, "topic": topic, "partition": partition, "next_offset": offset}
            for (topic, partition), offset in positions.items()
        ])

    async def positions(self, consumer: str) -> dict[tuple[str, int], int]:
        """Where `consumer` resumes: (topic, partition) -> next offset."""
        query = select(OFFSETS.c.topic, OFFSETS.c.partition, OFFSETS.c.next_offset).where(
            OFFSETS.c.consumer == consumer)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {(topic, partition): offset for topic, partition, offset in rows}

    async def missing_accepted(self, accepted_until: datetime) -> int:
        """How many events the HTTP ingest accepted until then are not in the ledger yet."""
        keys = IngestKey.__table__
        joined = keys.outerjoin(EVENTS, and_(EVENTS.c.source == keys.c.source, EVENTS.c.id == keys.c.id))
        query = select(func.count()).select_from(joined).where(
            keys.c.accepted_at <= accepted_until, EVENTS.c.seq.is_(None))
        async with self._sessions() as session:
            return (await session.scalar(query)) or 0

    async def last_seq(self) -> int:
        """The seq of the newest ledger entry, 0 when the ledger is empty."""
        async with self._sessions() as session:
            return (await session.scalar(select(func.max(EVENTS.c.seq)))) or 0

    async def iter_events(self, up_to_seq: int | None = None, batch: int = 5000,
                          after_seq: int = 0) -> AsyncIterator[StoredEvent]:
        """The ledger in seq order after `after_seq` (up to and including `up_to_seq`), `batch` rows at a time."""
        after = after_seq
        while True:
            query = select(EVENTS.c.seq, EVENTS.c.body).where(EVENTS.c.seq > after)
            if up_to_seq is not None:
                query = query.where(EVENTS.c.seq <= up_to_seq)
            async with self._sessions() as session:
                rows = (await session.execute(query.order_by(EVENTS.c.seq).limit(batch))).all()
            for seq, body in rows:
                yield StoredEvent(seq, body)
            if len(rows) < batch:
                return
            after = rows[-1].seq
