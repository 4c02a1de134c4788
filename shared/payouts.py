"""The plan engine (SPEC §4): what each component of a plan pays a party for one period, unrounded."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.fold import Fold
from shared.measures import Totals, measure_values
from shared.money import ZERO, render
from shared.periods import Period, Window
from shared.plans import Bonus, Condition, Override, PerUnit, Plan, Points, Rate, TieredRate

__all__ = ["MeasureView", "Payout", "evaluate"]


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


@dataclass
class Payout:
    """One component's unrounded payout, with the measure values it used and the events behind them."""

    plan: str
    component: str
    currency: str
    amount: Decimal
    base: Decimal | None = None
    measures: dict[str, str | None] = field(default_factory=dict)
    events: int = 0


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

    def holds(self, conditions: list[Condition]) -> bool:
        results = []
        for condition in conditions:  # read every condition, so the line shows them all
            value = self.read(condition.measure, condition.window, condition.scope)
            results.append(value is not None and (condition.min is None or condition.min <= value)
                           and (condition.max is None or value <= condition.max))
        return all(results)


def _tiered(component: TieredRate, base: Decimal, quota: Decimal | None, gate_met: bool) -> Decimal:
    scale = quota if quota else Decimal(1)
    rates = [tier.rate for tier in component.tiers]
    if not gate_met:
        rates = [min(rate, rates[0]) for rate in rates]
    edges = [None if tier.upto is None else tier.upto * scale for tier in component.tiers]
    if component.mode == "retroactive":
        band = next(i for i, edge in enumerate(edges) if edge is None or base <= edge)
        payout = base * rates[band]
    else:
        payout, lower = ZERO, ZERO
        for edge, rate in zip(edges, rates, strict=True):
            upper = base if edge is None else min(base, edge)
            if upper > lower:
                payout += (upper - lower) * rate
            if edge is None or base <= edge:
                break
            lower = edge
    return payout if component.cap is None else min(payout, component.cap)


def _component(component, plan: Plan, run: _Evaluation) -> tuple[Decimal, Decimal | None]:
    """(unrounded payout, base value it used) of one component."""
    if isinstance(component, TieredRate):
        base = run.amount(component.base)
        quota = plan.quota_for(run.party_id)
        if quota:
            run.used["attainment"] = render(base / quota)
        gate_met = component.gate is None or run.holds([component.gate])
        return _tiered(component, base, quota, gate_met), base
    if isinstance(component, Bonus):
        return (component.amount if run.holds(component.when) else ZERO), None
    if isinstance(component, PerUnit):
        base = run.amount(component.base)
        factor = component.multiplier.factor if component.multiplier and run.holds(
            component.multiplier.when) else Decimal(1)
        return base * component.rate * factor, base
    if isinstance(component, Override):
        base = run.amount(component.base, scope="team")
        return base * component.rate, base
    if isinstance(component, Rate):
        base = run.amount(component.base)
        return base * component.rate, base
    if isinstance(component, Points):
        base = run.amount(component.base)
        multiplier = Decimal(1)
        if component.tiers:
            reached = run.read(component.tiers.measure, component.tiers.window)
            levels = [lvl for lvl in component.tiers.levels if reached is not None and lvl.min <= reached]
            if levels:
                level = max(levels, key=lambda lvl: lvl.min)
                multiplier = level.multiplier
                run.used["tier"] = level.name
        return base * component.per_unit * multiplier, base
    raise TypeError(f"unknown component {component!r}")


def evaluate(plan: Plan, party_id: str, view: MeasureView) -> list[Payout]:
    """Every component of `plan` for `party_id` in the view's period, in plan order."""
    payouts = []
    for component in plan.components:
        run = _Evaluation(view, party_id)
        amount, base = _component(component, plan, run)
        payouts.append(Payout(plan.plan, component.name, plan.currency, amount, base, run.used, run.events))
    return payouts
