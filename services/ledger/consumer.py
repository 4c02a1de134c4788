"""The ledger service: consume the inbound topics, append valid events and the new positions together.

Positions are stored per broker log (`services.broker.identity`): on every assignment the service reads
the broker's epoch and resumes at the positions stored for that log, from its start when there are none,
so a broker that lost its log is read again from its beginning, never from another log's offsets.
Refused messages (here, or by the processor on the dead-letter topic) are stored as dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.broker.consuming import stop_consuming
from services.broker.identity import BrokerIdentity
from services.broker.topics import DEAD_LETTER, inbound_topics
from services.ledger.metrics import BATCH_SECONDS, DEAD_LETTERS, DUPLICATES, EVENTS, LAG
from services.ledger.rows import dead_letter_of, ledger_row, refused
from services.settings import Settings
from services.store.dead_letters import DeadLetterStore, NewDeadLetter
from services.store.ledger import LedgerRow, LedgerStore
from services.store.reading import LEDGER_GROUP, fetch_end_offsets, wait_caught_up

__all__ = ["LedgerService"]

EPOCH_WAIT_S = 30.0
RETRY_DELAYS_S = (0.2, 0.5, 1, 2, 5)
STUCK_AFTER_S = 60.0
log = logging.getLogger(__name__)

Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class _ResumeFromLedger(ConsumerRebalanceListener):
    """Seeks each assigned partition to the position stored with the ledger rows for this broker's log."""

    def __init__(self, service: LedgerService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing to commit: positions are written with the rows."""

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._service.resume(assigned)


class LedgerService:
    """Keeps the ledger in step with the inbound topics; a replayed message is a no-op."""

    def __init__(self, settings: Settings, store: LedgerStore, dead_letters: DeadLetterStore, *,
                 max_records: int = 5000, poll_timeout_ms: int = 1000) -> None:
        self._settings = settings
        self._store = store
        self._dead_letters = dead_letters
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._topics = inbound_topics(settings)
        self._dead_letter_topic = settings.topic(DEAD_LETTER)
        self._identity = BrokerIdentity(settings)
        self._epoch: str | None = None
        self._appended_at = time.monotonic()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def on(cls, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> LedgerService:
        return cls(settings, LedgerStore(sessions), DeadLetterStore(sessions))

    async def start(self) -> None:
        """Join the consumer group and start appending in the background."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.resolved_kafka_bootstrap, group_id=LEDGER_GROUP,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms)
        await consumer.start()
        consumer.subscribe([*self._topics, self._dead_letter_topic], listener=_ResumeFromLedger(self))
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="ledger")

    async def stop(self) -> None:
        """Stop appending and leave the group; a batch in flight is rolled back, and read again later."""
        try:
            await stop_consuming(self._task, self._consumer)
        finally:
            self._task = self._consumer = None
            await self._identity.stop()

    async def health(self) -> bool | str:
        """True while the loop runs and keeps up: messages behind the topics' ends are appended within
        `STUCK_AFTER_S`."""
        if self._task is None or self._task.done():
            return "the ledger's consumer stopped"
        if self._epoch is None or self._consumer is None:
            return "the ledger has not joined its consumer group yet"
        ends = await fetch_end_offsets(self._consumer, self._topics)
        positions = await self._store.positions(LEDGER_GROUP, self._epoch)
        behind = sum(max(0, end - positions.get((tp.topic, tp.partition), 0)) for tp, end in ends.items())
        LAG.set(behind)
        if behind and time.monotonic() - self._appended_at > STUCK_AFTER_S:
            return f"the ledger is {behind} messages behind and has appended nothing for {STUCK_AFTER_S:g} s"
        return True

    async def resume(self, assigned: list[TopicPartition]) -> None:
        """Seek `assigned` to the positions stored for the broker's log (its start when there are none).

        It runs in the consumer's rebalance, beside the append loop: until the seeks are done the loop
        appends nothing (`_epoch` None), since what it fetched meanwhile may come from before them (read
        from the start of a partition and appended again, such rows were counted as duplicates).
        """
        assert self._consumer is not None
        was, self._epoch = self._epoch, None
        async with asyncio.timeout(EPOCH_WAIT_S):  # the topics exist a moment before the identity does
            while (epoch := await self._identity.read()) is None:
                await asyncio.sleep(0.1)
        if epoch != was:
            log.info("ledger: reading broker log %s", epoch)
        positions = await self._store.positions(LEDGER_GROUP, epoch)
        for tp in assigned:  # no await from here on: the loop sees the seeks and the epoch together
            # 0 on a partition never read; the broker resets it to its earliest offset if need be.
            self._consumer.seek(tp, positions.get((tp.topic, tp.partition), 0))
        self._epoch = epoch

    async def wait_caught_up(self, timeout_s: float, poll_s: float = 0.05) -> None:
        """Wait until the ledger holds every message published before this call (else TimeoutError)."""
        assert self._consumer is not None, "start() the service first"
        await wait_caught_up(self._consumer, self._identity, self._store, self._topics, timeout_s,
                             self._settings.broker_timeout_ms / 1000, poll_s)

    async def _run(self) -> None:
        """Append what arrives; when appending fails (the database is away, say), read the batch again from the
        stored positions after a backoff, and say so once per outage."""
        consumer, failures = self._consumer, 0
        assert consumer is not None
        while True:
            try:
                if failures:  # the consumer has moved past the batch that was not stored: go back first
                    await self.resume(list(consumer.assignment()))
                batches = await consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._max_records)
                # not resumed yet (or its resume failed), or topics deleted and made again, which need not
                # rebalance the group: drop what was fetched and read it again from the stored positions
                if batches and (self._epoch is None or await self._identity.current() != self._epoch):
                    await self.resume(list(consumer.assignment()))
                elif batches and self._epoch is not None:  # None: a rebalance began during that read, and seeks
                    await self._append(batches, self._epoch)
            except Exception as error:
                if not failures:
                    log.warning("ledger: appending failed (%s: %s); retrying", type(error).__name__, error)
                await asyncio.sleep(RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)])
                failures += 1
                continue
            if failures:
                log.warning("ledger: appending again")
            failures = 0

    async def _append(self, batches: Batches, epoch: str) -> None:
        with BATCH_SECONDS.time():
            rows: list[LedgerRow] = []
            letters: list[NewDeadLetter] = []
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == self._dead_letter_topic:
                        letters.append(dead_letter_of(record, epoch))
                        continue
                    try:
                        rows.append(ledger_row(record, self._settings, epoch))
                    except ValueError as error:
                        letters.append(refused(record, epoch, f"invalid event: {error}"))
            # letters first: a crash between the two reads them again, and stores them once
            DEAD_LETTERS.inc(await self._dead_letters.add(letters))
            positions = {(tp.topic, tp.partition): records[-1].offset + 1 for tp, records in batches.items()}
            appended = await self._store.append(rows, positions, consumer=LEDGER_GROUP, epoch=epoch)
        self._appended_at = time.monotonic()
        EVENTS.inc(appended)
        DUPLICATES.inc(len(rows) - appended)
