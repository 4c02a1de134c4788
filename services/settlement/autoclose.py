"""Closing periods automatically, `close_grace_hours` after they end (SPEC §5.1), when configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from services.background import running
from services.plans import PlansInForce
from services.settlement.closer import Closer
from shared.periods import Period, ts_of
from shared.plans import PlanSet

__all__ = ["ACTOR", "closing_automatically", "due_periods"]

log = logging.getLogger(__name__)
ACTOR = "autoclose"
"""Who closes a period automatically, as its closer and in the audit log."""


def due_periods(plans: PlanSet, closed: set[str], now: datetime, grace: timedelta) -> list[Period]:
    """Periods to close now, in order: for each period kind the plans use, every period after the last
    closed one whose end is at least `grace` ago (only the latest such period when none was ever closed)."""
    due: list[Period] = []
    for kind in sorted({plan.period for plan in plans.plans}):
        latest = Period.containing(ts_of(now - grace), kind)
        latest = Period.containing(latest.start_ts - 1, kind)  # the last period that has ended
        done = sorted(p for p in map(Period.parse, closed) if p.kind == kind)
        period = done[-1].next() if done else latest
        while period <= latest:
            due.append(period)
            period = period.next()
    return due


@contextlib.asynccontextmanager
async def closing_automatically(closer: Closer, plans: PlansInForce, grace: timedelta, clock: Callable[[], datetime],
                                every_s: float = 60.0) -> AsyncIterator[None]:
    """While the block runs, close every due period once a minute (of the kinds the plans in force use). A close
    that fails (counted by the closer) is logged and tried again at the next round, before any later period."""

    async def loop() -> None:
        while True:
            try:
                for period in due_periods(plans.current, await closer.closed_periods(), clock(), grace):
                    log.info("closing %s automatically", period)
                    await closer.close(period, ACTOR)
            except Exception:
                log.exception("closing automatically failed: tried again in %.0f s", every_s)
            await asyncio.sleep(every_s)

    async with running(loop(), "autoclose"):
        yield
