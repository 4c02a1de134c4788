"""The automatic close against a real store: a close that fails is counted and tried again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.plan_files import DEFAULT_PLANS_DIR
from services.plans import PlansInForce
from services.settings import Settings
from services.settlement.autoclose import closing_automatically
from services.settlement.closer import Closer
from services.store.database import migrate, opened_database
from services.store.ledger import LedgerStore
from services.store.settlements import SettlementStore
from shared.settlement import Settlement

pytestmark = pytest.mark.integration

NOW = datetime(2026, 4, 2, 12, tzinfo=UTC)  # March ended more than an hour ago


def timeouts() -> float:
    return REGISTRY.get_sample_value("convergence_settlement_closes_total", {"outcome": "timeout"}) or 0.0


async def test_a_close_that_times_out_is_counted_and_tried_again_at_the_next_round(database_url: str) -> None:
    await migrate(database_url)
    catch_ups: list[int] = []

    async def catch_up() -> None:  # the ledger behind the event topics once, then caught up
        catch_ups.append(1)
        if len(catch_ups) == 1:
            raise TimeoutError("the ledger is behind")

    async def announce(settlement: Settlement) -> None:
        pass

    plans, before = PlansInForce.load(DEFAULT_PLANS_DIR), timeouts()
    async with opened_database(database_url) as sessions:
        closer = Closer(Settings(database_url=database_url, _env_file=None), plans, LedgerStore(sessions),
                        SettlementStore(sessions), catch_up, announce, lambda: NOW)
        async with closing_automatically(closer, plans, timedelta(hours=1), lambda: NOW, every_s=0.05):
            async with asyncio.timeout(30):
                while "2026-03" not in await closer.closed_periods():
                    await asyncio.sleep(0.05)
    assert timeouts() == before + 1
