"""The plan engine (SPEC §4): what each component pays, unrounded, for one party and period, and why."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.fold import Fold
from shared.payouts import Check, Explanation, MeasureView, NextStep, evaluate
from shared.periods import Period
from tests.support.events import case, churned, referral, registered, renewed, reversal, sale, survey
from tests.support.folds import fold_of
from tests.support.plans import COMMISSION, pay, plan_of

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


def explain(document: str, party: str, fold: Fold) -> dict[str, Explanation | None]:
    """What the rule of each component of the plan in `document` did for `party` in March 2026, as of its end."""
    march = Period.parse("2026-03")
    view = MeasureView(fold, march, march.end_ts)
    return {payout.component: payout.explanation for payout in evaluate(plan_of(document), party, view)}


def commission_explained(document: str, *events, mode: str = "marginal") -> Explanation:
    explanation = explain(document.replace("MODE", mode), "ae-1", fold_of(events))["commission"]
    assert explanation is not None
    return explanation


@pytest.mark.parametrize("mode", ["marginal", "retroactive"])
def test_a_tiered_line_names_its_band_and_how_much_more_reaches_the_next(mode: str) -> None:
    explained = commission_explained(TIERED, *sold("130000"), mode=mode)
    assert (explained.band, explained.bands, explained.rate, explained.capped) == (2, 3, Decimal("0.12"), False)
    assert explained.next == NextStep("net_revenue", "period", Decimal(130000), Decimal(150000), Decimal(20000),
                                      beyond=True, rate=Decimal("0.15"))


def test_a_base_exactly_at_an_edge_is_in_the_lower_band_and_must_pass_the_edge() -> None:
    explained = commission_explained(TIERED, *sold("100000"))
    assert explained.band == 1 and explained.next is not None
    assert (explained.next.needed, explained.next.beyond) == (Decimal(0), True)


def test_the_last_band_has_no_next_step() -> None:
    explained = commission_explained(TIERED, *sold("180000"))
    assert (explained.band, explained.rate, explained.next) == (3, Decimal("0.15"), None)


def test_a_gate_not_met_is_shown_with_its_value_and_the_first_bands_rate() -> None:
    explained = commission_explained(GATED, *retention("899", "101"), *sold("130000"))
    assert explained.gate == Check("retention_rate", "90d", "self", Decimal("0.899"), Decimal("0.9"), None, False)
    assert explained.gate.short_by == Decimal("0.001")
    assert explained.rate == Decimal("0.08") and explained.next is not None and explained.next.rate == Decimal("0.08")
    met = commission_explained(GATED, *retention("950", "50"), *sold("130000"))
    assert met.gate is not None and met.gate.held and met.gate.short_by is None and met.rate == Decimal("0.12")


def test_a_cap_hit_keeps_what_the_bands_gave_before_it() -> None:
    explained = commission_explained(TIERED + "    cap: 15000\n", *sold("180000"))
    assert (explained.cap, explained.capped, explained.uncapped) == (Decimal(15000), True, Decimal(18500))
    under = commission_explained(TIERED + "    cap: 15000\n", *sold("130000"))
    assert (under.capped, under.uncapped) == (False, Decimal(11600))


def test_a_bonus_line_checks_every_condition_and_says_how_far_each_is() -> None:
    conditions = "[{measure: deals, min: 3}, {measure: nps, window: 90d, min: 20}, {measure: deals, max: 1}]"
    explained = explain(BONUS.replace("CONDITIONS", conditions), "ae-1", fold_of(DEALS[:2]))["bonus"]
    assert explained is not None
    deals, nps, at_most_one = explained.conditions
    assert (deals.value, deals.held, deals.short_by) == (Decimal(2), False, Decimal(1))
    assert (nps.value, nps.held, nps.short_by) == (None, False, None)          # null: no distance is known
    assert (at_most_one.held, at_most_one.short_by) == (False, None)           # over a max: more would not help


@pytest.mark.parametrize(("first_contacts", "factor", "held"), [(4, Decimal("1.5"), True), (3, Decimal(1), False)])
def test_a_per_unit_line_shows_the_multiplier_it_applied(first_contacts: int, factor: Decimal, held: bool) -> None:
    cases = [case("ae-1", "2026-03-05", first_contact=i < first_contacts) for i in range(5)]
    explained = explain(PER_CASE, "ae-1", fold_of(cases))["per_case"]
    assert explained is not None and (explained.rate, explained.factor) == (Decimal(4), factor)
    assert [check.held for check in explained.conditions] == [held]


def test_a_points_line_names_the_level_reached_and_the_next_one() -> None:
    fold = fold_of([sale("o-0", "2025-10-15", "8000"), sale("o-march", "2026-03-10", "4000")])
    explained = explain(LOYALTY, "c-1", fold)["points"]
    assert explained is not None and (explained.level, explained.factor) == ("silver", Decimal("1.25"))
    assert explained.next == NextStep("revenue", "365d", Decimal(12000), Decimal(50000), Decimal(38000),
                                      beyond=False, rate=Decimal("1.5"), level="gold")
    top = explain(LOYALTY, "c-1", fold_of([sale("o-0", "2026-01-15", "60000")]))["points"]
    assert top is not None and (top.level, top.next) == ("gold", None)


def test_an_override_line_shows_its_base_and_rate(team: list) -> None:
    explained = explain(OVERRIDE, "mgr-1", fold_of(team))
    assert explained["override"] == Explanation("override", "net_revenue", Decimal("0.02"))
    team_bonus = explained["team_bonus"]
    assert team_bonus is not None and [check.scope for check in team_bonus.conditions] == ["team"]
