"""Frozen settlements: statements stored once at close, then only their status moves on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import insert_for
from services.store.tables import Settlement

__all__ = ["SettlementRecord", "SettlementStateError", "SettlementStatus", "SettlementStore"]

TABLE = Settlement.__table__


class SettlementStatus(StrEnum):
    CLOSED = "closed"
    APPROVED = "approved"
    EXPORTED = "exported"


ORDER = list(SettlementStatus)


class SettlementStateError(LookupError):
    """A settlement that does not exist, or is not in the status the transition needs."""


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A stored settlement; `body` is the frozen statements' JSON exactly as saved."""

    period: str
    status: SettlementStatus
    closed_at: datetime
    approved_at: datetime | None
    exported_at: datetime | None
    export_id: str | None
    plan_hashes: dict[str, str]
    body: str
    event_seq: int


def _record(row: Settlement) -> SettlementRecord:
    return SettlementRecord(row.period, SettlementStatus(row.status), row.closed_at, row.approved_at,
                            row.exported_at, row.export_id, json.loads(row.plan_hashes), row.body,
                            row.event_seq)


class SettlementStore:
    """Saves each period's settlement once; approval and export only move its status forward."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, period: str, closed_at: datetime, plan_hashes: Mapping[str, str],
                   body_json: str, event_seq: int) -> SettlementRecord:
        """Freeze `period`; if it is frozen already, nothing changes and the stored settlement is returned."""
        row = {"period": period, "status": SettlementStatus.CLOSED, "closed_at": closed_at,
               "plan_hashes": json.dumps(dict(plan_hashes), sort_keys=True), "body": body_json,
               "event_seq": event_seq}
        async with self._sessions.begin() as session:
            statement = insert_for(session, TABLE).on_conflict_do_nothing(index_elements=["period"])
            await session.execute(statement, row)
        return await self._require(period)

    async def get(self, period: str) -> SettlementRecord | None:
        """The settlement of `period`, if it was closed."""
        async with self._sessions() as session:
            row = await session.get(Settlement, period)
        return None if row is None else _record(row)

    async def all(self) -> list[SettlementRecord]:
        """Every settlement, by period."""
        async with self._sessions() as session:
            rows = (await session.scalars(select(Settlement).order_by(Settlement.period))).all()
        return [_record(row) for row in rows]

    async def approve(self, period: str, at: datetime) -> SettlementRecord:
        """Approve a closed settlement; approving an approved or exported one changes nothing."""
        return await self._advance(period, SettlementStatus.CLOSED,
                                   {"status": SettlementStatus.APPROVED, "approved_at": at})

    async def mark_exported(self, period: str, export_id: str, at: datetime) -> SettlementRecord:
        """Record the first payroll export of an approved settlement; later pulls keep the first export id."""
        return await self._advance(period, SettlementStatus.APPROVED,
                                   {"status": SettlementStatus.EXPORTED, "exported_at": at,
                                    "export_id": export_id})

    async def _advance(self, period: str, source: SettlementStatus,
                       values: dict[str, object]) -> SettlementRecord:
        # One conditional UPDATE, so concurrent transitions cannot both win.
        async with self._sessions.begin() as session:
            await session.execute(update(TABLE).where(TABLE.c.period == period, TABLE.c.status == source)
                                  .values(values))
        record = await self._require(period)
        if ORDER.index(record.status) < ORDER.index(source):
            raise SettlementStateError(f"settlement {period} is {record.status}, not {source}")
        return record

    async def _require(self, period: str) -> SettlementRecord:
        record = await self.get(period)
        if record is None:
            raise SettlementStateError(f"period {period} is not closed")
        return record
