"""Async engines and sessions for PostgreSQL or SQLite, and the schema migration that prepares them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["Clock", "create_engine", "create_sessions", "insert_for", "migrate", "opened_database", "reachable",
           "utc_now"]

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, the default `Clock` of stores that stamp rows."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Writers from several connections queue for the lock instead of failing at once.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # WAL is stored in the file, so one connection that gets it is enough; while another holds the lock
    # (say, migrating), it or a later connection switches the file.
    with contextlib.suppress(sqlite3.OperationalError):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; a SQLite file gets its directory created and runs in WAL mode.

    A new SQLite file and directory are readable by their owner only (SQLite gives its `-wal` and `-shm`
    files the database file's mode).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory every store takes."""
    return async_sessionmaker(engine, expire_on_commit=False)


def insert_for(session: AsyncSession, table: Table) -> Any:
    """The dialect's own INSERT, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


MIGRATION_LOCK = 0x434F4E56  # any fixed key: services starting together migrate one after the other


def _upgrade(connection: Connection) -> None:
    # Several services may migrate one database at once (each does at start): take the database's write
    # lock first, so the others wait and then find the schema at head.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema revision."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()



@asynccontextmanager
async def opened_database(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Migrate the database at `url`, open it, and dispose of the engine on exit."""
    await migrate(url)
    engine = create_engine(url)
    try:
        yield create_sessions(engine)
    finally:
        await engine.dispose()


async def reachable(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether the database answers a trivial query."""
    async with sessions() as session:
        return (await session.execute(text("SELECT 1"))).scalar() == 1
