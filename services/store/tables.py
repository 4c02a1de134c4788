"""The relational schema: the event ledger, consumer positions, the relay's cursors, dead letters, the
processor's partitions, settlements and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import BigInteger, DateTime, Integer, Table, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AuditRecord", "Base", "ConsumerPosition", "DeadLetter", "LedgerEvent", "ProcessorOutbox",
           "ProcessorPartition", "ProcessorRecord", "RelayCursor", "Settlement", "UtcDateTime"]

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
    # Every model here maps a plain `Table` (SQLAlchemy types `__table__` as any `FromClause`, e.g. a join).
    __table__: ClassVar[Table]


class LedgerEvent(Base):
    """One accepted event, in ledger order (the order rows committed), with where it was read, if from a topic.

    An event accepted over HTTP has no partition and offset: it was written here first and published after
    (`services.ledger.relay`). `epoch` is the broker log a row was read from (`services.broker.identity`), so
    that a broker which lost its log gets every row it lacks published again.
    """

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("source", "id", name="uq_events_source_id"),)

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    source: Mapped[str]
    id: Mapped[str]
    type: Mapped[str]
    time: Mapped[datetime]
    topic: Mapped[str]
    key: Mapped[str]
    partition: Mapped[int | None]
    offset: Mapped[int | None] = mapped_column(BigInteger)
    epoch: Mapped[str | None]
    body: Mapped[str] = mapped_column(Text)
    ingested_at: Mapped[datetime]


class ConsumerPosition(Base):
    """The next offset a consumer reads on a partition of one broker log, committed with the rows it wrote."""

    __tablename__ = "consumer_positions"

    consumer: Mapped[str] = mapped_column(primary_key=True)
    epoch: Mapped[str] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)


class RelayCursor(Base):
    """How far the ledger has been published into one broker log: every row up to `seq` is in it."""

    __tablename__ = "relay_cursors"

    epoch: Mapped[str] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class DeadLetter(Base):
    """A refused message, durably: what was received, why, and where it was read (once per `dedup_key`)."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("dedup_key", name="uq_dead_letters_dedup_key"),)

    id: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None]
    partition: Mapped[int | None]
    offset: Mapped[int | None] = mapped_column(BigInteger)
    key: Mapped[str | None]
    value: Mapped[str] = mapped_column(Text)
    dead_lettered_at: Mapped[datetime]


class ProcessorPartition(Base):
    """One partition of the processor's state on one broker log: its checkpoint's version and sequence marks.

    `version` grows by one per checkpoint; a worker whose checkpoint finds another version has lost the
    partition to another worker. `next_offset`: where its stream partition is read on; `marks`: JSON
    {sender: last sequence number applied}; `sent`: JSON {destination partition: last sequence number sent}
    (`services.processor.partitions`).
    """

    __tablename__ = "processor_partitions"

    epoch: Mapped[str] = mapped_column(primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    marks: Mapped[str] = mapped_column(Text)
    sent: Mapped[str] = mapped_column(Text)


class ProcessorRecord(Base):
    """One record of the fold (`shared.snapshot`) in the partition of the processor that owns its key."""

    __tablename__ = "processor_records"

    epoch: Mapped[str] = mapped_column(primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ProcessorOutbox(Base):
    """What the checkpoint of `version` sends (its messages as JSON), kept until a later checkpoint knows it sent."""

    __tablename__ = "processor_outbox"

    epoch: Mapped[str] = mapped_column(primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class Settlement(Base):
    """A closed period: its frozen statements (never updated) and its approval and export status.

    `approvals`: JSON [{name, at}] of the distinct token names approving since the close or the last rejection;
    `revision` grows by one per change of status, so that each change is one conditional UPDATE.
    """

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
    closed_by: Mapped[str | None]
    approvals: Mapped[str] = mapped_column(Text, default="[]")
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    rejected_by: Mapped[str | None]
    rejected_at: Mapped[datetime | None]
    revision: Mapped[int] = mapped_column(default=0)


class AuditRecord(Base):
    """One entry of the append-only audit log (SPEC §5.4): nothing updates or deletes a row."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str]
    action: Mapped[str]
    period: Mapped[str | None] = mapped_column(index=True)
    content_hash: Mapped[str | None]
    detail: Mapped[str | None] = mapped_column(Text)
