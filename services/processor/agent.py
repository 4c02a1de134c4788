"""The one agent: batches of inbound messages through `ProcessorState`, into the state table and out to Kafka."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from faust.types import FutureMessage, Message, StreamT, TopicT

from services.processor.metrics import BATCH_SECONDS, EVENTS, LAG_SECONDS
from services.processor.state import MARKER, Batch, Inbound, ProcessorState
from services.processor.table import AcknowledgedTable, acknowledged
from services.settings import Settings

__all__ = ["MAX_BATCH", "dead_letter_headers", "fold_agent", "inbound"]

MAX_BATCH = 5000
log = logging.getLogger(__name__)


def inbound(message: Message) -> Inbound:
    """The parts of a Faust message the state needs."""
    headers = message.headers or []
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return Inbound(message.topic, message.partition, message.offset, message.key, message.value, pairs,
                   message.timestamp)


def dead_letter_headers(message: Inbound, reason: str) -> list[tuple[str, bytes]]:
    """The original headers plus `error` (the reason) and where the message was read."""
    return [*message.headers, ("error", reason.encode()), ("source_topic", message.topic.encode()),
            ("source_partition", str(message.partition).encode()),
            ("source_offset", str(message.offset).encode())]


def fold_agent(settings: Settings, table: AcknowledgedTable, measures: TopicT, dead_letter: TopicT
               ) -> Callable[[StreamT], Coroutine[Any, Any, None]]:
    """The agent function: fold each batch into the table, publish its measures and rejections, mark it complete."""
    state = ProcessorState(settings, table)
    restored = False

    def publish(batch: Batch) -> list[FutureMessage]:
        sent = [measures.send_soon(key=key, value=value) for key, value in batch.measures]
        for rejection in batch.rejected:
            message = rejection.message
            log.info("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset,
                     rejection.reason)
            sent.append(dead_letter.send_soon(key=message.key, value=message.value,
                                              headers=dead_letter_headers(message, rejection.reason)))
        return sent

    async def fold(stream: StreamT) -> None:
        nonlocal restored
        async for events in stream.take_events(MAX_BATCH, within=settings.measures_debounce_ms / 1000):
            if not restored:  # the first batch comes after Faust's table recovery
                rolled_back = state.restore()
                gc.freeze()  # the fold's many small objects need no scanning by the collector
                restored = True
                log.info("state restored: %d events seen, %d entries of an incomplete batch rolled back",
                         len(state.seen), rolled_back)
            with BATCH_SECONDS.time():
                batch = state.process([inbound(event.message) for event in events])
                published = publish(batch)
                await table.acknowledged()  # the marker must not become durable before the batch's writes,
                for partition in range(table.partitions):
                    table.send_changelog(partition, MARKER, state.marker(batch))
                await table.acknowledged()  # nor the next batch's writes before the marker
                await acknowledged(published)
            EVENTS.labels("applied").inc(batch.applied)
            EVENTS.labels("duplicate").inc(batch.duplicates)
            EVENTS.labels("dead_letter").inc(len(batch.rejected))
            if batch.newest_timestamp_s is not None:
                LAG_SECONDS.set(max(0.0, time.time() - batch.newest_timestamp_s))

    return fold
