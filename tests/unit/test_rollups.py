"""Roll-ups give a party's totals exactly as the fold sums them, through any sequence of replaced relationships."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.fold import REFERRED, REVERSED, Fold
from shared.measures import SLOTS, measure_values
from shared.periods import Window
from shared.rollups import RollUps
from tests.support.events import case, referral, registered, renewed, reversal, sale, survey

SETTINGS = settings(max_examples=150, deadline=None)
PARTIES = ("ae-1", "ae-2")
COUNTERPARTIES = ("c-1", "c-2", "c-3")
DAYS = st.integers(0, 12)  # few days: parts of different relationships often share one

ZERO = Decimal("0.00")
amounts = st.just(ZERO) | st.decimals(min_value=-500, max_value=500, places=2)
# a day's sums: an events count, then any prefix of the other slots (the fold keeps only what the day reached)
day_sums = st.tuples(st.integers(-2, 3), st.lists(st.one_of(amounts, st.integers(-3, 3)), max_size=len(SLOTS) - 1)
                     ).map(lambda drawn: (drawn[0], *drawn[1]))
part = st.one_of(
    st.tuples(DAYS, day_sums),
    st.tuples(st.tuples(st.just(REVERSED), DAYS, DAYS), amounts),
    # revenue may be zero: the referral is still converted in the sale's window
    st.tuples(st.tuples(st.just(REFERRED), st.sampled_from(["r-1", "r-2"]), DAYS),
              st.tuples(DAYS, st.just(ZERO) | st.decimals(min_value=0, max_value=500, places=2))),
)
relationship = st.lists(part, max_size=8).map(dict)
replacement = st.tuples(st.sampled_from(PARTIES), st.sampled_from(COUNTERPARTIES), st.none() | relationship)
windows = st.tuples(st.integers(-1, 13), st.integers(0, 14)).map(lambda days: Window(days[0], days[1], 0))
# the days a report is under one manager (`Party.days_under`): None, or spans of days, either end open
team_days = st.none() | st.lists(st.tuples(st.none() | DAYS, st.none() | DAYS), max_size=3)


def replace(fold: Fold, rollups: RollUps, party: str, counterparty: str, parts: dict | None) -> None:
    """Set one relationship of `fold` as the query replica does, telling the roll-ups old and new parts."""
    mine = fold.relationships.setdefault(party, {})
    old = mine.pop(counterparty, None)
    if parts is not None:
        mine[counterparty] = parts
    rollups.replace(party, old, parts)


def assert_same_totals(fold: Fold, rollups: RollUps, window: Window, days: list | None = None) -> None:
    for party in (*PARTIES, "nobody"):
        expected, got = fold.totals(party, window, spans=days), rollups.totals(party, window, days)
        assert measure_values(got) == measure_values(expected), (party, window, days)
        assert (got.events, got.converted) == (expected.events, expected.converted), (party, window, days)


@SETTINGS
@given(st.lists(replacement, max_size=6), st.lists(replacement, max_size=25),
       st.lists(windows, min_size=1, max_size=6), team_days, st.data())
def test_any_sequence_of_replaced_relationships_totals_as_the_fold(before: list, replacements: list, spans: list,
                                                                    days: list | None, data: st.DataObject) -> None:
    """Relationships the fold held before the roll-ups (merged when first read), then replacements, read after any
    of them (a merged party is kept in step) or only at the end; over whole windows and over a team's days."""
    fold = Fold()
    for party, counterparty, parts in before:
        fold.relationships.setdefault(party, {})[counterparty] = parts or {}
    rollups = RollUps(fold.relationships)
    for party, counterparty, parts in replacements:
        replace(fold, rollups, party, counterparty, parts)
        if data.draw(st.booleans(), label="read now"):
            assert_same_totals(fold, rollups, spans[0])
    for span in spans:
        assert_same_totals(fold, rollups, span)
        assert_same_totals(fold, rollups, span, days)


@SETTINGS
@given(st.lists(replacement, max_size=15))
def test_a_party_whose_relationships_are_all_gone_is_no_longer_kept(replacements: list) -> None:
    fold = Fold()
    rollups = RollUps(fold.relationships)
    for party, counterparty, parts in replacements:
        replace(fold, rollups, party, counterparty, parts)
        assert_same_totals(fold, rollups, Window(0, 20, 0))
    for party, counterparty, _ in replacements:
        replace(fold, rollups, party, counterparty, None)
    assert len(rollups) == 0


def test_a_live_fold_replicated_record_by_record_totals_as_the_fold() -> None:
    """Events folded one by one, every changed relationship replaced after each: the replica's own path."""
    events = [registered("ae-1", role="account_executive"),
              sale("o-1", "2026-03-03", "1000.00", customer="c-1"),
              sale("o-2", "2026-03-10", "500.00", {"ae-1": "0.5", "ae-2": "0.5"}, customer="c-2", partner_id="p-1"),
              reversal("o-1", "2026-03-12", "200.00"), reversal("o-2", "2026-04-02"),
              sale("o-3", "2026-03-20", "80.00", customer="c-3", referral_id="r-1"),
              referral("r-1", "2026-03-01", "ae-2", "c-3"), referral("r-2", "2026-03-05", "c-1", "c-4"),
              sale("o-4", "2026-03-21", "70.00", customer="c-4", referral_id="r-2"),
              survey("ae-1", "2026-02-10", customer="c-3", nps=10, csat=4), case("ae-2", "2026-03-11"),
              renewed("c-1", "2026-03-15", "1200.00"), sale("o-5", "2026-03-14", "10.00", customer="c-1")]
    source, replica = Fold(track_changes=True), Fold()
    rollups = RollUps(replica.relationships)
    for event in events:
        source.apply(event)
        for key in sorted(source.changed or ()):
            if key[0] == "relationship":
                parts = source.relationships.get(key[1], {}).get(key[2])
                replace(replica, rollups, key[1], key[2], None if parts is None else dict(parts))
        source.changed = set()
        for start, end in ((0, 10**6), (20_515, 20_545), (20_520, 20_535), (20_530, 20_560)):
            for party in ("ae-1", "ae-2", "p-1", "c-1", "c-3", "provider"):
                expected = source.totals(party, Window(start, end, 0))
                got = rollups.totals(party, Window(start, end, 0))
                assert measure_values(got) == measure_values(expected), (event.type, party, start, end)
                assert got.events == expected.events
    assert measure_values(rollups.totals("ae-2", Window(0, 10**6, 0)))["referrals_converted"] == Decimal(1)
