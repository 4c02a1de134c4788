"""Response bodies of the query API, built from the core's types; every decimal is rendered as a string.

Measures, targets, weights and attainments have at most 6 decimals; money has its currency's minor unit
(points: whole points); scores have 2 decimals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from shared.fold import Party, Span
from shared.money import ZERO, render, round_money
from shared.payouts import Check, Explanation, NextStep, Payout
from shared.periods import DAY_US
from shared.plans import Plan
from shared.scorecards import MetricScore, Score
from shared.settlement import Statement

__all__ = ["Earnings", "ExplainedEarnings", "History", "HistoryPoint", "Leaderboard", "LeaderboardEntry",
           "PartyMeasures", "PartyOut", "PartyPage", "PartySummary", "RelationshipMeasures", "RelationshipOut",
           "RelationshipPage", "ReportSpan", "ScorecardOut", "Team", "TeamMember"]

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


class PartySummary(BaseModel):
    """A party's attributes in force now."""

    party_id: str
    kind: str
    role: str | None
    manager_id: str | None
    name: str | None

    @classmethod
    def of(cls, party_id: str, now: Party) -> PartySummary:
        return cls(party_id=party_id, kind=now.kind, role=now.role, manager_id=now.manager_id, name=now.name)


class PartyPage(BaseModel):
    """A page of the known parties in id order; `next_after` is the `after` of the next page (null: no more)."""

    parties: list[PartySummary]
    next_after: str | None


class CheckOut(BaseModel):
    """A condition as the rule read it; `short_by`: how much more of the measure would reach `min`."""

    measure: str
    window: str
    scope: str
    value: str | None
    min: str | None
    max: str | None
    held: bool
    short_by: str | None = Field(description="null when it holds, the measure is null, or only `max` is broken")

    @classmethod
    def of(cls, check: Check) -> CheckOut:
        return cls(measure=check.measure, window=check.window, scope=check.scope, value=render(check.value),
                   min=render(check.min), max=render(check.max), held=check.held, short_by=render(check.short_by))


class NextStepOut(BaseModel):
    """The next band or points level: `needed` more of `measure` reaches `at` (`beyond`: must pass it)."""

    measure: str
    window: str
    value: str
    at: str
    needed: str
    beyond: bool
    rate: str | None
    level: str | None

    @classmethod
    def of(cls, step: NextStep) -> NextStepOut:
        return cls(measure=step.measure, window=step.window, value=render(step.value), at=render(step.at),
                   needed=render(step.needed), beyond=step.beyond, rate=render(step.rate), level=step.level)


class ExplanationOut(BaseModel):
    """What a component's rule did: the measure it pays on (`base`), the rate applied, the band reached (1 = first)
    out of `bands`, the gate and the conditions checked, the multiplier applied, a cap and whether it was hit
    (`uncapped`: before it, in the line's currency), the points level reached and the next step up."""

    type: str
    base: str | None
    rate: str | None
    band: int | None
    bands: int | None
    gate: CheckOut | None
    conditions: list[CheckOut]
    factor: str | None
    cap: str | None
    capped: bool
    uncapped: str | None
    level: str | None
    next: NextStepOut | None

    @classmethod
    def of(cls, explanation: Explanation, currency: str) -> ExplanationOut:
        def money(amount: Decimal | None) -> str | None:
            return None if amount is None else _money(amount, currency)

        return cls(type=explanation.type, base=explanation.base, rate=render(explanation.rate), band=explanation.band,
                   bands=explanation.bands, gate=None if explanation.gate is None else CheckOut.of(explanation.gate),
                   conditions=[CheckOut.of(check) for check in explanation.conditions],
                   factor=render(explanation.factor), cap=money(explanation.cap), capped=explanation.capped,
                   uncapped=money(explanation.uncapped), level=explanation.level,
                   next=None if explanation.next is None else NextStepOut.of(explanation.next))


class ExplainedLine(BaseModel):
    """One live earnings line, rounded, with the base and measures it used and what the rule did with them."""

    plan: str
    component: str
    currency: str
    amount: str
    base: str | None
    measures: Measures
    events: int
    explanation: ExplanationOut | None

    @classmethod
    def of(cls, payout: Payout) -> ExplainedLine:
        return cls(plan=payout.plan, component=payout.component, currency=payout.currency,
                   amount=_money(payout.amount, payout.currency), base=render(payout.base), measures=payout.measures,
                   events=payout.events, explanation=None if payout.explanation is None else ExplanationOut.of(
                       payout.explanation, payout.currency))


class ExplainedEarnings(BaseModel):
    """A party's live earnings in a period, line by line with the rule's workings; totals per currency."""

    party_id: str
    kind: str
    period: str
    as_of: datetime
    totals: dict[str, str] = Field(description="currency -> sum of its rounded lines")
    lines: list[ExplainedLine]

    @classmethod
    def of(cls, party_id: str, kind: str, period: str, as_of: datetime, payouts: list[Payout]) -> ExplainedEarnings:
        totals: dict[str, Decimal] = {}
        for payout in payouts:
            totals[payout.currency] = totals.get(payout.currency, ZERO) + round_money(payout.amount, payout.currency)
        return cls(party_id=party_id, kind=kind, period=period, as_of=as_of,
                   totals={currency: str(amount) for currency, amount in totals.items()},
                   lines=[ExplainedLine.of(payout) for payout in payouts])


class HistoryPoint(BaseModel):
    period: str
    as_of: datetime
    score: str | None
    totals: dict[str, str] = Field(description="live earnings: currency -> sum of its rounded lines")


class History(BaseModel):
    """A party's live score and earnings in consecutive periods, oldest first (a closed period's frozen statement
    is at `GET /v1/settlements/{period}/statements/{party_id}`)."""

    party_id: str
    scorecard: str | None
    periods: list[HistoryPoint]


class ReportSpan(BaseModel):
    """Days on which a report had the manager, both ends inclusive; null where open."""

    first_day: date | None
    last_day: date | None

    @classmethod
    def of(cls, span: Span) -> ReportSpan:
        first, after = span
        return cls(first_day=None if first is None else _day(first),
                   last_day=None if after is None else _day(after - 1))


class TeamMember(PartySummary):
    reports_now: bool = Field(description="whether the party reports to the manager today")
    spans: list[ReportSpan]


class Team(BaseModel):
    """The parties that report to a manager on some day (SPEC §2.3), by id, each with the days it does."""

    manager_id: str
    as_of: datetime
    members: list[TeamMember]


def _day(day: int) -> date:
    return datetime.fromtimestamp(day * DAY_US / 1_000_000, UTC).date()
