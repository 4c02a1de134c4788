"""A Faust table whose changelog writes can be awaited until the broker has acknowledged them."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage

__all__ = ["AcknowledgedTable", "acknowledged"]


async def acknowledged(futures: list[FutureMessage]) -> None:
    """Wait until the broker has acknowledged every message of `futures` (raises if one failed)."""
    await asyncio.gather(*futures)


class AcknowledgedTable(faust.Table):
    """Keeps the futures of its changelog writes; `acknowledged()` waits for them.

    Faust's `producer.flush()` is not enough: its buffer counts a message as gone once taken off the
    queue, before aiokafka has it, so a flush can return while that message is still unsent.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._unacknowledged: list[FutureMessage] = []
        super().__init__(*args, **kwargs)

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        future = super().send_changelog(*args, **kwargs)
        self._unacknowledged.append(future)
        return future

    async def acknowledged(self) -> None:
        """Wait until every changelog write made so far is acknowledged."""
        futures, self._unacknowledged = self._unacknowledged, []
        await acknowledged(futures)
