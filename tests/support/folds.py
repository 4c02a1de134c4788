"""Folding hand-made histories and reading their measures, the way the services do."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from shared.events import Event
from shared.fold import Fold
from shared.measures import measure_values
from shared.payouts import MeasureView
from shared.periods import Period, Window

__all__ = ["fold_of", "measures", "team_measures"]


def fold_of(events: Iterable[Event], fold: Fold | None = None) -> Fold:
    """A fold of `events` (into `fold`, else a new one), applied in the given (arrival) order."""
    fold = Fold() if fold is None else fold
    for event in events:
        fold.apply(event)
    return fold


def measures(fold: Fold, party: str, period: str = "2026-03", window: str = "period",
             counterparty: str | None = None, as_of_ts: int | None = None) -> dict[str, Decimal | None]:
    """A party's (or one relationship's) measures for `window` of `period`, as of its end by default."""
    p = Period.parse(period)
    span = Window.of(window, p, p.end_ts if as_of_ts is None else as_of_ts)
    return measure_values(fold.totals(party, span, counterparty))


def team_measures(fold: Fold, manager: str, period: str = "2026-03", window: str = "period"
                  ) -> dict[str, Decimal | None]:
    """A manager's `scope: team` measures: its direct reports taken together."""
    p = Period.parse(period)
    return MeasureView(fold, p, p.end_ts).measures(manager, window, scope="team")[0]
