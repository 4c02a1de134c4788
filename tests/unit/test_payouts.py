"""The plan engine (SPEC §4): what each component pays, unrounded, for one party and period."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.events import case, churned, referral, registered, renewed, reversal, sale, survey
from tests.support.folds import fold_of
from tests.support.plans import COMMISSION, pay

TIERED = COMMISSION.replace("mode: marginal", "mode: MODE")
GATED = TIERED.replace("MODE", "marginal") + "    gate: {measure: retention_rate, window: 90d, min: 0.9}\n"


def commission(document: str, *events, mode: str = "marginal") -> Decimal:
    return pay(document.replace("MODE", mode), "ae-1", fold_of(events))["commission"]


def sold(amount: str) -> list:
    return [sale("o-1", "2026-03-10", amount)]


@pytest.mark.parametrize(("mode", "base", "expected"), [
    ("marginal", "130000", Decimal(100000) * Decimal("0.08") + Decimal(30000) * Decimal("0.12")),   # 11 600
    ("marginal", "180000", Decimal(8000) + Decimal(50000) * Decimal("0.12") + Decimal(30000) * Decimal("0.15")),
    ("marginal", "50000", Decimal(50000) * Decimal("0.08")),
    ("retroactive", "130000", Decimal(130000) * Decimal("0.12")),
    ("retroactive", "180000", Decimal(180000) * Decimal("0.15")),
    ("marginal", "0", Decimal(0)),
])
def test_tiered_rate_by_attainment_band(mode: str, base: str, expected: Decimal) -> None:
    assert commission(TIERED, *sold(base), mode=mode) == expected


@pytest.mark.parametrize(("mode", "base", "expected"), [
    ("retroactive", "100000", Decimal(100000) * Decimal("0.08")),   # attainment exactly 1.0: lower band
    ("retroactive", "100000.01", Decimal("100000.01") * Decimal("0.12")),
    ("retroactive", "150000", Decimal(150000) * Decimal("0.12")),
    ("marginal", "150000", Decimal(8000) + Decimal(50000) * Decimal("0.12")),
])
def test_an_attainment_exactly_at_upto_belongs_to_the_lower_band(mode: str, base: str, expected: Decimal) -> None:
    assert commission(TIERED, *sold(base), mode=mode) == expected


def test_the_base_is_net_of_same_period_reversals() -> None:
    events = [*sold("140000"), reversal("o-1", "2026-03-20", "10000")]
    assert commission(TIERED, *events) == Decimal(8000) + Decimal(30000) * Decimal("0.12")


def test_tiers_without_quota_are_absolute_amounts() -> None:
    absolute = TIERED.replace("quota: 100000\n", "").replace(
        "[{upto: 1.0, rate: 0.08}, {upto: 1.5, rate: 0.12}, {rate: 0.15}]",
        "[{upto: 50000, rate: 0.02}, {upto: 150000, rate: 0.035}, {rate: 0.05}]")
    assert commission(absolute, *sold("100000"), mode="retroactive") == Decimal(3500)
    assert commission(absolute, *sold("100000"), mode="marginal") == Decimal(1000) + Decimal(1750)
    assert commission(absolute, *sold("200000"), mode="marginal") == Decimal(1000) + Decimal(3500) + Decimal(2500)


def test_a_per_party_quota_moves_the_bands() -> None:
    document = TIERED.replace("quota: 100000", "quota: {default: 100000, ae-1: 80000}")
    # 130 000 on 80 000: 80 000 * 0.08 + 40 000 * 0.12 + 10 000 * 0.15
    assert commission(document, *sold("130000")) == Decimal(6400) + Decimal(4800) + Decimal(1500)


def retention(renewed_arr: str | None, churned_arr: str = "0") -> list:
    """ae-1 owns c-1 (a January sale); c-1's retention events land in March."""
    events = [sale("o-0", "2026-01-05", "0")]
    if renewed_arr is not None:
        events += [renewed("c-1", "2026-03-01", renewed_arr), churned("c-1", "2026-03-02", churned_arr)]
    return events


