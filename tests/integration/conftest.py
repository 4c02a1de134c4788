"""Fixtures of the integration tier: a real, private Tansu broker per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.broker.embedded import embedded_broker, free_port


@pytest.fixture
async def tansu_bootstrap() -> AsyncIterator[str]:
    """The bootstrap address of an in-memory Tansu broker that lives for one test."""
    async with embedded_broker(free_port()) as bootstrap:
        yield bootstrap
