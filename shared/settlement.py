"""Settlement (SPEC §5): frozen statements per period, clawbacks, adjustments for late events, close order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from shared.fold import Fold, Party
from shared.money import ZERO, round_money
from shared.payouts import MeasureView, evaluate
from shared.periods import DAY_US, Period, day_of
from shared.plans import PlanSet, TieredRate

__all__ = ["Book", "CloseRefused", "Line", "Settlement", "Statement", "attributes_for", "payout_lines",
           "settlement_from_data",
           "settlement_to_data"]


@dataclass(frozen=True)
class Line:
    """One statement line. `exact` is the unrounded amount and `base` the base value it was paid on."""

    plan: str
    component: str
    currency: str
    kind: str  # payout | clawback | adjustment
    amount: Decimal
    corrects: str | None = None
    exact: Decimal | None = None
    base: Decimal | None = None
    measures: dict = field(default_factory=dict)
    events: int = 0


@dataclass(frozen=True)
class Statement:
    party_id: str
    kind: str
    lines: tuple[Line, ...]

    @property
    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.currency] = totals.get(line.currency, ZERO) + line.amount
        return totals


@dataclass(frozen=True)
class Settlement:
    """A closed period: every statement, frozen, and the hash of every plan used."""

    period: str
    closed_at: datetime
    statements: dict[str, Statement]
    plan_hashes: dict[str, str]

    @property
    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for statement in self.statements.values():
            for currency, amount in statement.totals.items():
                totals[currency] = totals.get(currency, ZERO) + amount
        return totals


def attributes_for(party: Party, period: Period) -> Party:
    """The party's attributes that decide which plans pay it for `period`: those on its last day (SPEC §2.3)."""
    return party.on(day_of(period.end_ts) - 1)


def payout_lines(plans: PlanSet, party_id: str, party: Party, view: MeasureView) -> list[Line]:
    """One rounded payout line per component of the plan versions that pay the party for the view's period."""
    attributes = attributes_for(party, view.period)
    return [Line(payout.plan, payout.component, payout.currency, "payout", round_money(payout.amount, payout.currency),
                 exact=payout.amount, base=payout.base, measures=payout.measures, events=payout.events)
            for plan in plans.plans_for(party_id, attributes, view.period)
            for payout in evaluate(plan, party_id, view)]


class CloseRefused(ValueError):
    """A close that would break the order of periods (HTTP 409)."""


Key = tuple[str, str, str]  # (party, plan, component)


