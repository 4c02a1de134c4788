"""Measure values (SPEC §3) from the summed parts of one window: `Totals` in, named decimals out."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, get_args

__all__ = ["COUNTS", "MEASURES", "RATIOS", "SLOTS", "SUMS", "CountName", "RatioName", "SumName", "Totals",
           "measure_values"]

# The additive parts kept per relationship and UTC day, in slot order: the parts most events touch come
# first, so a day's tuple holds only the prefix its events reached.
SLOTS = ("events", "revenue", "deals", "margin", "upsell_revenue", "renewed_arr", "churned_arr", "cases",
         "first_contact_cases", "csat_responses", "csat_sum", "nps_responses", "promoters", "detractors",
         "referrals_made")
(EVENTS, REVENUE, DEALS, MARGIN, UPSELL, RENEWED, CHURNED, CASES, FIRST_CONTACT, CSAT_N, CSAT_SUM, NPS_N,
 PROMOTERS, DETRACTORS, REFERRALS_MADE) = range(len(SLOTS))

# The measure names as types (a plan names its measures, SPEC §4) and, in the same order, as tuples.
SumName = Literal["revenue", "reversed", "net_revenue", "margin", "upsell_revenue", "renewed_arr", "churned_arr",
                  "referral_revenue"]
CountName = Literal["deals", "cases", "referrals_made", "referrals_converted"]
RatioName = Literal["retention_rate", "fcr_rate", "nps", "csat"]
SUMS: tuple[SumName, ...] = get_args(SumName)
COUNTS: tuple[CountName, ...] = get_args(CountName)
RATIOS: tuple[RatioName, ...] = get_args(RatioName)
MEASURES = SUMS + COUNTS + RATIOS

_HUNDRED = Decimal(100)


class Totals:
    """The summed parts of one party (or relationship, or team) over one window."""

    __slots__ = ("converted", "referral_revenue", "reversed", "sums")

    def __init__(self) -> None:
        self.sums: list = [0] * len(SLOTS)
        self.reversed: Decimal | int = 0
        self.referral_revenue: Decimal | int = 0
        self.converted: set[str] = set()

    def add(self, other: Totals) -> Totals:
        self.sums = [a + b for a, b in zip(self.sums, other.sums, strict=True)]
        self.reversed += other.reversed
        self.referral_revenue += other.referral_revenue
        self.converted |= other.converted
        return self

    @property
    def events(self) -> int:
        return self.sums[EVENTS]


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    return None if denominator == 0 else Decimal(numerator) / Decimal(denominator)


def measure_values(totals: Totals) -> dict[str, Decimal | None]:
    """Every measure of SPEC §3; ratios are `None` when nothing contributed."""
    s = totals.sums
    revenue = Decimal(s[REVENUE])
    nps = _ratio(s[PROMOTERS] - s[DETRACTORS], s[NPS_N])
    return {
        "revenue": revenue,
        "reversed": Decimal(totals.reversed),
        "net_revenue": revenue - totals.reversed,
        "margin": Decimal(s[MARGIN]),
        "deals": Decimal(s[DEALS]),
        "upsell_revenue": Decimal(s[UPSELL]),
        "renewed_arr": Decimal(s[RENEWED]),
        "churned_arr": Decimal(s[CHURNED]),
        "retention_rate": _ratio(s[RENEWED], s[RENEWED] + s[CHURNED]),
        "cases": Decimal(s[CASES]),
        "fcr_rate": _ratio(s[FIRST_CONTACT], s[CASES]),
        "nps": None if nps is None else _HUNDRED * nps,
        "csat": _ratio(s[CSAT_SUM], s[CSAT_N]),
        "referrals_made": Decimal(s[REFERRALS_MADE]),
        "referrals_converted": Decimal(len(totals.converted)),
        "referral_revenue": Decimal(totals.referral_revenue),
    }

