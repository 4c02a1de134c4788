"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.databases import database_urls


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A fresh, empty database: once SQLite, once PostgreSQL."""
    async for url in database_urls(request.param, tmp_path):
        yield url
