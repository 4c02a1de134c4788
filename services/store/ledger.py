"""The append-only event ledger, the consumer positions committed with it, and how far it is published.

Rows commit one appender at a time (`_serialised`), so their `seq` order is their commit order: a
reader that has seen every row up to some seq will never see an older one appear later, which is what
lets the relay keep one cursor per broker log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import Clock, insert_for, utc_now
from services.store.tables import ConsumerPosition, LedgerEvent, RelayCursor

__all__ = ["LedgerRow", "LedgerStore", "Positions", "StoredEvent"]

EVENTS = LedgerEvent.__table__
POSITIONS = ConsumerPosition.__table__
CURSORS = RelayCursor.__table__
APPEND_LOCK = 0x4C454447  # any fixed key: PostgreSQL appenders take it; SQLite has one writer anyway

Positions = Mapping[tuple[str, int], int]
"""(topic, partition) -> the next offset to read."""


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A validated event to append: its topic and partitioning key, and where it was read, if it was."""

    source: str
    id: str
    type: str
    time: datetime
    topic: str
    key: str
    body: str
    partition: int | None = None
    offset: int | None = None
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A ledger entry: its place in ledger order, its structured-mode CloudEvent JSON, where it goes."""

    seq: int
    body: str
    topic: str = ""
    key: str = ""


async def _serialised(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})


class LedgerStore:
    """Appends events once per (source, id); keeps consumer positions and relay cursors per broker log."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    async def append(self, rows: Sequence[LedgerRow], positions: Positions | None = None, *,
                     consumer: str | None = None, epoch: str | None = None) -> int:
        """Insert the rows not stored yet and move `consumer` to `positions` on log `epoch`, in one
        transaction; returns how many rows were new."""
        async with self._sessions.begin() as session:
            await _serialised(session)
            inserted = await self._insert(session, rows) if rows else 0
            if positions:
                assert consumer is not None and epoch is not None, "positions belong to a consumer and a log"
                await self._advance(session, consumer, epoch, positions)
        return inserted

    async def _insert(self, session: AsyncSession, rows: Sequence[LedgerRow]) -> int:
        now = self._clock()
        statement = (insert_for(session, EVENTS)
                     .on_conflict_do_nothing(index_elements=["source", "id"])
                     .returning(EVENTS.c.seq))
        result = await session.execute(statement, [{**asdict(row), "ingested_at": now} for row in rows])
        return len(result.all())

    @staticmethod
    async def _advance(session: AsyncSession, consumer: str, epoch: str, positions: Positions) -> None:
        statement = insert_for(session, POSITIONS)
        statement = statement.on_conflict_do_update(
            index_elements=["consumer", "epoch", "topic", "partition"],
            set_={"next_offset": statement.excluded.next_offset},
        )
        await session.execute(statement, [
            {"consumer": consumer, "epoch": epoch, "topic": topic, "partition": partition, "next_offset": offset}
            for (topic, partition), offset in positions.items()
        ])

    async def positions(self, consumer: str, epoch: str) -> dict[tuple[str, int], int]:
        """Where `consumer` resumes on broker log `epoch`: (topic, partition) -> next offset."""
        query = select(POSITIONS.c.topic, POSITIONS.c.partition, POSITIONS.c.next_offset).where(
            POSITIONS.c.consumer == consumer, POSITIONS.c.epoch == epoch)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {(topic, partition): offset for topic, partition, offset in rows}

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

    async def relay_cursor(self, epoch: str) -> int:
        """Every row up to this seq is in broker log `epoch` (0: none known to be)."""
        async with self._sessions() as session:
            return (await session.scalar(select(CURSORS.c.seq).where(CURSORS.c.epoch == epoch))) or 0

    async def unpublished(self, after_seq: int, limit: int) -> tuple[list[StoredEvent], int]:
        """Rows after `after_seq`, oldest first, at most `limit`; and the seq the relay's cursor may move to
        once they are published (past every row committed so far when fewer than `limit` were left)."""
        async with self._sessions() as session:
            newest = (await session.scalar(select(func.max(EVENTS.c.seq)))) or 0
            query = (select(EVENTS.c.seq, EVENTS.c.body, EVENTS.c.topic, EVENTS.c.key)
                     .where(EVENTS.c.seq > after_seq, EVENTS.c.seq <= newest)
                     .order_by(EVENTS.c.seq).limit(limit))
            rows = [StoredEvent(*row) for row in (await session.execute(query)).all()]
        return rows, rows[-1].seq if len(rows) == limit else max(newest, after_seq)

    async def move_relay_cursor(self, epoch: str, seq: int) -> None:
        """Record that every row up to `seq` is in broker log `epoch`."""
        async with self._sessions.begin() as session:
            statement = insert_for(session, CURSORS).values(epoch=epoch, seq=seq)
            await session.execute(statement.on_conflict_do_update(
                index_elements=["epoch"],
                set_={"seq": case((statement.excluded.seq > CURSORS.c.seq, statement.excluded.seq),
                                  else_=CURSORS.c.seq)}))
