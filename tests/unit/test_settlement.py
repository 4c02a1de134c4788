"""Settlement (SPEC §5): rounded frozen statements, close order, clawbacks, adjustments for late events."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.fold import Fold
from shared.periods import Period
from shared.plans import PlanSet
from shared.settlement import Book, CloseRefused, Settlement
from tests.support.events import registered, reversal, sale
from tests.support.folds import fold_of
from tests.support.plans import COMMISSION, plan_set

CLOSED_AT = datetime(2026, 7, 1, tzinfo=UTC)
AE_PLAN = COMMISSION + "clawback: {window_days: 30}\n"
PARTNER_PLAN = """
plan: partner
applies_to: {kind: partner}
components: [{name: rebate, type: tiered_rate, base: net_revenue, tiers: [{rate: 0.05}]}]
clawback: {window_days: 30}
"""
QUARTER_PLAN = """
plan: quarterly
applies_to: {kind: workforce}
period: quarter
components: [{name: kicker, type: rate, base: revenue, rate: 0.01}]
"""
PLANS = plan_set(AE_PLAN, PARTNER_PLAN, QUARTER_PLAN)
# 11 600 paid on 130 000 in January: an effective rate of 11 600 / 130 000, neither 0.08 nor 0.12
EFFECTIVE = Decimal(11600) / Decimal(130000)


def close(book: Book, fold: Fold, period: str, plans: PlanSet = PLANS) -> Settlement:
    return book.close(fold, plans, Period.parse(period), CLOSED_AT)


def lines(settlement: Settlement, party: str, kind: str | None = None) -> list[tuple]:
    """(plan, component, kind, corrects, amount) of a statement's lines, optionally of one kind."""
    return [(line.plan, line.component, line.kind, line.corrects, line.amount)
            for line in settlement.statements[party].lines if kind is None or line.kind == kind]


def rate_plan(*rates: str, currency: str = "USD") -> PlanSet:
    components = ", ".join(f"{{name: c{i}, type: rate, base: net_revenue, rate: {rate}}}"
                           for i, rate in enumerate(rates))
    return plan_set(f"plan: r\napplies_to: {{kind: workforce}}\ncurrency: {currency}\n"
                    f"components: [{components}]\n")


# ---- rounding ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rate", "currency", "expected"), [
    ("0.005", "USD", "0.00"), ("0.015", "USD", "0.02"), ("0.025", "USD", "0.02"), ("0.0251", "USD", "0.03"),
    ("2.5", "PTS", "2"), ("3.5", "PTS", "4"),
])
def test_each_line_is_rounded_half_even_to_the_minor_unit(rate: str, currency: str, expected: str) -> None:
    settlement = close(Book(), fold_of([sale("o-1", "2026-03-05", "1")]), "2026-03", rate_plan(rate, currency=currency))
    [line] = settlement.statements["ae-1"].lines
    assert (line.amount, str(line.amount), line.exact) == (Decimal(expected), expected, Decimal(rate))


def test_the_total_is_the_sum_of_the_rounded_lines() -> None:
    settlement = close(Book(), fold_of([sale("o-1", "2026-03-05", "1")]), "2026-03",
                       rate_plan("0.006", "0.006", "0.006"))
    assert [line.amount for line in settlement.statements["ae-1"].lines] == [Decimal("0.01")] * 3
    assert settlement.statements["ae-1"].totals == {"USD": Decimal("0.03")}  # not round(0.018) = 0.02
    assert settlement.totals == {"USD": Decimal("0.03")}


def test_totals_are_per_currency() -> None:
    plans = plan_set(AE_PLAN, "plan: pts\napplies_to: {kind: workforce}\ncurrency: PTS\n"
                               "components: [{name: p, type: points, base: revenue, per_unit: 0.5}]\n")
    settlement = close(Book(), fold_of([sale("o-1", "2026-03-05", "1001")]), "2026-03", plans)
    assert settlement.statements["ae-1"].totals == {"USD": Decimal("80.08"), "PTS": Decimal(500)}  # 500.5 → 500


# ---- who gets a statement ----------------------------------------------------------------------------------

def test_every_known_party_with_a_plan_gets_its_lines_even_at_zero() -> None:
    fold = fold_of([registered("ae-7", role="account_executive"), sale("o-1", "2026-03-05", "100000")])
    settlement = close(Book(), fold, "2026-03")
    assert lines(settlement, "ae-7") == [("ae", "commission", "payout", None, Decimal("0.00"))]
    assert lines(settlement, "ae-1") == [("ae", "commission", "payout", None, Decimal("8000.00"))]
    assert "c-1" not in settlement.statements  # a customer without a plan has no statement
    assert settlement.statements["ae-1"].kind == "workforce"


