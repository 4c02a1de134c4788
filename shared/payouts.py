"""The plan engine (SPEC §4): what each component of a plan pays a party for one period, unrounded."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.fold import Fold
from shared.measures import Totals, measure_values
from shared.money import ZERO, render
from shared.periods import Period, Window
from shared.plans import Bonus, Condition, Override, PerUnit, Plan, Points, Rate, TieredRate

__all__ = ["Check", "Explanation", "MeasureView", "NextStep", "Payout", "evaluate"]


class MeasureView:
    """Measures of every party for one period as of `as_of`, computed once per (party, window, scope)."""

    def __init__(self, fold: Fold, period: Period, as_of_ts: int) -> None:
        self.fold, self.period, self.as_of_ts = fold, period, as_of_ts
        self._windows: dict[str, Window] = {}
        self._cache: dict[tuple[str, str, str], tuple[dict[str, Decimal | None], int]] = {}

    def window(self, name: str) -> Window:
        if name not in self._windows:
            self._windows[name] = Window.of(name, self.period, self.as_of_ts)
        return self._windows[name]

    def measures(self, party_id: str, window: str = "period", scope: str = "self"
                 ) -> tuple[dict[str, Decimal | None], int]:
        """All measures of a party (or of its direct reports together) and the events behind them."""
        key = (party_id, window, scope)
        if key not in self._cache:
            span = self.window(window)
            if scope == "team":  # each report's days under this manager (SPEC §2.3)
                totals = Totals()
                for report, spans in self.fold.direct_reports(party_id).items():
                    totals.add(self.fold.totals(report, span, spans=spans))
            else:
                totals = self.fold.totals(party_id, span)
            self._cache[key] = (measure_values(totals), totals.events)
        return self._cache[key]

    def value(self, party_id: str, measure: str, window: str = "period", scope: str = "self") -> Decimal | None:
        return self.measures(party_id, window, scope)[0][measure]


@dataclass(frozen=True)
class Check:
    """A condition as the rule read it: the measure's value, the bounds, and whether it held (SPEC §4)."""

    measure: str
    window: str
    scope: str
    value: Decimal | None
    min: Decimal | None
    max: Decimal | None
    held: bool

    @property
    def short_by(self) -> Decimal | None:
        """How much more of the measure would reach `min`: None when it holds, when the measure is null (no
        amount of it is known to suffice) or when only `max` is broken (more would not help)."""
        if self.held or self.value is None or self.min is None or self.value >= self.min:
            return None
        return self.min - self.value


@dataclass(frozen=True)
class NextStep:
    """The next band (or points level) up: `needed` more of `measure` than its `value` takes it to `at`, where the
    rule pays `rate` (the band's, the gate applied; at a level, points per unit) and reaches `level`. A band starts
    above its lower edge (an attainment exactly at `upto` stays below, SPEC §4): `beyond` says the value must pass
    `at`, not just reach it."""

    measure: str
    window: str
    value: Decimal
    at: Decimal
    needed: Decimal
    beyond: bool
    rate: Decimal | None = None
    level: str | None = None


@dataclass(frozen=True)
class Explanation:
    """What a component's rule did with its measures, to explain a line to the person it pays.

    `base` is the measure the line is paid on (over the period; an override's over the team), `rate` the rate
    applied to it (a band's after the gate, a flat rate, a rate per unit or per currency unit); `band` the band
    the base reached out of `bands` (1 = the first); `gate` and `conditions` (a bonus's or a multiplier's `when`)
    each checked; `factor` the multiplier applied; `uncapped` what the rule gave before `cap`, and `capped`
    whether the cap took some of it; `level` the points tier reached; `next` the next step."""

    type: str
    base: str | None = None
    rate: Decimal | None = None
    band: int | None = None
    bands: int | None = None
    gate: Check | None = None
    conditions: tuple[Check, ...] = ()
    factor: Decimal | None = None
    cap: Decimal | None = None
    capped: bool = False
    uncapped: Decimal | None = None
    level: str | None = None
    next: NextStep | None = None


@dataclass
class Payout:
    """One component's unrounded payout, with the measure values it used, the events behind them, and what the
    rule did with them."""

    plan: str
    component: str
    currency: str
    amount: Decimal
    base: Decimal | None = None
    measures: dict[str, str | None] = field(default_factory=dict)
    events: int = 0
    explanation: Explanation | None = None


class _Evaluation:
    """Evaluates one plan for one party, noting every measure it reads."""

    def __init__(self, view: MeasureView, party_id: str) -> None:
        self.view, self.party_id = view, party_id
        self.used: dict[str, str | None] = {}
        self.events = 0

    def read(self, measure: str, window: str = "period", scope: str = "self") -> Decimal | None:
        values, events = self.view.measures(self.party_id, window, scope)
        label = f"{measure}@{window}" + ("/team" if scope == "team" else "")
        self.used[label] = render(values[measure])
        self.events = max(self.events, events)
        return values[measure]

    def amount(self, measure: str, scope: str = "self") -> Decimal:
        return self.read(measure, "period", scope) or ZERO

    def check(self, condition: Condition) -> Check:
        value = self.read(condition.measure, condition.window, condition.scope)
        held = value is not None and (condition.min is None or condition.min <= value) and (
            condition.max is None or value <= condition.max)
        return Check(condition.measure, condition.window, condition.scope, value, condition.min, condition.max, held)

    def checks(self, conditions: list[Condition]) -> tuple[Check, ...]:
        """Every condition checked (all read, so the line shows them all); they hold together when each does."""
        return tuple(self.check(condition) for condition in conditions)


