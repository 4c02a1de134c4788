"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import shared.fold
from tests.support.databases import database_urls


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled fold older than its source (see the Makefile's `compile`)."""
    compiled, source = Path(shared.fold.__file__), Path(shared.__file__).with_name("fold.py")
    if compiled != source and compiled.stat().st_mtime < source.stat().st_mtime:
        pytest.exit(f"{source} changed after it was compiled to {compiled.name}: run `make compile`", returncode=4)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A fresh, empty database: once SQLite, once PostgreSQL."""
    async for url in database_urls(request.param, tmp_path):
        yield url