def test_a_party_known_only_from_a_later_event_is_still_settled() -> None:
    fold = fold_of([sale("o-1", "2026-04-05", "100", {"ae-5": "1"})])
    assert lines(close(Book(), fold, "2026-03"), "ae-5") == [("ae", "commission", "payout", None, Decimal("0.00"))]


def test_a_statement_records_the_hash_of_every_plan_of_its_kind() -> None:
    settlement = close(Book(), Fold(), "2026-03")
    assert settlement.plan_hashes == {plan.plan: plan.hash for plan in PLANS.plans if plan.period == "month"}
    assert set(settlement.plan_hashes) == {"ae", "partner"}


def test_a_line_carries_the_measures_it_used_and_the_events_behind_them() -> None:
    fold = fold_of([sale("o-1", "2026-03-05", "100"), sale("o-2", "2026-03-06", "50")])
    [line] = close(Book(), fold, "2026-03").statements["ae-1"].lines
    assert line.measures["net_revenue@period"] == "150"
    assert line.events == 2


# ---- close order and idempotence ---------------------------------------------------------------------------

def test_closing_twice_returns_the_same_frozen_settlement() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-03-05", "100000")])
    first = close(book, fold, "2026-03")
    fold.apply(sale("o-2", "2026-03-06", "50000"))
    again = close(book, fold, "2026-03")
    assert again is first
    assert lines(again, "ae-1") == [("ae", "commission", "payout", None, Decimal("8000.00"))]


@pytest.mark.parametrize(("closes", "refused"), [
    (["2026-01"], "2026-03"),   # skips February
    (["2026-02"], "2026-01"),   # an earlier period after a later one
    (["2026-Q1"], "2026-Q3"),
])
def test_periods_of_a_kind_close_in_order(closes: list[str], refused: str) -> None:
    book, fold = Book(), Fold()
    for period in closes:
        close(book, fold, period)
    with pytest.raises(CloseRefused):
        close(book, fold, refused)
    assert sorted(book.closed) == closes


@pytest.mark.parametrize("sequence", [["2026-05"], ["2026-01", "2026-02", "2026-03"], ["2026-02", "2026-Q1", "2026-03"],
                                      ["2026-Q2", "2026-01"]])
def test_the_first_close_of_a_kind_may_be_any_period_and_kinds_are_independent(sequence: list[str]) -> None:
    book = Book()
    for period in sequence:
        close(book, Fold(), period)
    assert sorted(book.closed) == sorted(sequence)


# ---- clawbacks ---------------------------------------------------------------------------------------------

ORDER_TIME = "2026-01-15T12:00:00Z"


@pytest.fixture
def paid_in_january() -> tuple[Book, Fold]:
    """130 000 sold by ae-1 with partner p-1 on 2026-01-15 12:00, January closed (ae-1 paid 11 600)."""
    book, fold = Book(), fold_of([sale("o-1", ORDER_TIME, "130000", partner_id="p-1")])
    january = close(book, fold, "2026-01")
    assert lines(january, "ae-1") == [("ae", "commission", "payout", None, Decimal("11600.00"))]
    return book, fold


@pytest.mark.parametrize(("when", "clawed"), [
    ("2026-02-14T12:00:00Z", True),          # exactly 30 × 24 h after the order
    ("2026-02-14T12:00:00.000001Z", False),  # one microsecond later
    ("2026-02-14T13:00:00+01:00", True),     # the same instant, written with an offset
    ("2026-02-01T00:00:00Z", True),
])
def test_clawback_within_window_days_exactly(paid_in_january, when: str, clawed: bool) -> None:
    book, fold = paid_in_january
    fold.apply(reversal("o-1", when, "13000"))
    february = close(book, fold, "2026-02")
    expected = [("ae", "commission", "clawback", None, Decimal("-1160.00"))] if clawed else []
    assert lines(february, "ae-1", "clawback") == expected


def test_clawback_is_at_the_effective_rate_rounded_per_line(paid_in_january) -> None:
    book, fold = paid_in_january
    fold.apply(reversal("o-1", "2026-02-03", "1000"))
    fold.apply(reversal("o-1", "2026-02-04", "10"))
    february = close(book, fold, "2026-02")
    # 1000 × 11 600 / 130 000 = 89.2307…; 10 × 11 600 / 130 000 = 0.8923…
    assert lines(february, "ae-1", "clawback") == [("ae", "commission", "clawback", None, Decimal("-89.23")),
                                                   ("ae", "commission", "clawback", None, Decimal("-0.89"))]
    assert [line.exact for line in february.statements["ae-1"].lines if line.kind == "clawback"] == [
        -Decimal(1000) * EFFECTIVE, -Decimal(10) * EFFECTIVE]


