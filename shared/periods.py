"""UTC calendar periods (`2026-03`, `2026-Q1`) and measure windows as half-open day ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

__all__ = ["DAY_US", "PERIOD_OUT_OF_RANGE", "PERIOD_PATTERN", "WINDOWS", "Kind", "Period", "Window", "WindowName",
           "day_of", "ts_of"]

DAY_US = 86_400_000_000
WindowName = Literal["period", "30d", "90d", "365d"]
WINDOWS: tuple[WindowName, ...] = get_args(WindowName)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$"
"""The text of a period (SPEC §6), as the HTTP API declares it."""
PERIOD_OUT_OF_RANGE = r"^(0000-|9999-(12|Q4)$)"
"""Texts of the pattern that are not periods: a period starts after year 0 and ends before year 10000."""
_PATTERN = re.compile(r"([0-9]{4})-(?:(0[1-9]|1[0-2])|Q([1-4]))")
_END_LIMIT = 10_000 * 12  # months since year 0 of 10000-01: a period must end before it, as datetimes do

Kind = Literal["month", "quarter"]


def ts_of(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def day_of(ts: int) -> int:
    """The UTC day index (days since the epoch) of epoch microseconds."""
    return ts // DAY_US


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A UTC calendar month or quarter, identified by its first month."""

    year: int
    first_month: int
    kind: Kind

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PATTERN.fullmatch(text)
        if not match:
            raise ValueError(f"{text!r} is not a period (expected YYYY-MM or YYYY-Qn)")
        year, month, quarter = match.groups()
        period = cls(int(year), int(month), "month") if month else cls(int(year), 3 * int(quarter) - 2, "quarter")
        if period.year < 1 or period.year * 12 + period.first_month - 1 + period.months >= _END_LIMIT:
            raise ValueError(f"{text!r} is out of range: periods run from 0001-01 to 9999-11 (9999-Q3)")
        return period

    @classmethod
    def containing(cls, ts: int, kind: Kind) -> Period:
        moment = _EPOCH + timedelta(microseconds=ts)
        month = moment.month if kind == "month" else 3 * ((moment.month - 1) // 3) + 1
        return cls(moment.year, month, kind)

    @property
    def months(self) -> int:
        return 1 if self.kind == "month" else 3

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.first_month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The start of the next period."""
        return self.next().start

    @property
    def start_ts(self) -> int:
        return ts_of(self.start)

    @property
    def end_ts(self) -> int:
        return ts_of(self.end)

    def next(self) -> Period:
        index = self.year * 12 + self.first_month - 1 + self.months
        return Period(index // 12, index % 12 + 1, self.kind)

    def __str__(self) -> str:
        if self.kind == "month":
            return f"{self.year:04d}-{self.first_month:02d}"
        return f"{self.year:04d}-Q{(self.first_month + 2) // 3}"


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open range of UTC days `[start_day, end_day)`, plus the exact `end_ts` it was cut at."""

    start_day: int
    end_day: int
    end_ts: int

    @classmethod
    def of(cls, name: str, period: Period, as_of_ts: int) -> Window:
        """Window `name` of period P, ending at `as_of` (= min(now, end of P)).

        Windows are resolved to whole UTC days: exact at a close (as_of is midnight); a live window
        ending mid-day includes that whole day.
        """
        end_day = -(-as_of_ts // DAY_US)
        if name == "period":
            return cls(day_of(period.start_ts), end_day, as_of_ts)
        if name not in WINDOWS:
            raise ValueError(f"unknown window {name!r}")
        return cls(end_day - int(name[:-1]), end_day, as_of_ts)

    def contains(self, day: int) -> bool:
        return self.start_day <= day < self.end_day
