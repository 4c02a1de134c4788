"""Plans from YAML text held in the test (no files, or written to a directory), and what they pay."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from shared.fold import Fold
from shared.payouts import MeasureView, evaluate
from shared.periods import Period
from shared.plans import Plan, PlanSet, parse_plans

__all__ = ["COMMISSION", "pay", "plan_of", "plan_set", "plans_dir"]

# SPEC §4's commission: marginal bands on net revenue against a quota of 100 000
COMMISSION = """
plan: ae
applies_to: {kind: workforce}
quota: 100000
components:
  - name: commission
    type: tiered_rate
    base: net_revenue
    mode: marginal
    tiers: [{upto: 1.0, rate: 0.08}, {upto: 1.5, rate: 0.12}, {rate: 0.15}]
"""


def plan_set(*documents: str) -> PlanSet:
    """A `PlanSet` from YAML documents, one file each (`plan-0.yaml`, `plan-1.yaml`, …)."""
    return parse_plans({f"plan-{i}.yaml": text for i, text in enumerate(documents)})


def plans_dir(directory: Path, *documents: str) -> Path:
    """`directory` holding YAML documents, one file each (`plan-0.yaml`, … as `plan_set` names them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(documents):
        (directory / f"plan-{i}.yaml").write_text(text)
    return directory


def plan_of(document: str) -> Plan:
    [plan] = plan_set(document).plans
    return plan


def pay(document: str, party: str, fold: Fold, period: str = "2026-03") -> dict[str, Decimal]:
    """Unrounded payout of each component of the plan in `document` for `party`, as of the period's end."""
    p = Period.parse(period)
    view = MeasureView(fold, p, p.end_ts)
    return {payout.component: payout.amount for payout in evaluate(plan_of(document), party, view)}
