"""Plans as code (SPEC §4): exact YAML numbers, per-party quotas, content hashes, precise errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.fold import Party
from shared.periods import Period
from shared.plans import Bonus, PlanError, Points, TieredRate, parse_plans
from tests.support.plans import plan_of, plan_set

SPEC_EXAMPLE = """
plan: ae-2026
applies_to: {kind: workforce, role: account_executive}
period: month
currency: USD
quota: 100000
components:
  - name: commission
    type: tiered_rate
    base: net_revenue
    mode: marginal
    tiers: [{upto: 1.0, rate: 0.08}, {upto: 1.5, rate: 0.12}, {rate: 0.15}]
    gate: {measure: retention_rate, window: 90d, min: 0.9}
    cap: 50000
  - name: csat_bonus
    type: bonus
    amount: 500
    when: [{measure: nps, window: 90d, min: 30}, {measure: deals, window: period, min: 3}]
  - name: per_case
    type: per_unit
    base: cases
    rate: 4
    multiplier: {factor: 1.5, when: [{measure: fcr_rate, window: period, min: 0.8}]}
  - name: team_override
    type: override
    base: net_revenue
    rate: 0.02
  - name: referral_fee
    type: rate
    base: referral_revenue
    rate: 0.05
  - name: loyalty
    type: points
    base: revenue
    per_unit: 1
    tiers: {measure: revenue, window: 365d, levels: [{min: 0, name: bronze, multiplier: 1},
            {min: 10000, name: silver, multiplier: 1.25}, {min: 50000, name: gold, multiplier: 1.5}]}
