"""Which parties an event feeds: the basis of the events listed behind a statement line."""

from __future__ import annotations

from shared.lineage import fed_parties
from tests.support.events import case, referral, registered, renewed, reversal, sale, survey
from tests.support.folds import fold_of


def test_a_sale_feeds_its_credited_parties_its_partner_and_its_customer() -> None:
    event = sale("o-1", "2026-03-02", "100", {"ae-1": "0.6", "ae-2": "0.4"}, partner_id="p-1")
    assert fed_parties(event, fold_of([])) == {"ae-1", "ae-2", "p-1", "c-1"}


def test_a_referred_sale_also_feeds_the_referrer_once_the_referral_is_known() -> None:
    event = sale("o-1", "2026-03-02", "100", {"ae-1": "1"}, referral_id="r-1")
    assert "pa-9" not in fed_parties(event, fold_of([]))
    assert "pa-9" in fed_parties(event, fold_of([referral("r-1", "2026-03-01", "pa-9", "c-1")]))


def test_a_reversal_feeds_the_parties_of_its_order_and_nothing_before_the_order_arrives() -> None:
    order = sale("o-1", "2026-03-02", "100", {"ae-1": "1"})
    assert fed_parties(reversal("o-1", "2026-03-05"), fold_of([order])) == {"ae-1", "c-1"}
    assert fed_parties(reversal("o-1", "2026-03-05"), fold_of([])) == set()


def test_a_renewal_feeds_the_customer_and_its_owners_at_event_time() -> None:
    history = fold_of([sale("o-1", "2026-03-02", "100", {"ae-1": "1"}),
                       sale("o-2", "2026-03-10", "100", {"ae-2": "1"})])
    assert fed_parties(renewed("c-1", "2026-03-05", "900"), history) == {"c-1", "ae-1"}
    assert fed_parties(renewed("c-1", "2026-03-01", "900"), history) == {"c-1"}


def test_cases_surveys_and_registrations_feed_the_resolver_the_rated_party_and_nobody() -> None:
    empty = fold_of([])
    assert fed_parties(case("agent-1", "2026-03-02"), empty) == {"agent-1"}
    assert fed_parties(survey("ae-1", "2026-03-02", nps=9), empty) == {"ae-1"}
    assert fed_parties(registered("ae-1"), empty) == set()
