"""The processor's partitions, durably: each one's fold records, sequence marks and outbox, per broker log.

A checkpoint writes a partition's changed records, its marks and the messages it is about to send in one
transaction, and only if the partition's version is still the one its writer loaded: so a worker that
lost the partition to another (a rebalance it has not noticed yet) writes nothing, and what it would have
sent is never sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import insert_for
from services.store.tables import ProcessorOutbox, ProcessorPartition, ProcessorRecord

__all__ = ["Checkpoint", "PartitionState", "ProcessorStore"]

PARTITIONS = ProcessorPartition.__table__
RECORDS = ProcessorRecord.__table__
OUTBOX = ProcessorOutbox.__table__


@dataclass
class PartitionState:
    """What the database holds for one partition; version 0 and nothing else for a partition never written."""

    version: int = 0
    next_offset: int | None = None  # None: from the partition's first offset
    records: dict[str, str] = field(default_factory=dict)  # record key (JSON array) -> record (JSON)
    marks: dict[str, int] = field(default_factory=dict)  # sender -> last sequence number applied
    sent: dict[str, int] = field(default_factory=dict)  # destination partition -> last sequence number sent
    outbox: list[tuple[int, str]] = field(default_factory=list)  # (version, messages JSON) maybe not sent yet


@dataclass(frozen=True)
class Checkpoint:
    """One batch's writes: records (None: gone), where the partition is read on, the marks after it, and what
    it sends (None: nothing)."""

    records: Mapping[str, str | None]
    next_offset: int
    marks: Mapping[str, int]
    sent: Mapping[str, int]
    outbox: str | None


async def _records(session: AsyncSession, epoch: str, partition: int) -> dict[str, str]:
    """Every record of a partition, read through the database driver itself: a year of history is over a
    million rows, and SQLAlchemy's rows took 3x the driver's time to read them (the bulk of a worker's start)."""
    driver: Any = (await (await session.connection()).get_raw_connection()).driver_connection  # asyncpg, aiosqlite
    sql = f"SELECT key, value FROM {RECORDS.name} WHERE epoch = {{}} AND partition = {{}}"
    if session.get_bind().dialect.name == "postgresql":
        rows = await driver.fetch(sql.format("$1", "$2"), epoch, partition)
    else:
        rows = await (await driver.execute(sql.format("?", "?"), (epoch, partition))).fetchall()
    return {key: value for key, value in rows}


class ProcessorStore:
    """Loads and checkpoints the processor's partitions."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load(self, epoch: str, partition: int) -> PartitionState:
        where = (PARTITIONS.c.epoch == epoch, PARTITIONS.c.partition == partition)
        async with self._sessions() as session:
            head = (await session.execute(select(PARTITIONS.c.version, PARTITIONS.c.next_offset, PARTITIONS.c.marks,
                                                 PARTITIONS.c.sent).where(*where))).first()
            if head is None:
                return PartitionState()
            records = await _records(session, epoch, partition)
            outbox = await session.execute(select(OUTBOX.c.version, OUTBOX.c.body).where(
                OUTBOX.c.epoch == epoch, OUTBOX.c.partition == partition).order_by(OUTBOX.c.version))
            return PartitionState(head.version, head.next_offset, records, json.loads(head.marks),
                                  json.loads(head.sent), [(version, body) for version, body in outbox])

    async def checkpoint(self, epoch: str, partition: int, version: int, checkpoint: Checkpoint) -> bool:
        """Write `checkpoint` as version `version + 1` if the partition is still at `version`; False if not
        (another worker has written it since). Outbox entries of earlier versions are dropped: their
        messages were sent before this batch was folded."""
        marks, sent = json.dumps(checkpoint.marks), json.dumps(checkpoint.sent)
        async with self._sessions.begin() as session:
            if version == 0:
                claimed = await session.execute(
                    insert_for(session, PARTITIONS).values(epoch=epoch, partition=partition, version=1, marks=marks,
                                                           sent=sent, next_offset=checkpoint.next_offset)
                    .on_conflict_do_nothing())
            else:
                claimed = await session.execute(
                    update(PARTITIONS).where(PARTITIONS.c.epoch == epoch, PARTITIONS.c.partition == partition,
                                             PARTITIONS.c.version == version)
                    .values(version=version + 1, marks=marks, sent=sent, next_offset=checkpoint.next_offset))
            if cast(CursorResult[Any], claimed).rowcount != 1:
                return False
            await self._write_records(session, epoch, partition, checkpoint.records)
            await session.execute(delete(OUTBOX).where(OUTBOX.c.epoch == epoch, OUTBOX.c.partition == partition,
                                                       OUTBOX.c.version <= version))
            if checkpoint.outbox is not None:
                await session.execute(OUTBOX.insert().values(epoch=epoch, partition=partition, version=version + 1,
                                                             body=checkpoint.outbox))
        return True

    @staticmethod
    async def _write_records(session: AsyncSession, epoch: str, partition: int,
                             records: Mapping[str, str | None]) -> None:
        gone = [key for key, value in records.items() if value is None]
        if gone:
            await session.execute(delete(RECORDS).where(RECORDS.c.epoch == epoch, RECORDS.c.partition == partition,
                                                        RECORDS.c.key.in_(gone)))
        kept = [{"epoch": epoch, "partition": partition, "key": key, "value": value}
                for key, value in records.items() if value is not None]
        if kept:
            statement = insert_for(session, RECORDS)
            await session.execute(statement.on_conflict_do_update(
                index_elements=["epoch", "partition", "key"], set_={"value": statement.excluded.value}), kept)

    async def forget_other_logs(self, epoch: str) -> None:
        """Drop every partition of other broker logs: a new log is folded from its beginning."""
        async with self._sessions.begin() as session:
            for table in (OUTBOX, RECORDS, PARTITIONS):
                await session.execute(delete(table).where(table.c.epoch != epoch))