def _band(edges: list[Decimal | None], base: Decimal) -> int:
    """The index of the band `base` falls in; a base exactly at an edge is in the band below it."""
    return next(i for i, edge in enumerate(edges) if edge is None or base <= edge)


def _tiered(mode: str, base: Decimal, edges: list[Decimal | None], rates: list[Decimal]) -> Decimal:
    """What the bands pay on `base`, before any cap."""
    if mode == "retroactive":
        return base * rates[_band(edges, base)]
    payout, lower = ZERO, ZERO
    for edge, rate in zip(edges, rates, strict=True):
        upper = base if edge is None else min(base, edge)
        if upper > lower:
            payout += (upper - lower) * rate
        if edge is None or base <= edge:
            break
        lower = edge
    return payout


def _tiered_rate(component: TieredRate, plan: Plan, run: _Evaluation) -> tuple[Decimal, Decimal, Explanation]:
    base = run.amount(component.base)
    quota = plan.quota_for(run.party_id)
    if quota:
        run.used["attainment"] = render(base / quota)
    gate = None if component.gate is None else run.check(component.gate)
    rates = [tier.rate for tier in component.tiers]
    if gate is not None and not gate.held:  # no band above the first pays more than the first
        rates = [min(rate, rates[0]) for rate in rates]
    scale = quota if quota else Decimal(1)
    edges = [None if tier.upto is None else tier.upto * scale for tier in component.tiers]
    band = _band(edges, base)
    uncapped = _tiered(component.mode, base, edges, rates)
    amount = uncapped if component.cap is None else min(uncapped, component.cap)
    edge = edges[band]
    step = None if edge is None else NextStep(component.base, "period", base, edge, edge - base, beyond=True,
                                              rate=rates[band + 1])
    return amount, base, Explanation(component.type, component.base, rates[band], band=band + 1, bands=len(edges),
                                     gate=gate, cap=component.cap, capped=amount < uncapped, uncapped=uncapped,
                                     next=step)


def _points(component: Points, run: _Evaluation) -> tuple[Decimal, Decimal, Explanation]:
    base = run.amount(component.base)
    if component.tiers is None:
        return base * component.per_unit, base, Explanation(component.type, component.base, component.per_unit)
    tiers = component.tiers
    reached = run.read(tiers.measure, tiers.window)
    held = [lvl for lvl in tiers.levels if reached is not None and lvl.min <= reached]
    level = max(held, key=lambda lvl: lvl.min) if held else None
    if level is not None:
        run.used["tier"] = level.name
    multiplier = Decimal(1) if level is None else level.multiplier
    higher = [] if reached is None else sorted((lvl for lvl in tiers.levels if lvl.min > reached),
                                               key=lambda lvl: lvl.min)
    step = None if reached is None or not higher else NextStep(
        tiers.measure, tiers.window, reached, higher[0].min, higher[0].min - reached, beyond=False,
        rate=component.per_unit * higher[0].multiplier, level=higher[0].name)
    return base * component.per_unit * multiplier, base, Explanation(
        component.type, component.base, component.per_unit, factor=multiplier,
        level=None if level is None else level.name, next=step)


def _component(component, plan: Plan, run: _Evaluation) -> tuple[Decimal, Decimal | None, Explanation]:
    """(unrounded payout, base value it used, what the rule did) of one component."""
    if isinstance(component, TieredRate):
        return _tiered_rate(component, plan, run)
    if isinstance(component, Bonus):
        checks = run.checks(component.when)
        met = all(check.held for check in checks)
        return (component.amount if met else ZERO), None, Explanation(component.type, conditions=checks)
    if isinstance(component, PerUnit):
        base = run.amount(component.base)
        checks = () if component.multiplier is None else run.checks(component.multiplier.when)
        factor = component.multiplier.factor if component.multiplier and all(
            check.held for check in checks) else Decimal(1)
        return base * component.rate * factor, base, Explanation(component.type, component.base, component.rate,
                                                                 conditions=checks, factor=factor)
    if isinstance(component, Override):
        base = run.amount(component.base, scope="team")
        return base * component.rate, base, Explanation(component.type, component.base, component.rate)
    if isinstance(component, Rate):
        base = run.amount(component.base)
        return base * component.rate, base, Explanation(component.type, component.base, component.rate)
    if isinstance(component, Points):
        return _points(component, run)
    raise TypeError(f"unknown component {component!r}")


def evaluate(plan: Plan, party_id: str, view: MeasureView) -> list[Payout]:
    """Every component of `plan` for `party_id` in the view's period, in plan order."""
    payouts = []
    for component in plan.components:
        run = _Evaluation(view, party_id)
        amount, base, explanation = _component(component, plan, run)
        payouts.append(Payout(plan.plan, component.name, plan.currency, amount, base, run.used, run.events,
                              explanation))
    return payouts
