"""The append-only audit log (SPEC §5.4): every change of state, who made it, and the hash of what it was about.

This module has no update and no delete. Entries commit one appender at a time (`write_entry`), so their ids
ascend in commit order: a reader paging with `after` never sees an older entry appear behind the last one it
read. A change of state stored elsewhere in this package writes its entry in its own transaction
(`write_entry`), so the change and its entry commit together or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.database import utc_now
from services.store.tables import AuditRecord

__all__ = ["AuditEntry", "AuditLog", "write_entry"]

TABLE = AuditRecord.__table__
APPEND_LOCK = 0x41554449  # any fixed key: PostgreSQL appenders take it; SQLite has one writer anyway


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry: `id` ascends in the order entries were written; `detail` is what the action adds, if anything."""

    id: int
    at: datetime
    actor: str
    action: str
    period: str | None
    content_hash: str | None
    detail: dict | None


async def write_entry(session: AsyncSession, *, actor: str, action: str, at: datetime, period: str | None = None,
                      content_hash: str | None = None, detail: dict | None = None) -> AuditEntry:
    """Append one entry inside the caller's transaction (which commits it)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
    row = {"at": at, "actor": actor, "action": action, "period": period, "content_hash": content_hash,
           "detail": None if detail is None else json.dumps(detail, sort_keys=True)}
    entry_id = (await session.execute(insert(TABLE).values(row).returning(TABLE.c.id))).scalar_one()
    return AuditEntry(entry_id, at, actor, action, period, content_hash, detail)


class AuditLog:
    """Appends entries and lists them, oldest first."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(self, *, actor: str, action: str, period: str | None = None, content_hash: str | None = None,
                     detail: dict | None = None, at: datetime | None = None) -> AuditEntry:
        """Append one entry, stamped `at` (default: now)."""
        async with self._sessions.begin() as session:
            return await write_entry(session, actor=actor, action=action, at=at or utc_now(), period=period,
                                     content_hash=content_hash, detail=detail)

    async def entries(self, *, period: str | None = None, after: int | None = None,
                      limit: int = 100) -> list[AuditEntry]:
        """Up to `limit` entries with an id above `after`, of `period` only when given, oldest first."""
        query = select(AuditRecord).order_by(AuditRecord.id).limit(limit)
        if period is not None:
            query = query.where(AuditRecord.period == period)
        if after is not None:
            query = query.where(AuditRecord.id > after)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [AuditEntry(row.id, row.at, row.actor, row.action, row.period, row.content_hash,
                           None if row.detail is None else json.loads(row.detail)) for row in rows]
