"""Frozen settlements: statements stored once at close, then only their status moves on.

Every change of status is one conditional UPDATE on the settlement's `revision` (a concurrent change makes
it match no row, and it is tried again on what is stored then), written with its audit entry in one
transaction (`services.store.audit`), so no change goes unrecorded. An entry's content hash is that of the
frozen statements the change was about.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.audit import write_entry
from services.store.database import insert_for
from services.store.tables import Settlement

__all__ = ["Approval", "SettlementRecord", "SettlementStateError", "SettlementStatus", "SettlementStore",
           "content_hash"]

TABLE = Settlement.__table__


class SettlementStatus(StrEnum):
    CLOSED = "closed"
    APPROVED = "approved"
    EXPORTED = "exported"
    REJECTED = "rejected"


class SettlementStateError(LookupError):
    """A settlement that does not exist, or is not in a status the transition can start from."""


class Approval(NamedTuple):
    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A stored settlement; `body` is the frozen statements' JSON exactly as saved.

    `closed_by` is the name that closed it (None for periods closed before names were recorded); `approvals`
    are those since the close or the last rejection, one per token name, in the order given.
    """

    period: str
    status: SettlementStatus
    closed_at: datetime
    approved_at: datetime | None
    exported_at: datetime | None
    export_id: str | None
    plan_hashes: dict[str, str]
    body: str
    event_seq: int
    closed_by: str | None
    approvals: tuple[Approval, ...]
    rejection_reason: str | None
    rejected_by: str | None
    rejected_at: datetime | None
    revision: int


def content_hash(body_json: str) -> str:
    """`sha256:<hex>` of the frozen settlement's canonical JSON (keys sorted, no spaces).

    `body_json` is `shared.settlement.settlement_to_data` of the settlement, which it reads back unchanged, so
    this is the hash of the frozen statements however they were serialised when saved.
    """
    canonical = json.dumps(json.loads(body_json), sort_keys=True, separators=(",", ":"))
    return f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def _approvals_json(approvals: tuple[Approval, ...]) -> str:
    return json.dumps([{"name": a.name, "at": a.at.isoformat()} for a in approvals])


def _record(row: Settlement) -> SettlementRecord:
    approvals = tuple(Approval(a["name"], datetime.fromisoformat(a["at"])) for a in json.loads(row.approvals))
    return SettlementRecord(row.period, SettlementStatus(row.status), row.closed_at, row.approved_at,
                            row.exported_at, row.export_id, json.loads(row.plan_hashes), row.body,
                            row.event_seq, row.closed_by, approvals, row.rejection_reason, row.rejected_by,
                            row.rejected_at, row.revision)


class SettlementStore:
    """Saves each period's settlement once; then approval, rejection and export move its status on."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, period: str, closed_at: datetime, plan_hashes: Mapping[str, str],
                   body_json: str, event_seq: int, *, closed_by: str) -> SettlementRecord:
        """Freeze `period`, closed by `closed_by` (audited); if it is frozen already, nothing changes and the
        stored settlement is returned."""
        row = {"period": period, "status": SettlementStatus.CLOSED, "closed_at": closed_at,
               "plan_hashes": json.dumps(dict(plan_hashes), sort_keys=True), "body": body_json,
               "event_seq": event_seq, "closed_by": closed_by}
        async with self._sessions.begin() as session:
            statement = (insert_for(session, TABLE).on_conflict_do_nothing(index_elements=["period"])
                         .returning(TABLE.c.period))
            if (await session.execute(statement, row)).first() is not None:
                await write_entry(session, actor=closed_by, action="close", at=closed_at, period=period,
                                  content_hash=content_hash(body_json))
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

    async def approve(self, period: str, at: datetime, *, by: str, required: int = 1) -> SettlementRecord:
        """Count `by`'s approval of a closed or rejected settlement; it is `approved` once `required` distinct
        names approved. A name approving again, or approving an approved or exported one, changes nothing."""
        while True:
            record = await self._require(period)
            if record.status in (SettlementStatus.APPROVED, SettlementStatus.EXPORTED) or any(
                    approval.name == by for approval in record.approvals):
                return record
            approvals = (*record.approvals, Approval(by, at))
            values: dict[str, object] = {"approvals": _approvals_json(approvals)}
            if len(approvals) >= required:
                values |= {"status": SettlementStatus.APPROVED, "approved_at": at, "rejection_reason": None,
                           "rejected_by": None, "rejected_at": None}
            detail = {"approvals": len(approvals), "required": required,
                      "status": values.get("status", record.status)}
            if await self._change(record, values, actor=by, action="approve", at=at, detail=detail):
                return await self._require(period)

    async def reject(self, period: str, at: datetime, *, by: str, reason: str) -> SettlementRecord:
        """Send a closed, approved or rejected settlement back with `reason`: `rejected`, approvals cleared, its
        statements unchanged; an exported one cannot be (`SettlementStateError`)."""
        while True:
            record = await self._require(period)
            if record.status is SettlementStatus.EXPORTED:
                raise SettlementStateError(f"settlement {period} is exported (as {record.export_id}): too late "
                                           "to reject it; correct it through the next close")
            values = {"status": SettlementStatus.REJECTED, "approvals": "[]", "approved_at": None,
                      "rejection_reason": reason, "rejected_by": by, "rejected_at": at}
            if await self._change(record, values, actor=by, action="reject", at=at, detail={"reason": reason}):
                return await self._require(period)

    async def mark_exported(self, period: str, export_id: str, at: datetime, *, by: str) -> SettlementRecord:
        """Record the first payroll export of an approved settlement; later pulls keep the first export id."""
        while True:
            record = await self._require(period)
            if record.status is SettlementStatus.EXPORTED:
                return record
            if record.status is not SettlementStatus.APPROVED:
                raise SettlementStateError(f"settlement {period} is {record.status}, not approved")
            values = {"status": SettlementStatus.EXPORTED, "exported_at": at, "export_id": export_id}
            if await self._change(record, values, actor=by, action="export", at=at,
                                  detail={"export_id": export_id}):
                return await self._require(period)

    async def _change(self, record: SettlementRecord, values: Mapping[str, object], *, actor: str, action: str,
                      at: datetime, detail: dict) -> bool:
        """Apply `values` and write the audit entry, if `record` is still what is stored; whether it was."""
        async with self._sessions.begin() as session:
            changed = await session.execute(
                update(TABLE).where(TABLE.c.period == record.period, TABLE.c.revision == record.revision)
                .values({**values, "revision": record.revision + 1}))
            if changed.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
                return False
            await write_entry(session, actor=actor, action=action, at=at, period=record.period,
                              content_hash=content_hash(record.body), detail=detail)
        return True

    async def _require(self, period: str) -> SettlementRecord:
        record = await self.get(period)
        if record is None:
            raise SettlementStateError(f"period {period} is not closed")
        return record