def test_the_partner_of_record_is_clawed_back_too(paid_in_january) -> None:
    book, fold = paid_in_january
    fold.apply(reversal("o-1", "2026-02-03"))  # the whole order
    february = close(book, fold, "2026-02")
    assert lines(february, "p-1", "clawback") == [("partner", "rebate", "clawback", None, Decimal("-6500.00"))]
    assert lines(february, "ae-1", "clawback") == [("ae", "commission", "clawback", None, Decimal("-11600.00"))]


def test_clawback_reaches_back_more_than_one_period_within_the_window() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-01-31T00:00:00Z", "130000")])
    close(book, fold, "2026-01")
    close(book, fold, "2026-02")
    fold.apply(reversal("o-1", "2026-03-02T00:00:00Z", "13000"))  # 30 days later
    assert lines(close(book, fold, "2026-03"), "ae-1", "clawback") == [
        ("ae", "commission", "clawback", None, Decimal("-1160.00"))]


def test_no_clawback_when_the_orders_period_was_never_closed() -> None:
    book, fold = Book(), fold_of([sale("o-1", ORDER_TIME, "130000"), reversal("o-1", "2026-02-03", "13000")])
    february = close(book, fold, "2026-02")  # the first close: January stays unclosed
    assert lines(february, "ae-1") == [("ae", "commission", "payout", None, Decimal("0.00"))]


def test_a_reversal_in_the_orders_own_period_just_lowers_net_revenue() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-02-02", "130000"), reversal("o-1", "2026-02-10", "30000")])
    close(book, fold, "2026-01")
    assert lines(close(book, fold, "2026-02"), "ae-1") == [("ae", "commission", "payout", None, Decimal("8000.00"))]


# ---- late events and adjustments ---------------------------------------------------------------------------

def test_a_late_event_becomes_an_adjustment_in_the_next_close_and_the_frozen_statement_stays() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-01-10", "100000")])
    january = close(book, fold, "2026-01")
    fold.apply(sale("o-2", "2026-01-20", "30000"))  # arrives after January closed
    february = close(book, fold, "2026-02")
    assert lines(february, "ae-1") == [("ae", "commission", "payout", None, Decimal("0.00")),
                                       ("ae", "commission", "adjustment", "2026-01", Decimal("3600.00"))]
    assert lines(january, "ae-1") == [("ae", "commission", "payout", None, Decimal("8000.00"))]
    assert book.closed["2026-01"] is january


def test_adjustments_already_made_are_not_made_again() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-01-10", "100000")])
    close(book, fold, "2026-01")
    fold.apply(sale("o-2", "2026-01-20", "30000"))
    close(book, fold, "2026-02")
    march = close(book, fold, "2026-03")
    assert lines(march, "ae-1", "adjustment") == []
    fold.apply(sale("o-3", "2026-01-25", "20000"))  # January is now 150 000: 8 000 + 6 000 = 14 000
    april = close(book, fold, "2026-04")
    assert lines(april, "ae-1", "adjustment") == [("ae", "commission", "adjustment", "2026-01", Decimal("2400.00"))]


def test_a_late_event_in_an_older_period_corrects_that_period() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-02-10", "100000")])
    close(book, fold, "2026-01")
    close(book, fold, "2026-02")
    fold.apply(sale("o-2", "2026-01-20", "1000", {"ae-9": "1"}))  # a new party, for a period two closes back
    march = close(book, fold, "2026-03")
    assert lines(march, "ae-9", "adjustment") == [("ae", "commission", "adjustment", "2026-01", Decimal("80.00"))]
    assert lines(march, "ae-1", "adjustment") == []


def test_a_late_reversal_in_a_closed_period_is_adjusted_too() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-01-10", "130000")])
    close(book, fold, "2026-01")
    fold.apply(reversal("o-1", "2026-01-30", "30000"))
    assert lines(close(book, fold, "2026-02"), "ae-1", "adjustment") == [
        ("ae", "commission", "adjustment", "2026-01", Decimal("-3600.00"))]


# ---- effective dating: attributes on a period's last day, plan versions (SPEC §2.3, §4, §5.2, §5.3) ----------

ROLE_PLANS = plan_set(
    AE_PLAN.replace("applies_to: {kind: workforce}", "applies_to: {kind: workforce, role: account_executive}"),
    "plan: mgr\napplies_to: {kind: workforce, role: manager}\n"
    "components: [{name: override, type: override, base: net_revenue, rate: 0.1}]\n")


def test_the_plans_of_a_period_are_those_of_the_attributes_on_its_last_day() -> None:
    """ae-1 is promoted to manager on 28 February: January pays it as a rep, February as a manager."""
    book, fold = Book(), fold_of([registered("ae-1", role="account_executive", time="2025-06-01"),
                                  sale("o-1", "2026-01-10", "1000"), sale("o-2", "2026-02-10", "1000")])
    january = close(book, fold, "2026-01", ROLE_PLANS)
    fold.apply(registered("ae-1", role="manager", time="2026-02-28"))
    february = close(book, fold, "2026-02", ROLE_PLANS)
    assert [line[:3] for line in lines(january, "ae-1")] == [("ae", "commission", "payout")]
    assert [line[:3] for line in lines(february, "ae-1")] == [("mgr", "override", "payout")]  # no adjustment