clawback: {window_days: 90}
"""

MINIMAL = """
plan: p
applies_to: {kind: partner}
components: [{name: fee, type: rate, base: revenue, rate: 0.1}]
"""


def problems(files: dict[str, str]) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plans(files)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_the_spec_example_parses_with_every_component_type() -> None:
    plan = plan_of(SPEC_EXAMPLE)
    assert [(c.name, c.type) for c in plan.components] == [
        ("commission", "tiered_rate"), ("csat_bonus", "bonus"), ("per_case", "per_unit"),
        ("team_override", "override"), ("referral_fee", "rate"), ("loyalty", "points")]
    assert (plan.period, plan.currency, plan.clawback.window_days) == ("month", "USD", 90)


def test_yaml_numbers_are_exact_decimals_not_floats() -> None:
    plan = plan_of(SPEC_EXAMPLE)
    commission, bonus, points = plan.components[0], plan.components[1], plan.components[5]
    assert isinstance(commission, TieredRate) and isinstance(bonus, Bonus) and isinstance(points, Points)
    rates = [tier.rate for tier in commission.tiers]
    assert rates == [Decimal("0.08"), Decimal("0.12"), Decimal("0.15")]
    assert all(type(rate) is Decimal for rate in rates)
    assert sum(rates, Decimal(0)) == Decimal("0.35")  # 0.08 + 0.12 + 0.15 is not 0.35 in binary floats
    assert commission.gate.min == Decimal("0.9") and type(commission.gate.min) is Decimal
    assert points.tiers.levels[1].multiplier == Decimal("1.25")
    assert plan.quota_for("anyone") == Decimal(100000)


def test_yaml_underscored_numbers_are_exact_too() -> None:
    plan = plan_of(MINIMAL.replace("rate: 0.1", "rate: 1_000.25"))
    assert plan.components[0].rate == Decimal("1000.25")


@pytest.mark.parametrize(("quota", "party", "expected"), [
    ("100000", "ae-1", Decimal(100000)),
    ("{default: 100000, ae-3: 90000}", "ae-3", Decimal(90000)),
    ("{default: 100000, ae-3: 90000}", "ae-1", Decimal(100000)),
    ("{default: 100000, ae-3: 92500.5}", "ae-3", Decimal("92500.5")),
    ("{ae-3: 90000}", "ae-1", None),
])
def test_quota_per_party_with_a_default(quota: str, party: str, expected: Decimal | None) -> None:
    assert plan_of(SPEC_EXAMPLE.replace("quota: 100000", f"quota: {quota}")).quota_for(party) == expected


def test_a_plan_without_quota_has_none() -> None:
    assert plan_of(MINIMAL).quota_for("p-1") is None


@pytest.mark.parametrize(("applies_to", "matches"), [
    ("{kind: workforce, role: account_executive}", {"ae"}),
    ("{kind: workforce}", {"ae", "mgr"}),
    ("{kind: partner, tier: gold}", {"gold"}),
    ("{kind: partner}", {"gold", "silver"}),
    ("{parties: [mgr, c]}", {"mgr", "c"}),
    ("{kind: customer, parties: [ae]}", {"c", "ae"}),
])
def test_a_plan_applies_by_kind_role_tier_or_listed_parties(applies_to: str, matches: set[str]) -> None:
    plans = plan_set(MINIMAL.replace("{kind: partner}", applies_to))
    parties = {"ae": Party("workforce", role="account_executive"), "mgr": Party("workforce", role="manager"),
               "gold": Party("partner", tier="gold"), "silver": Party("partner", tier="silver"),
               "c": Party("customer")}
    assert {pid for pid, party in parties.items() if plans.plans_for(pid, party)} == matches


def test_plans_for_filters_by_period_kind() -> None:
    plans = plan_set(MINIMAL, MINIMAL.replace("plan: p", "plan: q\nperiod: quarter"))
    partner = Party("partner")
    assert [p.plan for p in plans.plans_for("x", partner, Period.parse("2026-Q2"))] == ["q"]
    assert [p.plan for p in plans.plans_for("x", partner)] == ["p", "q"]
    assert plans.period_kinds == ["month", "quarter"]


def versioned(effective: str, rate: str = "0.1") -> str:
    return MINIMAL.replace("plan: p", f"plan: p\neffective: {effective}").replace("rate: 0.1", f"rate: {rate}")


def test_each_period_is_paid_by_the_version_whose_range_holds_it() -> None:
    plans = parse_plans({"old.yaml": versioned("{to: 2026-03}"), "new.yaml": versioned("{from: 2026-04}", "0.2")})
    partner = Party("partner")
    for period, rate in (("2025-01", "0.1"), ("2026-03", "0.1"), ("2026-04", "0.2"), ("2030-12", "0.2")):
        [plan] = plans.plans_for("x", partner, Period.parse(period))
        assert plan.components[0].rate == Decimal(rate)
        assert plans.version_for("p", Period.parse(period)) is plan
    assert plans.version_for("p", Period.parse("2026-Q1")) is None  # a monthly plan pays no quarter


def test_a_closed_range_pays_only_inside_it() -> None:
    plans = parse_plans({"p.yaml": versioned("{from: 2026-02, to: 2026-03}")})
    assert [str(p) for p in map(Period.parse, ("2026-01", "2026-02", "2026-03", "2026-04"))
            if plans.plans_for("x", Party("partner"), p)] == ["2026-02", "2026-03"]


@pytest.mark.parametrize(("old", "new"), [
    ("{to: 2026-04}", "{from: 2026-04}"),
    ("{from: 2026-01, to: 2026-06}", "{from: 2026-03, to: 2026-03}"),
    ("{}", "{from: 2026-04}"),
])
def test_overlapping_versions_are_refused_naming_both(old: str, new: str) -> None:
    [problem] = problems({"a.yaml": versioned(old), "b.yaml": versioned(new)})
    assert problem.startswith("a.yaml: document 1 (p): effective: versions of plan p overlap")
    assert "b.yaml: document 1" in problem


@pytest.mark.parametrize(("effective", "error"), [
    ("{from: 2026-Q1}", "effective.from: 2026-Q1 is a quarter, but the plan is paid by month"),
    ("{from: 2026-05, to: 2026-04}", "effective: from 2026-05 is after to 2026-04"),
    ("{from: 2026-13}", "'2026-13' is not a period"),
    ("{since: 2026-01}", "effective.since: Extra inputs are not permitted"),
])
def test_a_bad_effective_range_is_refused(effective: str, error: str) -> None:
    [problem] = problems({"a.yaml": versioned(effective)})
    assert error in problem


FEE = "components: [{name: fee, type: rate, base: revenue, rate: 0.1}]"
TIERED = "components: [{name: c, type: tiered_rate, base: revenue, tiers: [{rate: RATE}], cap: CAP}]"


@pytest.mark.parametrize(("field", "document"), [
    ("components.0.bonus.amount", "components: [{name: b, type: bonus, amount: -750, when: [{measure: deals}]}]"),
    ("components.0.rate.rate", FEE.replace("0.1", "-0.1")),
    ("components.0.tiered_rate.cap", TIERED.replace("RATE", "0.1").replace("CAP", "-1")),
    ("components.0.tiered_rate.tiers.0.rate", TIERED.replace("RATE", "-0.1").replace("CAP", "1")),
    ("quota.default", f"quota: -5\n{FEE}"),
    ("quota", f"quota: {{default: 5, x: -1}}\n{FEE}"),
])
def test_a_negative_amount_rate_quota_or_cap_is_refused(field: str, document: str) -> None:
    text = MINIMAL.replace(FEE, document)
    [problem] = problems({"a.yaml": text})
    assert f"(p): {field}" in problem and "negative" in problem


def test_several_documents_in_one_file_and_scorecards_beside_plans() -> None:
    card = ("scorecard: sc\napplies_to: {kind: partner}\n"
            "metrics: [{measure: nps, window: 90d, target: 50, weight: 0.2}]\ncap: 1.5\n")
    plans = parse_plans({"all.yaml": f"{MINIMAL}\n---\n{MINIMAL.replace('plan: p', 'plan: q')}\n---\n{card}"})
    assert [p.plan for p in plans.plans] == ["p", "q"]
    assert plans.scorecard("sc").metrics[0].target == Decimal(50)


# ---- content hash ----------------------------------------------------------------------------------------------

def test_the_hash_changes_when_the_content_changes() -> None:
    assert plan_of(SPEC_EXAMPLE).hash != plan_of(SPEC_EXAMPLE.replace("rate: 0.12", "rate: 0.13")).hash
    assert plan_of(MINIMAL).hash != plan_of(MINIMAL + "clawback: {window_days: 30}\n").hash


def test_the_hash_is_stable_for_the_same_content() -> None:
    assert plan_of(SPEC_EXAMPLE).hash == plan_of(SPEC_EXAMPLE).hash
    assert plan_of(SPEC_EXAMPLE).hash


def test_the_hash_ignores_comments_layout_and_key_order() -> None:
    reformatted = """
