"""Databases for tests: a private SQLite file or a private PostgreSQL database, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

__all__ = ["POSTGRES_URL", "database_urls"]

POSTGRES_URL = os.environ.get("CONVERGENCE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}")


async def database_urls(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """Yield the URL of a fresh database of `kind` (`sqlite` or `postgresql`) for one test."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/nested/convergence.db"
        return
    name = f"convergence_test_{uuid.uuid4().hex}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
