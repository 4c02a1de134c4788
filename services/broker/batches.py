"""Many messages to one topic with aiokafka's batch API: one produce request per partition, not per message."""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

__all__ = ["Message", "send_batched", "send_one_at_a_time"]

Message = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]  # key, value (None: tombstone), headers


async def send_batched(producer: AIOKafkaProducer, topic: str, messages: Iterable[Message]) -> list[asyncio.Future]:
    """Queue `messages`; return the delivery futures. A key's partition is its CRC-32 (computed in C, unlike
    aiokafka's murmur2): every reader of the topics written this way reads all of their partitions."""
    partitions = len(await producer.partitions_for(topic))
    builders: dict[int, BatchBuilder] = {}
    delivered: list[asyncio.Future] = []
    for key, value, headers in messages:
        partition = random.randrange(partitions) if key is None else zlib.crc32(key) % partitions
        builder = builders.get(partition) or producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full: send it
            delivered.append(await producer.send_batch(builder, topic, partition=partition))
            builder = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None, headers=headers)
        builders[partition] = builder
    for partition, builder in builders.items():
        delivered.append(await producer.send_batch(builder, topic, partition=partition))
    return delivered


async def send_one_at_a_time(producer: AIOKafkaProducer, messages: Mapping[tuple[str, int], Sequence[bytes]]) -> None:
    """Send each (topic, partition)'s messages in order and wait, one at a time per partition (the n-th of every
    partition together), so that each record batch holds one record: the embedded Tansu 0.6.0 returns nothing
    to a fetch positioned inside a partition's last record batch, and reports its end offset short of it."""
    for wave in zip_longest(*messages.values()):
        await asyncio.gather(*[await producer.send(topic, value, partition=partition)
                               for (topic, partition), value in zip(messages, wave, strict=True) if value is not None])
