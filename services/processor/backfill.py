"""Inbound messages the Faust consumer skipped, read back before a batch is folded.

Faust's consumer can drop records it has fetched while a rebalance settles: its `getmany` stops
iterating a fetch when the flow is suspended or the generation changes, and relies on seeking to the
committed offsets to read the rest again, which a partition with no committed offset yet does not get.
(Which of its paths fired here was not pinned down.) Seen in restarts of
`tests/integration/test_processor.py`: a restarted processor got offsets 0-6 and 8-11 of one partition,
never 7; the test failed in 2 of 61 runs without this module, and needed a read-back in 4 of 46 with it.

The processor knows the next offset it expects from every input partition (`ProcessorState.positions`,
or the partition's first offset if it never read it), so a batch that skips offsets says so. `Backfill`
reads the skipped ones with its own consumer (no group: it commits nothing and moves nobody's offsets)
and puts them in their place. An offset the broker does not have (a compacted or transactional topic)
is not waited for: the read ends at the batch's own later offset. A skipped record with nothing after it
shows no gap: `after` reads what follows a position, for the agent's watch over partitions that stopped
moving (seen here too: a restarted processor that never got the last event of a partition).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.processor.state import Inbound, ProcessorState
from services.settings import Settings

__all__ = ["Backfill", "record_inbound"]

READ_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)


class Backfill:
    """Completes batches from the broker; `stop` it with the processor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._starts: dict[tuple[str, int], int] = {}  # first offset of partitions the state never read

    async def complete(self, state: ProcessorState, messages: Sequence[Inbound]) -> Sequence[Inbound]:
        """`messages` with every offset they skip read back, in offset order per partition."""
        unknown = {(m.topic, m.partition) for m in messages} - state.positions.keys() - self._starts.keys()
        if unknown:
            consumer = await self._started()
            firsts = await consumer.beginning_offsets([TopicPartition(*where) for where in unknown])
            self._starts.update({(tp.topic, tp.partition): offset for tp, offset in firsts.items()})
        gaps = state.missing(messages, self._starts)
        if not gaps:
            return messages
        have = {(m.topic, m.partition, m.offset) for m in messages}
        found = [message for where, (first, end) in gaps.items() for message in await self._read(where, first, end)
                 if (message.topic, message.partition, message.offset) not in have]
        log.warning("read back %d messages the consumer skipped: %s", len(found),
                    ", ".join(f"{topic}[{partition}]@{first}..{end - 1}"
                              for (topic, partition), (first, end) in gaps.items()))
        return sorted([*messages, *found], key=lambda m: (m.topic, m.partition, m.offset))

    async def after(self, positions: Mapping[tuple[str, int], int | None]) -> list[Inbound]:
        """What one short read finds at or after `positions` (None: the partition's first offset)."""
        if not positions:
            return []
        consumer = await self._started()
        consumer.assign([TopicPartition(*where) for where in positions])
        for where, position in positions.items():
            if position is None:
                await consumer.seek_to_beginning(TopicPartition(*where))
            else:
                consumer.seek(TopicPartition(*where), position)
        return [record_inbound(record) for records in (await consumer.getmany(timeout_ms=200)).values()
                for record in records]

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self._settings.resolved_kafka_bootstrap, group_id=None, enable_auto_commit=False,
                fetch_max_wait_ms=self._settings.fetch_max_wait_ms)
            await self._consumer.start()
        return self._consumer

    async def _read(self, where: tuple[str, int], first: int, end: int) -> list[Inbound]:
        """The partition's records from offset `first` up to (not including) `end`."""
        consumer, tp = await self._started(), TopicPartition(*where)
        consumer.assign([tp])
        consumer.seek(tp, first)
        found: list[Inbound] = []
        async with asyncio.timeout(READ_TIMEOUT_S):
            while await consumer.position(tp) < end:
                for record in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                    if record.offset < end:
                        found.append(record_inbound(record))
        return found


def record_inbound(record: ConsumerRecord) -> Inbound:
    """The parts of an aiokafka record the state needs (as `agent.inbound` takes them from a Faust message)."""
    timestamp_s = None if record.timestamp is None else record.timestamp / 1000
    return Inbound(record.topic, record.partition, record.offset, record.key, record.value, list(record.headers),
                   timestamp_s)
