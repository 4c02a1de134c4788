"""Which broker log this is: an identity record, so that no one resumes at offsets of another broker's log.

The first record of the one-partition topic `broker.identity` names the log (a random id, the *epoch*).
Whoever finds the topic empty appends a candidate and reads the first record again, so processes that
race agree on one. A broker replaced by an empty one, or that lost its data (the embedded broker keeps
it in memory only), comes back without the record: the next `ensure_topics` writes a new epoch. Positions
stored in the database are kept per epoch, and the ledger publishes every row a new log lacks
(`services.ledger.relay`).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from services.broker.consuming import started
from services.settings import Settings

__all__ = ["IDENTITY", "BrokerIdentity", "claim_epoch"]

IDENTITY = "broker.identity"
IDENTITY_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}  # kept for as long as the log is
REFRESH_S = 1.0
# A read waits out the fetch left at the partition's end by the read before (measured: ~100 ms at the
# services' 100 ms, ~10 ms at this).
FETCH_MAX_WAIT_MS = 5


async def _first_record(consumer: AIOKafkaConsumer, tp: TopicPartition, timeout_s: float) -> str | None:
    """The first record of `tp`, None when it has none. A fetch can come back empty while the consumer moves
    to its position, so it is read until the record comes (TimeoutError after `timeout_s`): an empty answer
    must never pass for a missing identity."""
    consumer.assign([tp])
    consumer.resume(tp)
    first, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
    if end <= first:
        return None
    consumer.seek(tp, first)
    try:
        async with asyncio.timeout(timeout_s):
            while not (records := (await consumer.getmany(tp, timeout_ms=500, max_records=1)).get(tp)):
                pass
    finally:
        consumer.pause(tp)  # no fetch left waiting at the partition's end, for the next read to wait out
    return (records[0].value or b"").decode()


class BrokerIdentity:
    """Reads the epoch of the configured broker with its own consumer (no group); `stop` it when done."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tp = TopicPartition(settings.topic(IDENTITY), 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._cached: tuple[float, str | None] = (0.0, None)

    async def read(self) -> str | None:
        """The broker's epoch now, or None when its identity is not written (yet)."""
        try:
            epoch = await self._read()
        except TimeoutError:  # once more on a new connection before giving up
            await self.stop()
            epoch = await self._read()
        self._cached = (time.monotonic(), epoch)
        return epoch

    async def _read(self) -> str | None:
        if self._consumer is None:
            self._consumer = await started(AIOKafkaConsumer(
                bootstrap_servers=self._settings.resolved_kafka_bootstrap, group_id=None,
                enable_auto_commit=False, request_timeout_ms=self._settings.broker_timeout_ms,
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS))
        await self._consumer.topics()  # fresh metadata: the topic may have just been created again
        if self._consumer.partitions_for_topic(self._tp.topic) is None:
            return None
        return await _first_record(self._consumer, self._tp, self._settings.broker_timeout_ms / 1000)

    async def current(self) -> str | None:
        """`read`, at most once a `REFRESH_S`: a stale answer is an older epoch, which only costs a republish."""
        read_at, epoch = self._cached
        if epoch is not None and time.monotonic() - read_at < REFRESH_S:
            return epoch
        return await self.read()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def claim_epoch(settings: Settings, producer: AIOKafkaProducer, timeout_s: float = 30.0) -> str:
    """The epoch of the broker, written first if its identity topic (which must exist) is empty."""
    identity = BrokerIdentity(settings)
    try:
        async with asyncio.timeout(timeout_s):
            while (epoch := await identity.read()) is None:
                try:
                    await producer.send_and_wait(settings.topic(IDENTITY), uuid.uuid4().hex.encode(), partition=0)
                except KafkaError:  # the topic is still being created: read and try again
                    await asyncio.sleep(0.1)
        return epoch
    finally:
        await identity.stop()
