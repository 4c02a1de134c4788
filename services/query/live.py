"""Live reads of the replica through the shared core: a period's view as of now, statements so far, scores."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from decimal import Decimal
from functools import partial

from services.query.read_model import ReadModel
from shared.fold import Fold, Party
from shared.measures import measure_values
from shared.payouts import MeasureView
from shared.periods import Period, day_of, ts_of
from shared.plans import PlanSet, Scorecard
from shared.scorecards import Score, score
from shared.settlement import Statement, attributes_for, payout_lines

__all__ = ["as_of", "counterparties", "default_period", "live_key", "ranking", "relationship_measures", "scorecard",
           "statement", "view_of"]


def as_of(period: Period, now: datetime) -> datetime:
    """Where a live window of `period` ends: `min(now, end of period)`."""
    return min(now, period.end)


def live_key(view: MeasureView) -> tuple[Period, int]:
    """What a party's results in `view` depend on besides its records: the period, and the UTC day its windows
    end (windows are whole days, `shared.periods.Window`: the same all day long)."""
    return view.period, view.window("period").end_day


def view_of(model: ReadModel, period: Period, now: datetime) -> MeasureView:
    """The measures of `period` as of now, from the replica's roll-ups: the one view a request reads through."""
    return MeasureView(model, period, ts_of(as_of(period, now)))  # type: ignore[arg-type]  # reads like a fold


def default_period(plans: PlanSet, party_id: str, party: Party | None, now: datetime) -> Period:
    """The current period of the kind of the first plan that would apply to the party as it is now; the current
    month without a plan."""
    kinds = [plan.period for plan in plans.plans_for(party_id, party.on(day_of(ts_of(now))))] if party else []
    return Period.containing(ts_of(now), kinds[0] if kinds else "month")


def statement(plans: PlanSet, party_id: str, party: Party, view: MeasureView) -> Statement:
    """What the plan versions paying the party for the view's period pay so far, one rounded line per component."""
    return Statement(party_id, attributes_for(party, view.period).kind,
                     tuple(payout_lines(plans, party_id, party, view)))


def scorecard(plans: PlanSet, party_id: str, party: Party, view: MeasureView) -> Score | None:
    """The score on the first scorecard that applies to the party in the view's period, or None when none does."""
    cards = plans.scorecards_for(party_id, attributes_for(party, view.period))
    return score(cards[0], party_id, view) if cards else None


def ranking(model: ReadModel, card: Scorecard, view: MeasureView) -> list[tuple[str, Score]]:
    """Every party the scorecard applies to in the view's period with its score (memoized per party), best first,
    ties by party id."""
    key = ("score", card.scorecard, *live_key(view))
    scores = [(party_id, model.memo(party_id, key, partial(score, card, party_id, view)))
              for party_id, party in model.fold.parties.items()
              if card.applies_to.matches(party_id, attributes_for(party, view.period))]
    return sorted(scores, key=lambda item: (-item[1].score, item[0]))


def relationship_measures(fold: Fold, party_id: str, counterparty_id: str, view: MeasureView,
                          window: str) -> tuple[dict[str, Decimal | None], int]:
    """The measures of one relationship over `window` of the view's period, and the events behind them."""
    totals = fold.totals(party_id, view.window(window), counterparty_id)
    return measure_values(totals), totals.events


def counterparties(fold: Fold, party_id: str, after: str | None, limit: int) -> tuple[list[str], bool]:
    """Up to `limit` counterparties of the party in id order, from just after `after`; and whether more follow."""
    ordered = sorted(fold.relationships.get(party_id, {}))
    start = 0 if after is None else bisect_right(ordered, after)
    return ordered[start:start + limit], start + limit < len(ordered)
