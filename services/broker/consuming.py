"""The end of a background consuming task, shared by every service that reads a topic in a loop."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer

__all__ = ["stop_consuming"]


async def stop_consuming(task: asyncio.Task | None, consumer: AIOKafkaConsumer | None) -> None:
    """Cancel `task` (re-raising what made it fail, if it did), then close `consumer`."""
    try:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        if consumer is not None:
            await consumer.stop()
