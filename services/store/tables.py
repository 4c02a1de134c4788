"""The relational schema: the event ledger, consumer positions, ingest keys and settlements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "ConsumerOffset", "IngestKey", "LedgerEvent", "Settlement", "UtcDateTime"]

SEQ = BigInteger().with_variant(Integer, "sqlite")  # only INTEGER PRIMARY KEY autoincrements in SQLite


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that must be timezone-aware going in and comes back in UTC on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps no offset; what was written there is UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime}


class LedgerEvent(Base):
    """One accepted event, in ledger (ingest) order, with the topic position it came from."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("source", "id", name="uq_events_source_id"),)

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    source: Mapped[str]
    id: Mapped[str]
    type: Mapped[str]
    time: Mapped[datetime]
    topic: Mapped[str]
    partition: Mapped[int]
    offset: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    ingested_at: Mapped[datetime]


class ConsumerOffset(Base):
    """The next offset a consumer reads on a partition, committed with the rows it wrote."""

    __tablename__ = "consumer_offsets"

    consumer: Mapped[str] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)


class IngestKey(Base):
    """An event key the HTTP ingest has accepted, so a resent event is published once."""

    __tablename__ = "ingest_keys"

    source: Mapped[str] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(primary_key=True)
    accepted_at: Mapped[datetime]


class Settlement(Base):
    """A closed period: its frozen statements (never updated) and its approval and export status."""

    __tablename__ = "settlements"

    period: Mapped[str] = mapped_column(primary_key=True)
    status: Mapped[str]
    closed_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    exported_at: Mapped[datetime | None]
    export_id: Mapped[str | None]
    plan_hashes: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    event_seq: Mapped[int] = mapped_column(BigInteger)
