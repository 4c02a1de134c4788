"""Reading the ledger: its events in ledger order, and waiting until it holds everything published.

The settlement and lineage read the ledger (the record of every accepted event), not the broker; before a
close they wait until the ledger service has appended every message published so far.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.broker.binding import loads
from services.broker.identity import BrokerIdentity
from services.store.ledger import LedgerStore
from shared.events import Event, parse_event

__all__ = ["LEDGER_GROUP", "caught_up", "fetch_end_offsets", "ledger_events", "wait_caught_up"]

LEDGER_GROUP = "convergence-ledger"  # the ledger service's consumer group, under which its positions are stored
log = logging.getLogger(__name__)


async def ledger_events(ledger: LedgerStore, currency: str, *, after_seq: int = 0,
                        up_to_seq: int | None = None) -> AsyncIterator[tuple[int, Event]]:
    """(seq, event) of the ledger rows after `after_seq` (up to `up_to_seq`), in ledger order.

    A row that is no longer a valid event (stored before a bound it breaks was enforced) is left out, as
    the processor leaves it out when the row is published again.
    """
    async for stored in ledger.iter_events(up_to_seq=up_to_seq, after_seq=after_seq):
        try:
            event = parse_event(loads(stored.body), currency)
        except ValueError as error:
            log.warning("ledger row %d is not a valid event and is left out: %s", stored.seq, error)
            continue
        yield stored.seq, event


async def fetch_end_offsets(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The current end offset of every partition of `topics` (a started consumer asks the broker)."""
    await consumer.topics()  # refreshes the metadata, so new topics and partitions are seen
    partitions = [TopicPartition(topic, partition)
                  for topic in topics for partition in consumer.partitions_for_topic(topic) or ()]
    return await consumer.end_offsets(partitions) if partitions else {}


async def caught_up(store: LedgerStore, epoch: str, end_offsets: dict[TopicPartition, int]) -> bool:
    """Whether the ledger holds every message of log `epoch` before `end_offsets`."""
    positions = await store.positions(LEDGER_GROUP, epoch)
    return all(positions.get((tp.topic, tp.partition), 0) >= end for tp, end in end_offsets.items())


async def wait_caught_up(consumer: AIOKafkaConsumer, identity: BrokerIdentity, store: LedgerStore,
                         topics: Iterable[str], timeout_s: float, broker_timeout_s: float = 5.0,
                         poll_s: float = 0.05) -> None:
    """Wait until the ledger holds every message published to `topics` before this call; TimeoutError when it
    does not in `timeout_s`, or the broker does not answer in `broker_timeout_s`."""
    try:
        async with asyncio.timeout(broker_timeout_s):
            epoch = await identity.current()
            end_offsets = await fetch_end_offsets(consumer, topics)
    except TimeoutError:
        raise TimeoutError(f"the broker did not answer within {broker_timeout_s:g} s") from None
    if epoch is None:
        raise TimeoutError("the broker has no identity yet: its topics are being created")
    try:
        async with asyncio.timeout(timeout_s):
            while not await caught_up(store, epoch, end_offsets):
                await asyncio.sleep(poll_s)
    except TimeoutError:
        raise TimeoutError(f"the ledger had not read every message of the topics after {timeout_s:g} s") from None
