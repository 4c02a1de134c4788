"""The relay: ledger rows into the inbound topics of the broker log in use (a transactional outbox).

An event accepted over HTTP is in the ledger before it is answered 202; the relay publishes it. After a
crash between the two, or onto a broker that lost its log (a new epoch, `services.broker.identity`), the
relay publishes every row that log lacks, in ledger order, from the cursor it keeps per epoch: so a
new broker is rebuilt from the ledger with nothing to configure. A row may be published twice (a crash
after the send and before the cursor moved); every reader deduplicates by (source, id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.broker.batches import Message, send_batched
from services.broker.binding import CONTENT_TYPE
from services.broker.consuming import started
from services.broker.identity import BrokerIdentity
from services.broker.topics import ensure_topics
from services.ledger.metrics import RELAY_CURSOR, RELAYED
from services.settings import Settings
from services.store.ledger import LedgerStore, StoredEvent

__all__ = ["Relay"]

BATCH = 5000
IDLE_WAIT_S = 1.0
RETRY_DELAYS_S = (0.2, 0.5, 1, 2, 5)
HEADERS = [("content-type", CONTENT_TYPE.encode())]
log = logging.getLogger(__name__)


def _messages(rows: list[StoredEvent]) -> dict[str, list[Message]]:
    by_topic: defaultdict[str, list[Message]] = defaultdict(list)
    for row in rows:
        by_topic[row.topic].append((row.key.encode(), row.body.encode(), HEADERS))
    return by_topic


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
        rows, upto = await self._ledger.unpublished(epoch, cursor, BATCH)
        sent = [future for topic, messages in _messages(rows).items()
                for future in await send_batched(producer, topic, messages)]
        await asyncio.gather(*sent)
        if upto > cursor:
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
