"""Background tasks that live exactly as long as a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

__all__ = ["cancel_and_wait", "running"]


async def cancel_and_wait(task: asyncio.Task) -> None:
    """Cancel `task` and wait for it; what made it fail, if anything did, is raised."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def running(coroutine: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task]:
    """Run `coroutine` as a task while the block runs; cancel it when the block ends."""
    task = asyncio.create_task(coroutine, name=name)
    try:
        yield task
    finally:
        await cancel_and_wait(task)
