"""Kafka clients' start and end: started or closed again, and the end of a background consuming task."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.background import cancel_and_wait

__all__ = ["started", "stop_consuming"]

Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer)


async def started(client: Client) -> Client:
    """`client`, started; closed again when it cannot start (a broker that is away), so nothing leaks."""
    try:
        await client.start()
    except BaseException:
        await client.stop()
        raise
    return client


async def stop_consuming(task: asyncio.Task | None, consumer: AIOKafkaConsumer | None) -> None:
    """Cancel `task` (re-raising what made it fail, if it did), then close `consumer`."""
    try:
        if task is not None:
            await cancel_and_wait(task)
    finally:
        if consumer is not None:
            await consumer.stop()
