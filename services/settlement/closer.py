"""Period close: catch the ledger up, fold it with the shared fold, freeze the statements, announce them."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.plans import PlansInForce
from services.settings import Settings
from services.settlement.lineage import events_behind
from services.settlement.metrics import CLOSE_SECONDS, CLOSES
from services.store.ledger import LedgerStore
from services.store.reading import ledger_events
from services.store.settlements import SettlementStore
from shared.fold import Conflict, Fold
from shared.periods import Period
from shared.settlement import Book, CloseRefused, Settlement, settlement_from_data, settlement_to_data

__all__ = ["Closer", "PeriodNotEnded"]

log = logging.getLogger(__name__)


class PeriodNotEnded(ValueError):
    """A close requested before the end of its period (HTTP 409 `period_not_ended`)."""


class Closer:
    """Closes periods one at a time; its fold follows the ledger incrementally between closes."""

    def __init__(self, settings: Settings, plans: PlansInForce, ledger: LedgerStore, settlements: SettlementStore,
                 catch_up: Callable[[], Awaitable[None]], announce: Callable[[Settlement], Awaitable[None]],
                 clock: Callable[[], datetime]) -> None:
        self._settings, self._plans = settings, plans
        self._ledger, self._settlements = ledger, settlements
        self._catch_up, self._announce, self._clock = catch_up, announce, clock
        self._fold = Fold(settings.provider_id)
        self._seq = 0
        self._poisoned: set[int] = set()  # ledger rows the fold failed on: left out, as the processor does
        self._lock = asyncio.Lock()

    async def frozen(self, period: str) -> Settlement | None:
        record = await self._settlements.get(period)
        return None if record is None else settlement_from_data(json.loads(record.body))

    async def close(self, period: Period, actor: str) -> Settlement:
        """Close `period` as `actor` (a token name), or return its frozen settlement; `PeriodNotEnded` before
        its end, `CloseRefused` when out of order, `TimeoutError` when the ledger did not catch up. Every call
        is counted by its outcome (`CLOSES`), whoever made it: the API or the automatic close."""
        try:
            settlement = await self._close(period, actor)
        except PeriodNotEnded:
            CLOSES.labels("not_ended").inc()
            raise
        except CloseRefused:
            CLOSES.labels("refused").inc()
            raise
        except TimeoutError:
            CLOSES.labels("timeout").inc()
            raise
        CLOSES.labels("closed").inc()
        return settlement

    async def _close(self, period: Period, actor: str) -> Settlement:
        if self._clock() < period.end:
            raise PeriodNotEnded(f"cannot close {period} before it ends at {period.end.isoformat()}")
        async with self._lock:
            existing = await self.frozen(str(period))
            if existing is not None:
                return existing
            started = time.perf_counter()
            await self._catch_up()
            await self._follow_ledger(await self._ledger.last_seq())
            book = Book({r.period: settlement_from_data(json.loads(r.body)) for r in await self._settlements.all()})
            await self._plans.refresh()  # what is on disk; refused, it is audited and the plans in force stay
            settlement = book.close(self._fold, self._plans.current, period, self._clock())
            await self._settlements.save(str(period), settlement.closed_at, settlement.plan_hashes,
                                         json.dumps(settlement_to_data(settlement)), self._seq, closed_by=actor)
            CLOSE_SECONDS.observe(time.perf_counter() - started)
        await self._announce(settlement)
        return settlement

    async def closed_periods(self) -> set[str]:
        return {record.period for record in await self._settlements.all()}

    async def events_behind(self, period: str, party_id: str) -> list[dict] | None:
        """Each line of a frozen statement with the ledger events behind it; None if there is no statement."""
        async with self._lock:
            await self._follow_ledger(await self._ledger.last_seq())
            settled = {r.period: (settlement_from_data(json.loads(r.body)), r.event_seq)
                       for r in await self._settlements.all()}
            if period not in settled or party_id not in settled[period][0].statements:
                return None
            return await events_behind(party_id, period, settled, self._fold, self._ledger, self._settings.currency)

    async def _follow_ledger(self, up_to_seq: int) -> None:
        """Fold the ledger rows written since the last close, in ledger order; a row the fold fails on (not a
        `Conflict`: a bug, or input no check foresaw) is left out, and the rest folded again without it."""
        while (failed := await self._fold_rows(up_to_seq)) is not None:
            self._poisoned.add(failed)
            self._fold, self._seq = Fold(self._settings.provider_id), 0

    async def _fold_rows(self, up_to_seq: int) -> int | None:
        async for seq, event in ledger_events(self._ledger, self._settings.currency, after_seq=self._seq,
                                              up_to_seq=up_to_seq):
            if seq not in self._poisoned:
                try:
                    self._fold.apply(event)
                except Conflict:  # dead-lettered by the processor, kept in the ledger for the audit trail
                    pass
                except Exception:
                    log.exception("settlement: folding ledger row %d failed; it is left out", seq)
                    return seq
            self._seq = seq
        return None
