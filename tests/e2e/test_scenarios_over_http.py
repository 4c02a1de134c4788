"""The reference stories through the real system: HTTP ingest, broker, processor, ledger, settlement, query."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.databases import database_urls
from tests.support.live import run_story
from tests.support.scenarios import load_scenario
from tests.support.system import running_system

pytestmark = pytest.mark.e2e


async def _run_story(name: str, database: str, tmp_path: Path, workers: int = 1) -> None:
    scenario = load_scenario(name)
    async for url in database_urls(database, tmp_path):
        with running_system(tmp_path, scenario.plans_dir, url, workers) as system:
            await run_story(system, scenario)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_small_story_pays_every_statement_to_the_cent(database: str, tmp_path: Path) -> None:
    await _run_story("small", database, tmp_path)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_reorg_story_pays_every_statement_to_the_cent(database: str, workers: int, tmp_path: Path) -> None:
    await _run_story("reorg", database, tmp_path, workers)


@pytest.mark.slow
async def test_quarter_story_pays_every_statement_to_the_cent(tmp_path: Path) -> None:
    await _run_story("quarter", "postgresql", tmp_path)