# the partner plan
components:
  - {rate: 0.1, base: revenue, type: rate, name: fee}   # flow style, keys reordered
applies_to:
  kind: partner
plan: p
"""
    assert plan_of(reformatted).hash == plan_of(MINIMAL).hash


# ---- errors: file, path of the bad field, and why --------------------------------------------------------------

@pytest.mark.parametrize(("change", "path", "reason"), [
    (("type: rate", "type: tiered"), "components.0", "tiered"),
    (("base: revenue", "base: happiness"), "components.0.rate.base", "revenue"),
    (("rate: 0.1", "rate: lots"), "components.0.rate.rate", "decimal"),
    (("applies_to: {kind: partner}", "applies_to: {kind: robot}"), "applies_to.kind", "partner"),
    (("applies_to: {kind: partner}", "applies_to: {}"), "applies_to", "kind"),
    (("applies_to: {kind: partner}\n", ""), "applies_to", "required"),
    (("plan: p", "plan: p\nperiod: week"), "period", "month"),
    (("plan: p", "plan: p\ncurrency: dollars"), "currency", "pattern"),
    (("plan: p", "plan: p\ncolour: red"), "colour", "not permitted"),
    (("plan: p", "plan: p\nclawback: {window_days: -1}"), "clawback.window_days", "greater than or equal"),
    (("components: [{name: fee, type: rate, base: revenue, rate: 0.1}]", "components: []"), "components",
     "at least 1"),
])
def test_a_bad_field_is_reported_with_file_path_and_reason(change: tuple[str, str], path: str, reason: str) -> None:
    [problem] = problems({"partners.yaml": MINIMAL.replace(*change)})
    assert problem.startswith("partners.yaml: ")
    assert f": {path}: " in problem, problem
    assert reason in problem, problem


@pytest.mark.parametrize(("tiers", "reason"), [
    ("[{upto: 1.5, rate: 0.08}, {upto: 1.0, rate: 0.12}, {rate: 0.15}]", "increase"),
    ("[{upto: 1.0, rate: 0.08}, {upto: 1.0, rate: 0.12}, {rate: 0.15}]", "increase"),
    ("[{upto: 1.0, rate: 0.08}, {rate: 0.12}, {rate: 0.15}]", "upto"),
    ("[{upto: 1.0, rate: 0.08}, {upto: 2.0, rate: 0.12}]", "open-ended"),
    ("[]", "at least 1"),
])
def test_bad_tiers_are_reported_on_their_component(tiers: str, reason: str) -> None:
    [problem] = problems({"ae.yaml": SPEC_EXAMPLE.replace(
        "[{upto: 1.0, rate: 0.08}, {upto: 1.5, rate: 0.12}, {rate: 0.15}]", tiers)})
    assert problem.startswith("ae.yaml: ") and "components.0.tiered_rate" in problem and reason in problem


def test_a_bad_condition_window_is_reported_with_its_path() -> None:
    [problem] = problems({"ae.yaml": SPEC_EXAMPLE.replace("window: 90d, min: 0.9", "window: 7d, min: 0.9")})
    assert "components.0.tiered_rate.gate.window" in problem


def test_yaml_that_does_not_parse_is_reported_with_its_file() -> None:
    [problem] = problems({"broken.yaml": "plan: p\ncomponents: [unclosed\n"})
    assert problem.startswith("broken.yaml: ") and "YAML" in problem


def test_a_document_that_is_neither_plan_nor_scorecard_is_reported() -> None:
    [problem] = problems({"notes.yaml": "- just\n- a list\n"})
    assert problem.startswith("notes.yaml: document 1") and "plan" in problem


def test_every_problem_of_every_file_is_reported_together() -> None:
    found = problems({"a.yaml": MINIMAL.replace("base: revenue", "base: nope"),
                      "b.yaml": MINIMAL.replace("plan: p", "plan: q\nperiod: week"),
                      "c.yaml": MINIMAL})
    assert [p.split(":")[0] for p in found] == ["a.yaml", "b.yaml"]


def test_two_plans_of_one_name_without_ranges_overlap() -> None:
    [problem] = problems({"a.yaml": MINIMAL, "b.yaml": MINIMAL})
    assert "versions of plan p overlap: always here and always in b.yaml" in problem


def test_component_names_must_be_unique_within_a_plan() -> None:
    doubled = MINIMAL.replace("components: [{name: fee, type: rate, base: revenue, rate: 0.1}]",
                              "components: [{name: fee, type: rate, base: revenue, rate: 0.1},"
                              " {name: fee, type: rate, base: margin, rate: 0.1}]")
    [problem] = problems({"a.yaml": doubled})
    assert "unique" in problem and "fee" in problem


def test_a_bad_per_party_quota_is_refused_with_its_path() -> None:
    [problem] = problems({"ae.yaml": SPEC_EXAMPLE.replace("quota: 100000", "quota: {default: 100000, ae-3: lots}")})
    assert problem.startswith("ae.yaml: ") and "quota" in problem and "ae-3" in problem