@pytest.mark.parametrize(("renewed_arr", "churned_arr", "met"), [
    ("950", "50", True),
    ("900", "100", True),      # exactly at min
    ("899", "101", False),
    (None, "0", False),        # null measure: the gate is not met
])
def test_a_gate_not_met_caps_every_rate_at_the_first_bands(renewed_arr, churned_arr, met: bool) -> None:
    events = [*retention(renewed_arr, churned_arr), *sold("130000")]
    capped = Decimal(130000) * Decimal("0.08")
    assert commission(GATED, *events) == (Decimal(11600) if met else capped)


def test_a_gate_does_not_raise_rates_below_the_first() -> None:
    document = GATED.replace("{upto: 1.5, rate: 0.12}", "{upto: 1.5, rate: 0.05}")
    events = [*retention("0", "1000"), *sold("130000")]
    assert commission(document, *events) == Decimal(8000) + Decimal(30000) * Decimal("0.05")


def test_the_cap_limits_the_component() -> None:
    document = TIERED + "    cap: 15000\n"
    assert commission(document, *sold("180000")) == Decimal(15000)
    assert commission(document, *sold("130000")) == Decimal(11600)


BONUS = """
plan: ae
applies_to: {kind: workforce}
components:
  - name: bonus
    type: bonus
    amount: 500
    when: CONDITIONS
"""


def bonus(conditions: str, *events) -> Decimal:
    return pay(BONUS.replace("CONDITIONS", conditions), "ae-1", fold_of(events))["bonus"]


DEALS = [sale(f"o-{i}", "2026-03-10", "10") for i in range(3)]
PROMOTER, DETRACTOR = survey("ae-1", "2026-02-10", nps=10), survey("ae-1", "2026-03-10", nps=3)


@pytest.mark.parametrize(("conditions", "events", "expected"), [
    ("[{measure: deals, min: 3}]", DEALS, 500),
    ("[{measure: deals, min: 3}]", DEALS[:2], 0),
    ("[{measure: deals, min: 1, max: 3}]", DEALS, 500),               # max is inclusive
    ("[{measure: deals, max: 2}]", DEALS, 0),
    ("[{measure: deals, min: 3}, {measure: nps, window: 90d, min: 0}]", [*DEALS, PROMOTER, DETRACTOR], 500),
    ("[{measure: deals, min: 3}, {measure: nps, window: 90d, min: 1}]", [*DEALS, PROMOTER, DETRACTOR], 0),
    ("[{measure: deals, min: 3}, {measure: nps, window: period, min: -100}]", [*DEALS, PROMOTER], 0),  # null
    ("[{measure: nps, window: 90d, max: 100}]", DEALS, 0),                                             # null
    ("[{measure: csat, min: 0}]", [], 0),
])
def test_a_bonus_pays_when_every_condition_holds(conditions: str, events: list, expected: int) -> None:
    assert bonus(conditions, *events) == expected


PER_CASE = """
plan: svc
applies_to: {kind: workforce}
components:
  - name: per_case
    type: per_unit
    base: cases
    rate: 4
    multiplier: {factor: 1.5, when: [{measure: fcr_rate, window: period, min: 0.8}]}
"""


@pytest.mark.parametrize(("first_contacts", "expected"), [(4, Decimal(5 * 4) * Decimal("1.5")), (3, Decimal(20))])
def test_per_unit_pays_a_rate_per_case_times_the_multiplier_when_it_holds(first_contacts: int,
                                                                         expected: Decimal) -> None:
    cases = [case("ae-1", "2026-03-05", first_contact=i < first_contacts) for i in range(5)]
    assert pay(PER_CASE, "ae-1", fold_of(cases))["per_case"] == expected


OVERRIDE = """
plan: mgr
applies_to: {kind: workforce, role: manager}
components:
  - {name: override, type: override, base: net_revenue, rate: 0.02}
  - name: team_bonus
    type: bonus
    amount: 1000
    when: [{measure: retention_rate, window: 90d, min: 0.85, scope: team}]
"""


