"""Scorecard scoring (SPEC §6): attainment per metric, capped, and a weighted score out of 100."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from shared.money import ZERO
from shared.payouts import MeasureView
from shared.plans import Scorecard

__all__ = ["MetricScore", "Score", "score"]

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class MetricScore:
    measure: str
    window: str
    value: Decimal | None
    target: Decimal
    weight: Decimal
    attainment: Decimal


@dataclass(frozen=True)
class Score:
    scorecard: str
    score: Decimal
    metrics: tuple[MetricScore, ...]


def score(card: Scorecard, party_id: str, view: MeasureView) -> Score:
    """`attainment = min(value / target, cap)` (null → 0); `score = 100 × Σ w·a / Σ w`, 2 decimals."""
    metrics = []
    for metric in card.metrics:
        value = view.value(party_id, metric.measure, metric.window)
        attainment = ZERO if value is None or metric.target == 0 else value / metric.target
        if card.cap is not None:
            attainment = min(attainment, card.cap)
        metrics.append(MetricScore(metric.measure, metric.window, value, metric.target, metric.weight, attainment))
    weights = sum((m.weight for m in metrics), ZERO)
    total = sum((m.weight * m.attainment for m in metrics), ZERO)
    result = ZERO if weights == 0 else _HUNDRED * total / weights
    return Score(card.scorecard, result.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), tuple(metrics))
