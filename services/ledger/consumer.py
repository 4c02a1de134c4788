"""The ledger service: consume the inbound topics, append valid events and the new positions together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from services.broker.consuming import stop_consuming
from services.broker.topics import inbound_topics
from services.ledger.metrics import BATCH_SECONDS, DUPLICATES, EVENTS, SKIPPED
from services.ledger.rows import ledger_row
from services.settings import Settings
from services.store.ledger import LedgerRow, LedgerStore

__all__ = ["GROUP", "LedgerService", "fetch_end_offsets", "wait_caught_up"]

GROUP = "convergence-ledger"
log = logging.getLogger(__name__)


async def fetch_end_offsets(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The current end offset of every partition of `topics` (a started consumer asks the broker)."""
    await consumer.topics()  # refreshes the metadata, so new topics and partitions are seen
    partitions = [TopicPartition(topic, partition)
                  for topic in topics for partition in consumer.partitions_for_topic(topic) or ()]
    return await consumer.end_offsets(partitions) if partitions else {}


async def caught_up(store: LedgerStore, end_offsets: dict[TopicPartition, int]) -> bool:
    """Whether the ledger holds every message before `end_offsets`."""
    positions = await store.positions(GROUP)
    return all(positions.get((tp.topic, tp.partition), 0) >= end for tp, end in end_offsets.items())


async def wait_caught_up(consumer: AIOKafkaConsumer, store: LedgerStore, topics: Iterable[str],
                         timeout_s: float, poll_s: float = 0.05) -> None:
    """Wait until the ledger holds every message published to `topics` before this call (else TimeoutError)."""
    end_offsets = await fetch_end_offsets(consumer, topics)
    async with asyncio.timeout(timeout_s):
        while not await caught_up(store, end_offsets):
            await asyncio.sleep(poll_s)


class _ResumeFromLedger(ConsumerRebalanceListener):
    """Seeks each assigned partition to the position stored with the ledger rows."""

    def __init__(self, consumer: AIOKafkaConsumer, store: LedgerStore) -> None:
        self._consumer = consumer
        self._store = store

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing to commit: positions are written with the rows."""

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        positions = await self._store.positions(GROUP)
        for tp in assigned:
            # 0 on a partition never read; the broker resets it to its earliest offset if need be.
            self._consumer.seek(tp, positions.get((tp.topic, tp.partition), 0))


class LedgerService:
    """Keeps the ledger in step with the inbound topics; a replayed message is a no-op."""

    def __init__(self, settings: Settings, store: LedgerStore, *, max_records: int = 5000,
                 poll_timeout_ms: int = 1000) -> None:
        self._settings = settings
        self._store = store
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._topics = inbound_topics(settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join the consumer group and start appending in the background."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.resolved_kafka_bootstrap, group_id=GROUP,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms)
        await consumer.start()
        consumer.subscribe(self._topics, listener=_ResumeFromLedger(consumer, self._store))
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="ledger")

    async def stop(self) -> None:
        """Stop appending and leave the group; a batch in flight is rolled back, and read again later."""
        try:
            await stop_consuming(self._task, self._consumer)
        finally:
            self._task = self._consumer = None

    @property
    def healthy(self) -> bool:
        """Whether the append loop is running."""
        return self._task is not None and not self._task.done()

    async def wait_caught_up(self, timeout_s: float, poll_s: float = 0.05) -> None:
        """Wait until the ledger holds every message published before this call (else TimeoutError)."""
        assert self._consumer is not None, "start() the service first"
        await wait_caught_up(self._consumer, self._store, self._topics, timeout_s, poll_s)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms,
                                                   max_records=self._max_records)
            if batches:
                await self._append(batches)

    async def _append(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        with BATCH_SECONDS.time():
            rows = [row for records in batches.values() for record in records
                    if (row := self._row(record)) is not None]
            positions = {(tp.topic, tp.partition): records[-1].offset + 1 for tp, records in batches.items()}
            appended = await self._store.append(rows, positions, consumer=GROUP)
        EVENTS.inc(appended)
        DUPLICATES.inc(len(rows) - appended)

    def _row(self, record: ConsumerRecord[bytes, bytes]) -> LedgerRow | None:
        try:
            return ledger_row(record, self._settings)
        except ValueError as error:
            SKIPPED.inc()
            log.debug("skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset, error)
            return None
