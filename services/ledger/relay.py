"""The relay: the ledger into the processor's stream topic of the broker log in use (a transactional outbox).

Every event is in the ledger before anything acts on it: one accepted over HTTP before it is answered
202, one a source system published to an inbound topic once the ledger service has appended it. The
relay publishes the rows after its cursor, in ledger order, to the stream partition of each row's key
(`shared.fold.home_key`), many rows per message: each round sends every partition one message per chunk
saying which seqs it covers (`services.processor.partitions`), so a partition knows when it missed one.
The cursor is kept per broker log (`services.broker.identity`): onto a broker that lost its log, the
relay publishes the whole ledger again, so a new broker is rebuilt with nothing to configure. A round
may be published twice (a crash after the send and before the cursor moved): partitions skip the seqs
they have.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.broker.batches import send_one_at_a_time
from services.broker.consuming import started
from services.broker.identity import BrokerIdentity
from services.broker.topics import STREAM, ensure_topics
from services.ledger.metrics import RELAY_CURSOR, RELAYED
from services.settings import Settings
from services.store.ledger import LedgerStore, StoredEvent
from shared.fold import partition_of

__all__ = ["Relay"]

BATCH = 5000
CHUNK = 500  # rows per message: well inside a broker's default 1 MB message size
IDLE_WAIT_S = 1.0
RETRY_DELAYS_S = (0.2, 0.5, 1, 2, 5)
log = logging.getLogger(__name__)


def relay_message(epoch: str, after: int, upto: int, events: list[tuple[int, str]]) -> bytes:
    """The stream message of the ledger rows `(seq, CloudEvent JSON)` of one partition with `after < seq ≤ upto`,
    for broker log `epoch`."""
    rows = ",".join(f"[{seq},{body}]" for seq, body in events)
    return f'{{"epoch":{json.dumps(epoch)},"ledger":[{after},{upto}],"events":[{rows}]}}'.encode()


def stream_messages(epoch: str, rows: list[StoredEvent], after: int, upto: int, partitions: int
                    ) -> dict[int, list[bytes]]:
    """Partition -> its messages for the rows with `after < seq ≤ upto`: its rows in chunks, each chunk
    covering the seqs from the end of the one before it; a partition without rows gets one empty message."""
    mine: list[list[tuple[int, str]]] = [[] for _ in range(partitions)]
    for row in rows:
        mine[partition_of(row.key, partitions)].append((row.seq, row.body))
    messages: dict[int, list[bytes]] = {}
    for partition, events in enumerate(mine):
        start = after
        for first in range(0, max(len(events), 1), CHUNK):
            chunk = events[first:first + CHUNK]
            end = upto if first + CHUNK >= len(events) else chunk[-1][0]
            messages.setdefault(partition, []).append(relay_message(epoch, start, end, chunk))
            start = end
    return messages


class Relay:
    """Publishes what the current broker log lacks; `nudge` it after appending rows. `run` until cancelled."""

    def __init__(self, settings: Settings, ledger: LedgerStore) -> None:
        self._settings = settings
        self._ledger = ledger
        self._identity = BrokerIdentity(settings)
        self._wake = asyncio.Event()
        self.failing: str | None = None  # why the last round failed, while it keeps failing

    def nudge(self) -> None:
        """Rows were appended: publish them now rather than at the next idle round."""
        self._wake.set()

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """Publish one batch of the rows the broker log lacks; return how many (0: none left, or no log yet)."""
        epoch = await self._identity.current()
        if epoch is None:  # a broker without our topics: new, or it lost them
            await ensure_topics(self._settings)
            epoch = await self._identity.read()
            if epoch is None:
                return 0
        cursor = await self._ledger.relay_cursor(epoch)
        rows, upto = await self._ledger.unpublished(cursor, BATCH)
        if upto == cursor:
            return 0
        stream = self._settings.topic(STREAM)
        partitions = len(await producer.partitions_for(stream))
        messages = stream_messages(epoch, rows, cursor, upto, partitions)
        await send_one_at_a_time(producer, {(stream, partition): chunks for partition, chunks in messages.items()})
        await self._ledger.move_relay_cursor(epoch, upto)
        RELAYED.inc(len(rows))
        RELAY_CURSOR.set(upto)
        return len(rows)

    async def run(self) -> None:
        """Publish whenever nudged (and every `IDLE_WAIT_S`); a broker that is away is retried with backoff."""
        producer, failures = None, 0
        try:
            while True:
                try:
                    producer = producer or await self._producer()
                    published = await self.publish_pending(producer)
                except (KafkaError, OSError, TimeoutError) as error:
                    if self.failing is None:  # once per outage, not once per retry
                        log.warning("relay: the broker is unavailable (%s); retrying", error)
                    self.failing = type(error).__name__  # the detail is logged, not served
                    await asyncio.sleep(RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)])
                    failures += 1
                    continue
                if self.failing is not None:
                    log.warning("relay: the broker is back")
                self.failing, failures = None, 0
                if not published:
                    self._wake.clear()
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation that
                    # meets its inner wait (seen here: the relay then never stopped)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_WAIT_S):
                            await self._wake.wait()
        finally:
            if producer is not None:
                await producer.stop()
            await self._identity.stop()

    async def drain(self, timeout_s: float) -> int:
        """Publish until the broker log lacks nothing (for `convergence rebuild`); return how many."""
        producer, total = await self._producer(), 0
        try:
            async with asyncio.timeout(timeout_s):
                while published := await self.publish_pending(producer):
                    total += published
        finally:
            await producer.stop()
            await self._identity.stop()
        return total

    async def _producer(self) -> AIOKafkaProducer:
        return await started(AIOKafkaProducer(
            bootstrap_servers=self._settings.resolved_kafka_bootstrap, acks="all",
            enable_idempotence=self._settings.idempotent_producer, request_timeout_ms=self._settings.broker_timeout_ms))
