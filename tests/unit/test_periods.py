"""UTC calendar periods and measure windows (SPEC §3, §5.1): half-open, by event time, in whole UTC days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.periods import DAY_US, Period, Window, day_of


def us(moment: datetime) -> int:
    """Epoch microseconds, computed independently of the code under test."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def day(year: int, month: int, day_: int) -> int:
    return us(datetime(year, month, day_, tzinfo=UTC)) // DAY_US


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2026-03", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    ("2026-02", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
    ("2028-02", datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),
    ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ("2026-Q1", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    ("2026-Q2", datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),
    ("2026-Q4", datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
])
def test_a_period_ends_where_the_next_one_starts(text: str, start: datetime, end: datetime) -> None:
    period = Period.parse(text)
    assert (period.start, period.end) == (start, end)
    assert (period.start_ts, period.end_ts) == (us(start), us(end))
    assert str(period) == text


@pytest.mark.parametrize(("text", "following"), [
    ("2026-03", "2026-04"), ("2026-12", "2027-01"), ("2026-Q1", "2026-Q2"), ("2026-Q4", "2027-Q1"),
])
def test_next_period_is_of_the_same_kind(text: str, following: str) -> None:
    assert Period.parse(text).next() == Period.parse(following)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-3", "2026-Q0", "2026-Q5", "26-03", "march",
                                  "2026-03-01", "", "2026-q1"])
def test_anything_else_is_not_a_period(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        Period.parse(text)


def test_periods_sort_chronologically() -> None:
    texts = ["2026-11", "2025-12", "2026-02", "2026-10"]
    assert [str(p) for p in sorted(map(Period.parse, texts))] == ["2025-12", "2026-02", "2026-10", "2026-11"]


@pytest.mark.parametrize(("moment", "kind", "expected"), [
    (datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC), "month", "2026-03"),
    (datetime(2026, 4, 1, tzinfo=UTC), "month", "2026-04"),
    (datetime(2026, 3, 1, tzinfo=UTC), "month", "2026-03"),
    (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "quarter", "2026-Q1"),
    (datetime(2026, 4, 1, tzinfo=UTC), "quarter", "2026-Q2"),
    (datetime(2026, 12, 31, 12, tzinfo=UTC), "quarter", "2026-Q4"),
])
def test_the_period_containing_an_event_time(moment: datetime, kind: str, expected: str) -> None:
    assert Period.containing(us(moment), kind) == Period.parse(expected)


def test_period_window_at_close_covers_exactly_the_period() -> None:
    march = Period.parse("2026-03")
    window = Window.of("period", march, march.end_ts)
    assert window.contains(day(2026, 3, 1)) and window.contains(day(2026, 3, 31))
    assert not window.contains(day(2026, 2, 28)) and not window.contains(day(2026, 4, 1))


@pytest.mark.parametrize(("name", "days"), [("30d", 30), ("90d", 90), ("365d", 365)])
def test_rolling_window_starts_n_days_before_as_of(name: str, days: int) -> None:
    march = Period.parse("2026-03")
    window = Window.of(name, march, march.end_ts)
    first = datetime(2026, 4, 1, tzinfo=UTC) - timedelta(days=days)
    assert window.contains(us(first) // DAY_US)
    assert not window.contains(us(first - timedelta(days=1)) // DAY_US)
    assert not window.contains(day(2026, 4, 1))


def test_a_90d_window_at_the_end_of_march_starts_on_new_years_day() -> None:
    window = Window.of("90d", Period.parse("2026-03"), Period.parse("2026-03").end_ts)
    assert window.contains(day(2026, 1, 1)) and not window.contains(day(2025, 12, 31))


def test_a_live_window_ending_mid_day_includes_that_day_and_no_later() -> None:
    now = us(datetime(2026, 3, 10, 15, 30, tzinfo=UTC))
    window = Window.of("period", Period.parse("2026-03"), now)
    assert window.contains(day(2026, 3, 10))
    assert not window.contains(day(2026, 3, 11))
    assert window.end_ts == now


def test_a_live_rolling_window_is_anchored_at_as_of_not_at_the_period_end() -> None:
    now = us(datetime(2026, 3, 10, 15, 30, tzinfo=UTC))
    window = Window.of("30d", Period.parse("2026-03"), now)
    # as_of's day (2026-03-10) counts whole, so the window is the 30 days 2026-02-09 .. 2026-03-10
    assert window.contains(day(2026, 2, 9)) and not window.contains(day(2026, 2, 8))


def test_an_unknown_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        Window.of("7d", Period.parse("2026-03"), Period.parse("2026-03").end_ts)


def test_day_of_is_the_utc_day_index() -> None:
    assert day_of(us(datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC))) == day(2026, 3, 10)
    assert day_of(us(datetime(2026, 3, 11, tzinfo=UTC))) == day(2026, 3, 10) + 1
