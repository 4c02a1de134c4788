"""Response bodies of the query API, built from the core's types; every decimal is rendered as a string.

Measures, targets, weights and attainments have at most 6 decimals; money has its currency's minor unit
(points: whole points); scores have 2 decimals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from shared.fold import Party
from shared.money import ZERO, render, round_money
from shared.plans import Plan
from shared.scorecards import MetricScore, Score
from shared.settlement import Statement

__all__ = ["Earnings", "Leaderboard", "LeaderboardEntry", "PartyMeasures", "PartyOut", "RelationshipMeasures",
           "RelationshipOut", "RelationshipPage", "ScorecardOut"]

Measures = dict[str, str | None]


def _money(amount: Decimal, currency: str) -> str:
    return str(round_money(amount, currency))


def _measures(values: dict[str, Decimal | None]) -> Measures:
    return {name: render(value) for name, value in values.items()}


class PlanRef(BaseModel):
    plan: str
    period: str
    currency: str
    hash: str

    @classmethod
    def of(cls, plan: Plan) -> PlanRef:
        return cls(plan=plan.plan, period=plan.period, currency=plan.currency, hash=plan.hash)


class Registration(BaseModel):
    """One `party.registered` of the party: the attributes it gives from the start of its UTC day (SPEC §2.3)."""

    effective_from: date
    event_time: datetime
    source: str
    id: str
    kind: str
    role: str | None
    manager_id: str | None
    tier: str | None
    name: str | None

    @classmethod
    def of(cls, registration: tuple) -> Registration:
        ts, source, event_id, kind, role, manager_id, tier, name = registration
        moment = datetime.fromtimestamp(ts / 1_000_000, UTC)
        return cls(effective_from=moment.date(), event_time=moment, source=source, id=event_id, kind=kind,
                   role=role, manager_id=manager_id, tier=tier, name=name)


class PartyOut(BaseModel):
    """A party's attributes in force now (as registered, or inferred), its registrations, the plans paying it for
    the current periods and its scorecards."""

    party_id: str
    kind: str
    role: str | None
    manager_id: str | None
    tier: str | None
    name: str | None
    plans: list[PlanRef]
    scorecards: list[str]
    registrations: list[Registration] = Field(description="oldest first; each in force until the next one's day")

    @classmethod
    def of(cls, party_id: str, party: Party, now: Party, plans: list[Plan], scorecards: list[str]) -> PartyOut:
        """`now`: the party's attributes in force today."""
        return cls(party_id=party_id, kind=now.kind, role=now.role, manager_id=now.manager_id,
                   tier=now.tier, name=now.name, plans=[PlanRef.of(plan) for plan in plans],
                   scorecards=scorecards, registrations=[Registration.of(r) for r in party.registrations])


class PartyMeasures(BaseModel):
    """A party's measures (or its team's) over a window of a period, and the events behind them."""

    party_id: str
    scope: str
    period: str
    window: str
    as_of: datetime
    events: int
    measures: Measures

    @classmethod
    def of(cls, party_id: str, scope: str, period: str, window: str, as_of: datetime,
           values: dict[str, Decimal | None], events: int) -> PartyMeasures:
        return cls(party_id=party_id, scope=scope, period=period, window=window, as_of=as_of, events=events,
                   measures=_measures(values))


class MetricOut(BaseModel):
    measure: str
    window: str
    value: str | None
    target: str
    weight: str
    attainment: str

    @classmethod
    def of(cls, metric: MetricScore) -> MetricOut:
        return cls(measure=metric.measure, window=metric.window, value=render(metric.value),
                   target=render(metric.target), weight=render(metric.weight), attainment=render(metric.attainment))


class EarningLine(BaseModel):
    plan: str
    component: str
    currency: str
    amount: str


class Earnings(BaseModel):
    """Rounded lines and their sums per currency; `total`/`currency` name the only one, null when several."""

    total: str | None
    currency: str | None
    totals: dict[str, str] = Field(description="currency -> sum of its rounded lines")
    lines: list[EarningLine]

    @classmethod
    def of(cls, statement: Statement, settlement_currency: str) -> Earnings:
        totals = statement.totals or {settlement_currency: ZERO}
        only = next(iter(totals)) if len(totals) == 1 else None
        return cls(total=None if only is None else _money(totals[only], only), currency=only,
                   totals={currency: _money(amount, currency) for currency, amount in totals.items()},
                   lines=[EarningLine(plan=line.plan, component=line.component, currency=line.currency,
                                      amount=_money(line.amount, line.currency)) for line in statement.lines])


class ScorecardOut(BaseModel):
    """A party's live scorecard and earnings so far in a period."""

    party_id: str
    kind: str
    period: str
    as_of: datetime
    scorecard: str | None
    score: str | None
    metrics: list[MetricOut]
    earnings: Earnings

    @classmethod
    def of(cls, party_id: str, kind: str, period: str, as_of: datetime, result: Score | None,
           earnings: Earnings) -> ScorecardOut:
        return cls(party_id=party_id, kind=kind, period=period, as_of=as_of,
                   scorecard=None if result is None else result.scorecard,
                   score=None if result is None else str(result.score),
                   metrics=[] if result is None else [MetricOut.of(metric) for metric in result.metrics],
                   earnings=earnings)


class RelationshipMeasures(BaseModel):
    counterparty_id: str
    events: int
    measures: Measures

    @classmethod
    def of(cls, counterparty_id: str, values: dict[str, Decimal | None], events: int) -> RelationshipMeasures:
        return cls(counterparty_id=counterparty_id, events=events, measures=_measures(values))


class RelationshipOut(RelationshipMeasures):
    """The measures of one (party, counterparty) relationship over a window of a period."""

    party_id: str
    period: str
    window: str
    as_of: datetime


class RelationshipPage(BaseModel):
    """A page of a party's relationships in counterparty id order; `next` is the cursor of the next page."""

    party_id: str
    period: str
    window: str
    as_of: datetime
    relationships: list[RelationshipMeasures]
    next: str | None


class LeaderboardEntry(BaseModel):
    rank: int
    party_id: str
    score: str


class Leaderboard(BaseModel):
    """Parties a scorecard applies to, by score (best first, ties by party id)."""

    scorecard: str
    period: str
    as_of: datetime
    entries: list[LeaderboardEntry]

    @classmethod
    def of(cls, scorecard: str, period: str, as_of: datetime, ranked: list[tuple[str, Score]]) -> Leaderboard:
        return cls(scorecard=scorecard, period=period, as_of=as_of,
                   entries=[LeaderboardEntry(rank=rank, party_id=party_id, score=str(result.score))
                            for rank, (party_id, result) in enumerate(ranked, start=1)])