@pytest.fixture
def team() -> list:
    """mgr-1 manages ae-1 (owner of c-1) and ae-2 (owner of c-2); ae-3 reports to someone else."""
    return [registered("mgr-1", role="manager"), registered("ae-1", manager_id="mgr-1"),
            registered("ae-2", manager_id="mgr-1"), registered("ae-3", manager_id="mgr-2"),
            sale("o-1", "2026-03-02", "10000"), sale("o-2", "2026-03-02", "5000", {"ae-2": "1"}, customer="c-2"),
            sale("o-3", "2026-03-02", "7000", {"ae-3": "1"}, customer="c-3"),
            sale("o-4", "2026-03-02", "9000", {"mgr-1": "1"}, customer="c-4"),
            reversal("o-2", "2026-03-03", "1000")]


def test_override_pays_a_rate_on_the_direct_reports_measure(team: list) -> None:
    assert pay(OVERRIDE, "mgr-1", fold_of(team))["override"] == (Decimal(10000) + Decimal(4000)) * Decimal("0.02")


@pytest.mark.parametrize(("ae2_renewed", "ae2_churned", "expected"), [
    ("800", "200", 0),      # mean of the ratios 0.9, but Σ renewed / Σ (renewed + churned) = 900 / 1100 < 0.85
    ("1000", "100", 1000),  # 1100 / 1200 ≥ 0.85
])
def test_a_team_condition_uses_the_ratio_of_the_summed_parts(team: list, ae2_renewed: str, ae2_churned: str,
                                                             expected: int) -> None:
    events = [*team, renewed("c-1", "2026-03-10", "100"), renewed("c-2", "2026-03-10", ae2_renewed),
              churned("c-2", "2026-03-11", ae2_churned), churned("c-3", "2026-03-11", "100000")]
    assert pay(OVERRIDE, "mgr-1", fold_of(events))["team_bonus"] == expected


REFERRAL_FEE = """
plan: ae
applies_to: {kind: customer}
components: [{name: fee, type: rate, base: referral_revenue, rate: 0.03}]
"""


def test_a_rate_component_is_paid_unrounded() -> None:
    events = [referral("r-1", "2026-03-01", referrer="c-9", prospect="c-2"),
              sale("o-1", "2026-03-05", "12345.67", customer="c-2", referral_id="r-1")]
    assert pay(REFERRAL_FEE, "c-9", fold_of(events))["fee"] == Decimal("370.3701")


LOYALTY = """
plan: loyalty
applies_to: {kind: customer}
currency: PTS
components:
  - name: points
    type: points
    base: revenue
    per_unit: 1
    tiers: {measure: revenue, window: 365d, levels: [{min: 0, name: bronze, multiplier: 1},
            {min: 10000, name: silver, multiplier: 1.25}, {min: 50000, name: gold, multiplier: 1.5}]}
"""


@pytest.mark.parametrize(("history", "expected"), [
    ([("2025-10-15", "8000")], Decimal(4000) * Decimal("1.25")),    # 8 000 + March's own 4 000 reach silver
    ([("2025-10-15", "5999")], Decimal(4000)),                      # 9 999: still bronze
    ([("2025-03-31", "8000")], Decimal(4000)),                      # more than 365 days before as_of
    ([("2025-04-01", "8000")], Decimal(4000) * Decimal("1.25")),    # exactly the first day of the window
    ([("2025-06-01", "30000"), ("2026-01-20", "16000")], Decimal(4000) * Decimal("1.5")),  # 50 000: gold
])
def test_points_tier_is_reached_at_as_of_including_the_periods_own_purchases(history: list, expected) -> None:
    events = [sale(f"o-{i}", when, amount) for i, (when, amount) in enumerate(history)]
    fold = fold_of([*events, sale("o-march", "2026-03-10", "4000")])
    assert pay(LOYALTY, "c-1", fold)["points"] == expected
