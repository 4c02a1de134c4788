"""The end of a background consuming task, shared by every service that reads a topic in a loop."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from services.background import cancel_and_wait

__all__ = ["stop_consuming"]


async def stop_consuming(task: asyncio.Task | None, consumer: AIOKafkaConsumer | None) -> None:
    """Cancel `task` (re-raising what made it fail, if it did), then close `consumer`."""
    try:
        if task is not None:
            await cancel_and_wait(task)
    finally:
        if consumer is not None:
            await consumer.stop()
