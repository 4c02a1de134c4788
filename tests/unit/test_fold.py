"""The fold (SPEC §2.2, §2.3, §3): what each event adds to which relationship, by event time, in any arrival order."""

from __future__ import annotations

from decimal import Decimal
from itertools import permutations

import pytest

from shared.fold import Conflict
from shared.measures import COUNTS, RATIOS, SUMS
from shared.periods import DAY_US, Period
from shared.snapshot import encode_fold
from tests.support import folds
from tests.support.events import (
    case,
    churned,
    make_event,
    referral,
    registered,
    renewed,
    reversal,
    sale,
    survey,
)
from tests.support.folds import fold_of, measures, team_measures

SPLIT = {"ae-1": "0.6", "ae-2": "0.4"}


@pytest.fixture(autouse=True, params=[1, 3], ids=["whole", "3 partitions"])
def partitions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check on the whole fold, and on the fold kept in three partitions exchanging messages."""
    monkeypatch.setattr(folds, "PARTITIONS", request.param)


def pick(values: dict, *names: str) -> tuple:
    return tuple(values[name] for name in names)


# ---- sales: credits, partner of record, customer purchases ------------------------------------------

def test_split_credits_share_amount_and_margin_and_count_a_deal_each() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000", SPLIT, margin="200")])
    assert pick(measures(fold, "ae-1"), "revenue", "margin", "deals") == (600, 120, 1)
    assert pick(measures(fold, "ae-2"), "revenue", "margin", "deals") == (400, 80, 1)


def test_orders_split_between_the_same_parties_keep_their_own_shares() -> None:
    halves = {"ae-1": "0.5", "ae-2": "0.5"}
    fold = fold_of([sale("o-1", "2026-03-05", "1000", SPLIT), sale("o-2", "2026-03-06", "1000", halves),
                    sale("o-3", "2026-03-07", "1000", SPLIT)])
    assert [measures(fold, party)["revenue"] for party in ("ae-1", "ae-2")] == [1700, 1300]
    assert [share for _, share in fold.order("o-2").credits] == [Decimal("0.5"), Decimal("0.5")]


def test_a_party_credited_twice_on_one_deal_counts_one_deal() -> None:
    twice = [{"party_id": "ae-1", "share": "0.5"}, {"party_id": "ae-1", "share": "0.5"}]
    fold = fold_of([make_event("sale.closed", "2026-03-05", order_id="o-1", customer_id="c-1", amount="1000",
                               currency="USD", credits=twice)])
    assert pick(measures(fold, "ae-1"), "revenue", "deals") == (1000, 1)


def test_the_partner_of_record_gets_the_whole_order() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000", SPLIT, partner_id="p-1", margin="200")])
    assert pick(measures(fold, "p-1"), "revenue", "margin", "deals") == (1000, 200, 1)
    assert measures(fold, "p-1", counterparty="c-1")["revenue"] == 1000
    assert fold.parties["p-1"].kind == "partner"


def test_a_customer_is_measured_on_its_purchases_with_the_provider() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000", SPLIT), sale("o-2", "2026-03-06", "250.50")])
    assert pick(measures(fold, "c-1"), "revenue", "deals") == (Decimal("1250.50"), 2)
    assert measures(fold, "c-1", counterparty="provider")["revenue"] == Decimal("1250.50")


def test_parties_first_seen_in_a_sale_get_their_kind_from_the_field() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000", SPLIT, partner_id="p-1")])
    assert {pid: party.kind for pid, party in fold.parties.items()} == {
        "c-1": "customer", "ae-1": "workforce", "ae-2": "workforce", "p-1": "partner"}


def test_a_registration_sets_kind_role_and_manager_even_after_inference() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000", {"x-1": "1"}),
                    registered("x-1", "partner", tier="gold", manager_id="m-1")])
    party = fold.parties["x-1"]
    assert (party.kind, party.tier, party.manager_id) == ("partner", "gold", "m-1")


def test_an_older_registration_arriving_late_does_not_replace_the_newer_one() -> None:
    fold = fold_of([registered("ae-1", role="manager", time="2026-02-01"),
                    registered("ae-1", role="account_executive", time="2026-01-01")])
    assert fold.parties["ae-1"].role == "manager"


# ---- effective-dated attributes (SPEC §2.3) ----------------------------------------------------------------

def day(text: str) -> int:
    return Period.parse(text[:7]).start_ts // DAY_US + int(text[8:10]) - 1


def test_each_registration_is_in_force_from_its_utc_day_until_the_next_ones() -> None:
    fold = fold_of([registered("ae-1", role="account_executive", time="2026-02-15T23:30:00+00:00"),
                    registered("ae-1", role="manager", time="2026-03-01T08:00:00+09:00"),   # 28 Feb, UTC
                    registered("ae-1", role="director", time="2026-03-10T12:00:00Z")])
    party = fold.parties["ae-1"]
    roles = {when: party.on(day(when)).role for when in
             ("2025-12-31", "2026-02-15", "2026-02-27", "2026-02-28", "2026-03-09", "2026-03-10", "2030-01-01")}
    assert roles == {"2025-12-31": "account_executive",  # before the first: the first's
                     "2026-02-15": "account_executive", "2026-02-27": "account_executive",
                     "2026-02-28": "manager", "2026-03-09": "manager", "2026-03-10": "director",
                     "2030-01-01": "director"}
    assert party.role == "director"  # the latest


def test_of_two_registrations_on_one_day_the_later_holds_the_whole_day() -> None:
    fold = fold_of([registered("ae-1", manager_id="mgr-2", time="2026-02-15T18:00:00Z"),
                    registered("ae-1", manager_id="mgr-1", time="2026-02-01"),
                    registered("ae-1", manager_id="mgr-3", time="2026-02-15T06:00:00Z")])
    party = fold.parties["ae-1"]
    assert [party.on(day(d)).manager_id for d in ("2026-02-14", "2026-02-15", "2026-02-16")] == [
        "mgr-1", "mgr-2", "mgr-2"]
    assert party.days_under("mgr-3") == []
    assert party.days_under("mgr-1") == [(None, day("2026-02-15"))]


def test_a_registration_replaces_every_attribute() -> None:
    fold = fold_of([registered("ae-1", manager_id="mgr-1", tier="gold", name="Ada", time="2026-01-01"),
                    registered("ae-1", time="2026-02-01")])
    now = fold.parties["ae-1"].on(day("2026-02-02"))
    assert (now.manager_id, now.tier, now.name) == (None, None, None)


def test_a_rep_moving_managers_rolls_up_to_each_on_its_own_days() -> None:
    """r1 moves from mgr-1 to mgr-2 on 15 February, the move arriving after every sale."""
    fold = fold_of([registered("ae-1", manager_id="mgr-1", time="2025-06-01"),
                    sale("o-1", "2026-01-20", "4000"), sale("o-2", "2026-02-10", "1000"),
                    sale("o-3", "2026-02-15T01:00:00Z", "500"), sale("o-4", "2026-02-20", "200"),
                    registered("ae-1", manager_id="mgr-2", time="2026-02-15T13:00:00Z")])
    old, new = team_measures(fold, "mgr-1", "2026-02"), team_measures(fold, "mgr-2", "2026-02")
    assert (old["revenue"], old["deals"], new["revenue"], new["deals"]) == (1000, 1, 700, 2)
    assert team_measures(fold, "mgr-1", "2026-01")["revenue"] == 4000  # January stays mgr-1's
    assert team_measures(fold, "mgr-2", "2026-01")["revenue"] == 0
    assert team_measures(fold, "mgr-1", "2026-Q1", "90d")["revenue"] == 5000  # every window splits on the day
    assert measures(fold, "ae-1", "2026-02")["revenue"] == 1700  # the rep's own measures do not change


def test_a_reports_reversal_counts_on_its_own_day_for_the_manager_then() -> None:
    fold = fold_of([registered("ae-1", manager_id="mgr-1", time="2025-06-01"),
                    registered("ae-1", manager_id="mgr-2", time="2026-02-15"),
                    sale("o-1", "2026-02-10", "1000"), reversal("o-1", "2026-02-20", "100")])
    old, new = team_measures(fold, "mgr-1", "2026-02"), team_measures(fold, "mgr-2", "2026-02")
    assert pick(old, "revenue", "reversed", "net_revenue") == (1000, 0, 1000)
    assert pick(new, "revenue", "reversed", "net_revenue") == (0, 100, -100)


def test_a_party_seen_before_its_registration_takes_the_first_registration_back_to_the_start() -> None:
    fold = fold_of([sale("o-1", "2025-11-03", "300"), registered("ae-1", manager_id="mgr-1", time="2026-01-05"),
                    registered("ae-1", manager_id="mgr-2", time="2026-03-01")])
    assert team_measures(fold, "mgr-1", "2025-11")["revenue"] == 300
    assert fold.parties["ae-1"].on(day("2025-11-03")).kind == "workforce"


@pytest.mark.parametrize("party", ["ag-9", "ae-9", "r-9"])
def test_resolver_about_and_referrer_ids_create_no_party(party: str) -> None:
    fold = fold_of([case("ag-9", "2026-03-01"), survey("ae-9", "2026-03-01", nps=9),
                    referral("ref-1", "2026-03-01", referrer="r-9", prospect="c-2")])
    assert party not in fold.parties
    assert "c-2" in fold.parties  # the prospect does become a customer


def test_upsell_revenue_counts_upsell_and_cross_sell_but_not_new() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "100", motion="upsell"),
                    sale("o-2", "2026-03-05", "20", motion="cross_sell"),
                    sale("o-3", "2026-03-05", "3")])
    assert pick(measures(fold, "ae-1"), "revenue", "upsell_revenue") == (123, 120)


def test_measures_are_per_relationship_and_roll_up_per_party() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "100", customer="c-1"), sale("o-2", "2026-03-05", "30", customer="c-2")])
    assert measures(fold, "ae-1", counterparty="c-1")["revenue"] == 100
    assert measures(fold, "ae-1", counterparty="c-2")["revenue"] == 30
    assert measures(fold, "ae-1")["revenue"] == 130


def test_events_count_in_the_window_of_their_event_time_not_arrival() -> None:
    fold = fold_of([sale("o-2", "2026-03-05", "100"), sale("o-1", "2026-02-27T23:59:59Z", "7")])
    assert measures(fold, "ae-1", "2026-02")["revenue"] == 7
    assert measures(fold, "ae-1", "2026-03")["revenue"] == 100


# ---- reversals ------------------------------------------------------------------------------------------

def test_reversal_is_credited_with_the_orders_shares() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000", SPLIT, partner_id="p-1"), reversal("o-1", "2026-03-09", "500")])
    assert pick(measures(fold, "ae-1"), "revenue", "reversed", "net_revenue") == (600, 300, 300)
    assert pick(measures(fold, "ae-2"), "reversed", "net_revenue") == (200, 200)
    assert pick(measures(fold, "p-1"), "reversed", "net_revenue") == (500, 500)
    assert pick(measures(fold, "c-1"), "reversed", "net_revenue") == (500, 500)


def test_a_reversal_amount_is_capped_at_what_is_left() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "1000"), reversal("o-1", "2026-03-06", "1500"),
                    reversal("o-1", "2026-03-07", "200")])
    assert pick(measures(fold, "ae-1"), "reversed", "net_revenue") == (1000, 0)


@pytest.mark.parametrize("arrival", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_reversal_without_amount_takes_what_earlier_ones_left(arrival: tuple[int, ...]) -> None:
    # in event time: 300 on 03-20 (March), then "the rest" on 04-02 (April), then 100 on 04-03 (nothing left)
    reversals = [reversal("o-1", "2026-03-20", "300"), reversal("o-1", "2026-04-02"),
                 reversal("o-1", "2026-04-03", "100")]
    fold = fold_of([sale("o-1", "2026-03-05", "1000"), *(reversals[i] for i in arrival)])
    assert measures(fold, "ae-1", "2026-03")["reversed"] == 300  # only the March reversal is in March
    assert measures(fold, "ae-1", "2026-04", window="90d")["reversed"] == 1000
    assert measures(fold, "ae-1", "2026-04", window="90d")["net_revenue"] == 0


def test_a_reversal_arriving_before_its_order_waits_and_then_applies() -> None:
    fold = fold_of([reversal("o-1", "2026-03-09", "400")])
    assert pick(measures(fold, "ae-1"), "revenue", "reversed") == (0, 0)
    assert "ae-1" not in fold.parties
    fold.apply(sale("o-1", "2026-03-05", "1000"))
    assert pick(measures(fold, "ae-1"), "revenue", "reversed", "net_revenue") == (1000, 400, 600)


def test_a_reversal_of_an_older_order_is_not_in_a_window_without_the_order() -> None:
    fold = fold_of([sale("o-1", "2026-02-20", "1000"), reversal("o-1", "2026-03-09", "400")])
    assert pick(measures(fold, "ae-1", "2026-03"), "revenue", "reversed", "net_revenue") == (0, 0, 0)
    assert pick(measures(fold, "ae-1", "2026-02"), "revenue", "reversed", "net_revenue") == (1000, 0, 1000)
    # both times inside a 90-day window ending with March: now it counts
    assert pick(measures(fold, "ae-1", "2026-03", "90d"), "reversed", "net_revenue") == (400, 600)


# ---- referrals ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("referral_first", [True, False])
def test_a_referred_sale_converts_the_referral_whatever_the_arrival_order(referral_first: bool) -> None:
    made = referral("r-1", "2026-02-20", referrer="c-9", prospect="c-2")
    sold = sale("o-1", "2026-03-05", "5000", customer="c-2", referral_id="r-1")
    fold = fold_of([made, sold] if referral_first else [sold, made])
    march = measures(fold, "c-9", "2026-03")
    assert pick(march, "referrals_made", "referrals_converted", "referral_revenue") == (0, 1, 5000)
    assert pick(measures(fold, "c-9", "2026-02"), "referrals_made", "referrals_converted") == (1, 0)
    assert measures(fold, "c-9", "2026-03", counterparty="c-2")["referral_revenue"] == 5000


@pytest.mark.parametrize(("made", "converted_in_march"), [
    ("2026-03-10", 1),  # made after its sale, in event time too, but before March ends
    ("2026-04-02", 0),  # not an event of March at all: March's close could not see it
])
def test_a_referral_made_after_its_sale_converts_it_in_any_window_holding_both(
        made: str, converted_in_march: int) -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "100", customer="c-2", referral_id="r-1"),
                    referral("r-1", made, referrer="c-9", prospect="c-2")])
    march = measures(fold, "c-9", "2026-03")
    assert pick(march, "referrals_converted", "referral_revenue") == (converted_in_march, 100 * converted_in_march)
    assert pick(measures(fold, "c-9", "2026-04", "90d"), "referrals_converted", "referral_revenue") == (1, 100)


def test_a_referral_counts_for_any_customer_and_converts_once() -> None:
    fold = fold_of([referral("r-1", "2026-03-01", referrer="p-1", prospect="c-2"),
                    sale("o-1", "2026-03-05", "100", customer="c-2", referral_id="r-1"),
                    sale("o-2", "2026-03-06", "50", customer="c-3", referral_id="r-1"),
                    reversal("o-1", "2026-03-07")])
    values = measures(fold, "p-1")
    assert pick(values, "referrals_made", "referrals_converted", "referral_revenue") == (1, 1, 150)  # gross
    assert measures(fold, "p-1", counterparty="c-3")["referral_revenue"] == 50


def test_a_referral_id_already_known_from_another_event_is_a_conflict_and_changes_nothing() -> None:
    fold = fold_of([referral("r-1", "2026-03-01", referrer="p-1", prospect="c-2"),
                    sale("o-1", "2026-03-05", "100", customer="c-2", referral_id="r-1")])
    before = encode_fold(fold)
    with pytest.raises(Conflict, match="r-1"):
        fold.apply(referral("r-1", "2026-02-01", referrer="p-2", prospect="c-3"))
    assert encode_fold(fold) == before
    assert measures(fold, "p-2", "2026-02")["referrals_made"] == 0


def test_an_order_closed_twice_is_a_conflict_and_changes_nothing() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "100")])
    before = encode_fold(fold)
    with pytest.raises(Conflict, match="o-1"):
        fold.apply(sale("o-1", "2026-03-06", "900", {"ae-2": "1"}, customer="c-2"))
    assert encode_fold(fold) == before


# ---- retention: the customer's owners at event time -------------------------------------------------------

@pytest.fixture
def two_owners() -> list:
    """c-1 bought from ae-1 (with partner p-1) in January, then from ae-2 in February."""
    return [sale("o-1", "2026-01-10", "100", partner_id="p-1"), sale("o-2", "2026-02-10", "100", {"ae-2": "1"})]


@pytest.mark.parametrize(("when", "owners", "others"), [
    ("2026-02-01", {"ae-1", "p-1"}, {"ae-2"}),
    ("2026-03-05", {"ae-2"}, {"ae-1", "p-1"}),
    ("2026-02-10T12:00:00Z", {"ae-2"}, {"ae-1", "p-1"}),  # same time as the sale: it is "≤ the event"
    ("2026-01-05", set(), {"ae-1", "ae-2", "p-1"}),  # before any sale: no owner but the customer itself
])
def test_retention_goes_to_the_owners_of_the_latest_sale_at_its_event_time(
        two_owners: list, when: str, owners: set, others: set) -> None:
    fold = fold_of([*two_owners, renewed("c-1", when, "1200")])
    for party in owners | {"c-1"}:
        assert measures(fold, party, "2026-03", "90d")["renewed_arr"] == 1200, party
    for party in others:
        assert measures(fold, party, "2026-03", "90d")["renewed_arr"] == 0, party


def test_a_late_earlier_sale_re_attributes_later_retention() -> None:
    fold = fold_of([sale("o-1", "2026-01-10", "100"), churned("c-1", "2026-03-05", "800"),
                    renewed("c-1", "2026-01-20", "300")])
    assert pick(measures(fold, "ae-1", "2026-03", "90d"), "renewed_arr", "churned_arr") == (300, 800)
    fold.apply(sale("o-2", "2026-02-10", "100", {"ae-3": "1"}))  # arrives late, owns c-1 from 02-10 on
    assert pick(measures(fold, "ae-1", "2026-03", "90d"), "renewed_arr", "churned_arr") == (300, 0)
    assert pick(measures(fold, "ae-3", "2026-03", "90d"), "renewed_arr", "churned_arr") == (0, 800)
    assert measures(fold, "ae-3", "2026-03", "90d")["retention_rate"] == 0
    assert measures(fold, "c-1", "2026-03", "90d")["retention_rate"] == Decimal(300) / Decimal(1100)


@pytest.mark.parametrize("order", list(permutations(range(3))))
def test_of_sales_at_the_same_time_the_greatest_order_id_owns_in_any_arrival_order(order: tuple) -> None:
    sales = [sale(f"o-{n}", "2026-03-05T00:00:00Z", "100", {f"ae-{n}": "1"}) for n in (1, 3, 2)]
    fold = fold_of([*(sales[i] for i in order), renewed("c-1", "2026-03-06", "1000")])
    assert [measures(fold, f"ae-{n}")["renewed_arr"] for n in (1, 2, 3)] == [0, 0, 1000]


def test_retention_rate_is_renewed_over_renewed_plus_churned() -> None:
    fold = fold_of([sale("o-1", "2026-03-01", "100"), renewed("c-1", "2026-03-02", "900"),
                    churned("c-1", "2026-03-03", "100"), renewed("c-1", "2026-03-04", "1000")])
    assert measures(fold, "ae-1")["retention_rate"] == Decimal("0.95")


# ---- service and surveys -----------------------------------------------------------------------------------

def test_cases_and_first_contact_rate_by_resolver() -> None:
    fold = fold_of([case("ag-1", "2026-03-01"), case("ag-1", "2026-03-02", first_contact=False),
                    case("ag-1", "2026-03-03", customer="c-2"), case("ag-2", "2026-03-03")])
    assert pick(measures(fold, "ag-1"), "cases", "fcr_rate") == (3, Decimal(2) / Decimal(3))
    assert measures(fold, "ag-1", counterparty="c-2")["cases"] == 1


@pytest.mark.parametrize(("scores", "nps"), [
    ([9, 10, 7, 6, 0], 0),
    ([10, 10, 8, 3], 25),
    ([7, 8], 0),
    ([9], 100),
    ([6, 6, 9], Decimal(-100) / 3),
])
def test_nps_is_promoters_minus_detractors_over_responses(scores: list[int], nps: Decimal) -> None:
    fold = fold_of([survey("ae-1", "2026-03-02", nps=score) for score in scores])
    assert measures(fold, "ae-1")["nps"] == nps


def test_csat_is_the_mean_and_ignores_nps_only_answers() -> None:
    fold = fold_of([survey("ae-1", "2026-03-02", csat=5), survey("ae-1", "2026-03-03", csat=4, nps=9),
                    survey("ae-1", "2026-03-03", nps=2)])
    assert pick(measures(fold, "ae-1"), "csat", "nps") == (Decimal("4.5"), 0)


def test_without_contributions_ratios_are_null_and_sums_zero() -> None:
    fold = fold_of([sale("o-1", "2026-02-05", "100"), case("ae-1", "2026-02-05"), survey("ae-1", "2026-02-05", nps=9),
                    renewed("c-1", "2026-02-06", "10")])
    values = measures(fold, "ae-1", "2026-03")
    assert {name: values[name] for name in RATIOS} == dict.fromkeys(RATIOS)
    assert {name: values[name] for name in SUMS + COUNTS} == dict.fromkeys(SUMS + COUNTS, 0)
    assert measures(fold, "nobody")["nps"] is None


# ---- managers -------------------------------------------------------------------------------------------------

@pytest.fixture
def team() -> list:
    """mgr-1 manages ae-1 and ae-2; ae-3 reports elsewhere."""
    return [registered("mgr-1", role="manager"), registered("ae-1", manager_id="mgr-1"),
            registered("ae-2", manager_id="mgr-1"), registered("ae-3", manager_id="mgr-2")]


def test_team_sums_add_up_over_direct_reports_only(team: list) -> None:
    fold = fold_of([*team, sale("o-1", "2026-03-05", "1000", SPLIT), sale("o-2", "2026-03-06", "500", {"ae-3": "1"}),
                    sale("o-3", "2026-03-06", "70", {"mgr-1": "1"}), reversal("o-1", "2026-03-07", "100")])
    values = team_measures(fold, "mgr-1")
    assert pick(values, "revenue", "reversed", "net_revenue", "deals") == (1000, 100, 900, 2)
    assert measures(fold, "mgr-1")["revenue"] == 70  # its own sales are not its team's


def test_team_ratios_are_ratios_of_the_summed_parts(team: list) -> None:
    fold = fold_of([*team, sale("o-1", "2026-03-01", "1", customer="c-1"),
                    sale("o-2", "2026-03-01", "1", {"ae-2": "1"}, customer="c-2"),
                    renewed("c-1", "2026-03-02", "300"),                                       # ae-1: rate 1
                    renewed("c-2", "2026-03-02", "100"), churned("c-2", "2026-03-03", "300"),  # ae-2: rate 0.25
                    survey("ae-1", "2026-03-04", nps=10),                                      # ae-1: nps 100
                    *(survey("ae-2", "2026-03-04", nps=score) for score in (0, 0, 10)),        # ae-2: nps -33.3
                    case("ae-1", "2026-03-05"), *(case("ae-2", "2026-03-05", first_contact=False) for _ in "abc")])
    values = team_measures(fold, "mgr-1")
    assert values["retention_rate"] == Decimal(400) / Decimal(700)  # not the mean 0.625
    assert values["nps"] == 0                                         # (2 - 2) / 4 responses
    assert values["fcr_rate"] == Decimal("0.25")                      # 1 of 4 cases


def test_a_manager_without_reports_has_an_empty_team(team: list) -> None:
    fold = fold_of([*team, sale("o-1", "2026-03-05", "1000")])
    values = team_measures(fold, "ae-1")
    assert (values["revenue"], values["retention_rate"]) == (0, None)