class Book:
    """The closed periods. `close` is pure given the fold, the plans and the settlements so far."""

    def __init__(self, closed: dict[str, Settlement] | None = None) -> None:
        self.closed: dict[str, Settlement] = dict(closed or {})

    def _closed_of_kind(self, kind: str) -> list[Period]:
        return sorted(p for p in map(Period.parse, self.closed) if p.kind == kind)

    def check_order(self, period: Period) -> None:
        """Refuse closing `period` unless it is the first close of its kind or follows the last one."""
        earlier = self._closed_of_kind(period.kind)
        if earlier and period != earlier[-1].next():
            raise CloseRefused(f"cannot close {period}: periods of this kind close in order and the last "
                               f"closed is {earlier[-1]}, so the next is {earlier[-1].next()}")

    def close(self, fold: Fold, plans: PlanSet, period: Period, closed_at: datetime) -> Settlement:
        """Close `period` from the fold as it is now, or return its frozen settlement if already closed."""
        if str(period) in self.closed:
            return self.closed[str(period)]
        self.check_order(period)
        statements = self.own_lines(fold, plans, period)
        for earlier in self._closed_of_kind(period.kind):
            for party_id, line in self._adjustments(fold, plans, earlier):
                statements[party_id].append(line)
        used = {plan.plan: plan.hash for plan in plans.plans if plan.covers(period)}
        settlement = Settlement(
            str(period), closed_at,
            {party: Statement(party, attributes_for(fold.parties[party], period).kind, tuple(lines))
             for party, lines in statements.items() if lines},
            used)
        self.closed[str(period)] = settlement
        return settlement

    def own_lines(self, fold: Fold, plans: PlanSet, period: Period) -> defaultdict[str, list[Line]]:
        """Payout and clawback lines of every known party with a plan version for the period."""
        view = MeasureView(fold, period, period.end_ts)
        statements: defaultdict[str, list[Line]] = defaultdict(list)
        for party_id, party in fold.parties.items():
            statements[party_id].extend(payout_lines(plans, party_id, party, view))
        for party_id, line in self._clawbacks(fold, plans, period):
            statements[party_id].append(line)
        return statements

    def _clawbacks(self, fold: Fold, plans: PlanSet, period: Period):
        """Reversals in `period` of orders paid in an earlier closed period, at that period's effective rate."""
        start, end = period.start_ts, period.end_ts
        closed = sorted((order.ts, order_id, order) for order_id in fold.reversals
                        if (order := fold.order(order_id)) is not None)
        for _, order_id, order in closed:
            paid_in = Period.containing(order.ts, period.kind)
            frozen = self.closed.get(str(paid_in))
            if paid_in >= period or frozen is None:
                continue
            for ts, _, _, applied in fold.reversals[order_id]:
                if applied is None or not start <= ts < end:
                    continue
                shares = list(order.credits) + ([(order.partner, Decimal(1))] if order.partner else [])
                for party_id, share in shares:
                    yield from self._clawback_lines(plans, frozen, party_id, order_id,
                                                    applied * share, ts - order.ts)

    def _clawback_lines(self, plans, frozen, party_id, order_id, reversed_amount, age):
        """Whoever a `tiered_rate` component paid for the order in `frozen` gives back on the version that paid
        it, even when that plan no longer applies to the party now (SPEC §5.3)."""
        statement = frozen.statements.get(party_id)
        if statement is None:
            return
        paid_in = Period.parse(frozen.period)
        for name in sorted({line.plan for line in statement.lines if line.kind == "payout"}):
            plan = plans.version_for(name, paid_in)
            if plan is None or plan.clawback is None or age > plan.clawback.window_days * DAY_US:
                continue
            for component in plan.components:
                if not isinstance(component, TieredRate):
                    continue
                paid = next((line for line in statement.lines if line.kind == "payout"
                             and line.plan == plan.plan and line.component == component.name), None)
                if paid is None:
                    continue
                rate = paid.exact / paid.base if paid.base and paid.base > 0 else ZERO
                amount = -(reversed_amount * rate)
                yield party_id, Line(plan.plan, component.name, plan.currency, "clawback",
                                     round_money(amount, plan.currency), exact=amount, base=reversed_amount,
                                     measures={"order_id": order_id, "effective_rate": str(rate)})

    def _adjustments(self, fold: Fold, plans: PlanSet, earlier: Period):
        """Lines that bring closed period `earlier` to what it pays with every event ingested so far."""
        settled: defaultdict[Key, Decimal] = defaultdict(lambda: ZERO)
        currencies: dict[Key, str] = {}
        for settlement in self.closed.values():
            for party_id, statement in settlement.statements.items():
                for line in statement.lines:
                    own = settlement.period == str(earlier) and line.kind != "adjustment"
                    if own or line.corrects == str(earlier):
                        key = (party_id, line.plan, line.component)
                        settled[key] += line.amount
                        currencies[key] = line.currency
        now: defaultdict[Key, Decimal] = defaultdict(lambda: ZERO)
        for party_id, lines in self.own_lines(fold, plans, earlier).items():
            for line in lines:
                key = (party_id, line.plan, line.component)
                now[key] += line.amount
                currencies[key] = line.currency
        for key in sorted(set(settled) | set(now)):
            difference = now[key] - settled[key]
            if difference:
                party_id, plan, component = key
                yield party_id, Line(plan, component, currencies[key], "adjustment", difference,
                                     corrects=str(earlier), exact=difference)


def _line_data(line: Line) -> dict:
    data = {"plan": line.plan, "component": line.component, "currency": line.currency, "kind": line.kind,
            "amount": str(line.amount), "measures": line.measures, "events": line.events}
    if line.corrects:
        data["corrects"] = line.corrects
    for name in ("exact", "base"):
        value = getattr(line, name)
        if value is not None:
            data[name] = str(value)
    return data


def _line(data: dict) -> Line:
    optional = {name: Decimal(data[name]) for name in ("exact", "base") if name in data}
    return Line(data["plan"], data["component"], data["currency"], data["kind"], Decimal(data["amount"]),
                data.get("corrects"), measures=data.get("measures", {}), events=data.get("events", 0), **optional)


def settlement_to_data(settlement: Settlement) -> dict:
    """A frozen settlement as JSON-ready data, unrounded amounts included (clawbacks need them)."""
    return {"period": settlement.period, "closed_at": settlement.closed_at.isoformat(),
            "plan_hashes": settlement.plan_hashes,
            "statements": [{"party_id": s.party_id, "kind": s.kind, "lines": [_line_data(x) for x in s.lines]}
                           for s in settlement.statements.values()]}


def settlement_from_data(data: dict) -> Settlement:
    """The inverse of `settlement_to_data`."""
    statements = {s["party_id"]: Statement(s["party_id"], s["kind"], tuple(_line(x) for x in s["lines"]))
                  for s in data["statements"]}
    return Settlement(data["period"], datetime.fromisoformat(data["closed_at"]), statements, data["plan_hashes"])