def test_a_manager_move_after_a_close_corrects_nothing_before_it() -> None:
    """r1 moves from mgr-1 to mgr-2 on 15 February; the move arrives after January was closed."""
    book, fold = Book(), fold_of([registered("mgr-1", role="manager"), registered("mgr-2", role="manager"),
                                  registered("ae-1", role="account_executive", manager_id="mgr-1"),
                                  sale("o-1", "2026-01-10", "10000"), sale("o-2", "2026-02-20", "5000")])
    close(book, fold, "2026-01", ROLE_PLANS)
    fold.apply(registered("ae-1", role="account_executive", manager_id="mgr-2", time="2026-02-15"))
    february = close(book, fold, "2026-02", ROLE_PLANS)
    assert lines(february, "mgr-1") == [("mgr", "override", "payout", None, Decimal("0.00"))]
    assert lines(february, "mgr-2") == [("mgr", "override", "payout", None, Decimal("500.00"))]


def versions(old_rate: str, new_rate: str, until: str = "2026-01") -> PlanSet:
    """Plan r at `old_rate` up to `until`, at `new_rate` from the month after."""
    switch = Period.parse(until).next()
    base = "plan: r\napplies_to: {kind: workforce}\neffective: RANGE\nclawback: {window_days: 90}\n" \
           "components: [{name: c, type: tiered_rate, base: net_revenue, tiers: [{rate: RATE}]}]\n"
    return plan_set(base.replace("RANGE", f"{{to: {until}}}").replace("RATE", old_rate) + "---\n"
                    + base.replace("RANGE", f"{{from: {switch}}}").replace("RATE", new_rate))


def test_each_period_is_paid_by_its_own_version_and_the_statement_records_its_hash() -> None:
    plans = versions("0.1", "0.2")
    book, fold = Book(), fold_of([sale("o-1", "2026-01-10", "1000"), sale("o-2", "2026-02-10", "1000")])
    january, february = close(book, fold, "2026-01", plans), close(book, fold, "2026-02", plans)
    assert lines(january, "ae-1") == [("r", "c", "payout", None, Decimal("100.00"))]
    assert lines(february, "ae-1") == [("r", "c", "payout", None, Decimal("200.00"))]
    assert january.plan_hashes["r"] != february.plan_hashes["r"]


def test_a_version_added_for_later_periods_adjusts_nothing_and_editing_a_closed_ones_is_a_restatement() -> None:
    book, fold = Book(), fold_of([sale("o-1", "2026-01-10", "1000"), sale("o-2", "2026-02-10", "1000"),
                                  sale("o-3", "2026-03-10", "1000")])
    close(book, fold, "2026-01", versions("0.1", "0.1", until="2026-05"))
    february = close(book, fold, "2026-02", versions("0.1", "0.3"))  # a new version from February on
    assert lines(february, "ae-1") == [("r", "c", "payout", None, Decimal("300.00"))]
    march = close(book, fold, "2026-03", versions("0.15", "0.3"))  # January's version edited: restated
    assert lines(march, "ae-1", "adjustment") == [("r", "c", "adjustment", "2026-01", Decimal("50.00"))]


def test_a_clawback_is_on_the_version_that_paid_the_order_even_when_no_plan_applies_now() -> None:
    """Paid in January at 0.1 as a rep; promoted to manager (no commission plan) before the reversal."""
    plans = plan_set("plan: r\napplies_to: {kind: workforce, role: account_executive}\neffective: {to: 2026-01}\n"
                     "clawback: {window_days: 90}\n"
                     "components: [{name: c, type: tiered_rate, base: net_revenue, tiers: [{rate: 0.1}]}]\n---\n"
                     "plan: r\napplies_to: {kind: workforce, role: account_executive}\neffective: {from: 2026-02}\n"
                     "components: [{name: c, type: tiered_rate, base: net_revenue, tiers: [{rate: 0.5}]}]\n")
    book, fold = Book(), fold_of([registered("ae-1", role="account_executive", time="2025-06-01"),
                                  sale("o-1", "2026-01-10", "1000")])
    close(book, fold, "2026-01", plans)
    fold.apply(registered("ae-1", role="manager", time="2026-02-01"))
    fold.apply(reversal("o-1", "2026-02-05", "400"))
    assert lines(close(book, fold, "2026-02", plans), "ae-1") == [("r", "c", "clawback", None, Decimal("-40.00"))]
