"""Per-party roll-ups: the parts of all of a party's relationships merged into one, kept as relationships change.

`Fold.totals(party, window)` adds up every relationship of the party, part by part, on every read. A reader
that asks for a party's totals far more often than its relationships change (the query service) keeps each
party's relationships merged instead: a party is merged when its totals are first read, then `replace`
subtracts a relationship's old parts and adds its new ones (Decimal sums are exact, so the order of
additions does not matter), and `totals` reads the one merged party: its day sums through running totals
(a window is the difference of two), its other parts by bisection to the window's days. Neither scans
the party's whole history, and a party that is never read costs nothing.

A merged party is three timelines of number tuples, each added up key by key and a key dropped when its
numbers are all zero (it then adds nothing to any window):

* day -> the day's sums in `SLOTS` order, every slot present, with running totals over the days in order;
* (first, last, reversal) day of a reversal and of its order -> (amount,): the first two decide the windows it
  counts in (both inside), the reversal's own day the manager it counts for in a team (SPEC §2.3);
* (sale day, referral day, referral id) -> (relationships with such a part, revenue): a referral is
  converted in a window when one such part is in it, whatever its revenue, so the count is kept apart.

The arithmetic runs in an exact decimal context: running totals over a whole history are larger than any
window's sum, and must not round where the fold's sums of that window would not.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, localcontext
from operator import add, sub
from typing import Any

from shared.fold import REVERSED, Span, spans_within
from shared.measures import SLOTS, Totals
from shared.periods import Window

__all__ = ["RollUps"]

_WIDTH = len(SLOTS)
_ZEROS = tuple((0,) * n for n in range(_WIDTH + 1))
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class _Timeline:
    """Number tuples by key, summed key by key; the keys kept sorted so a window's are found by bisection."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.values: dict[Any, tuple] = {}
        self.keys: list = []

    def add(self, key: Any, numbers: tuple, combine: Any) -> None:
        """Combine (`add` or `sub`) `numbers` into the key's; a key whose numbers all become zero is dropped."""
        old = self.values.get(key)
        new = tuple(map(combine, _ZEROS[len(numbers)] if old is None else old, numbers))
        if any(new):
            if old is None:
                insort(self.keys, key)
            self.values[key] = new
        elif old is not None:
            del self.values[key]
            del self.keys[bisect_left(self.keys, key)]

    def between(self, low: Any, high: Any) -> list:
        """The keys `low <= key < high`, in order."""
        keys = self.keys
        return keys[bisect_left(keys, low):bisect_left(keys, high)]


class _DaySums(_Timeline):
    """Day sums and their running totals, which are brought up to date from the first day changed, when read."""

    __slots__ = ("_running",)

    def __init__(self) -> None:
        super().__init__()
        self._running: list[tuple] = [_ZEROS[_WIDTH]]  # [i]: the sums of the first i days

    def add(self, key: Any, numbers: tuple, combine: Any) -> None:
        super().add(key, numbers, combine)
        del self._running[bisect_left(self.keys, key) + 1:]

    def total(self, low: int, high: int) -> tuple:
        """The sums of the days `low <= day < high` (none when `high <= low`: a period that has not begun)."""
        if high <= low:
            return _ZEROS[_WIDTH]
        keys, running, values = self.keys, self._running, self.values
        for day in keys[len(running) - 1:]:
            running.append(tuple(map(add, running[-1], values[day])))
        return tuple(map(sub, running[bisect_left(keys, high)], running[bisect_left(keys, low)]))


class _Party:
    __slots__ = ("days", "referred", "reversed")

    def __init__(self) -> None:
        self.days, self.reversed, self.referred = _DaySums(), _Timeline(), _Timeline()

    def merge(self, key: Any, value: Any, combine: Any) -> None:
        """Combine one relationship part (a key and value of `shared.fold`'s relationship parts) in."""
        if key.__class__ is int:
            self.days.add(key, (*value, *_ZEROS[_WIDTH - len(value)]), combine)
        elif key[0] == REVERSED:
            _, day, order_day = key
            self.reversed.add((min(day, order_day), max(day, order_day), day), (value,), combine)
        else:
            _, referral_id, sale_day = key
            referral_day, revenue = value
            self.referred.add((sale_day, referral_day, referral_id), (1, revenue), combine)

    def is_empty(self) -> bool:
        return not (self.days.values or self.reversed.values or self.referred.values)


class RollUps:
    """The parties of `relationships` (a fold's: party -> counterparty -> parts) merged, each once it is read.

    `totals` reads a party like `Fold.totals` over those relationships; whoever changes a relationship calls
    `replace` with its parts before and after."""

    def __init__(self, relationships: dict[str, dict[str, dict]]) -> None:
        self._relationships = relationships
        self._parties: dict[str, _Party] = {}

    def __len__(self) -> int:
        """How many parties are merged: those read since they last had a part."""
        return len(self._parties)

    def replace(self, party_id: str, old: dict | None, new: dict | None) -> None:
        """One relationship of the party went from parts `old` to parts `new` (None: no such relationship).

        Only the parts that differ are merged: a relationship is replaced whole, but most changes touch one day.
        A party not merged yet is left alone: it is merged from its relationships as they are when read."""
        party = self._parties.get(party_id)
        if party is None:
            return
        old, new = old or {}, new or {}
        with localcontext(_EXACT):
            for key, value in old.items():
                if new.get(key) != value:
                    party.merge(key, value, sub)
            for key, value in new.items():
                if old.get(key) != value:
                    party.merge(key, value, add)
        if party.is_empty():
            del self._parties[party_id]

    def totals(self, party_id: str, window: Window, spans: list[Span] | None = None) -> Totals:
        """The party's summed parts inside `window` (on the days of `spans` only, when given): what
        `Fold.totals(party_id, window, spans=spans)` gives on the same fold."""
        totals = Totals()
        party = self._merged(party_id)
        if party is None:
            return totals
        start, end = window.start_day, window.end_day
        reversed_, referred = party.reversed, party.referred
        for low, high in spans_within(window, spans):
            with localcontext(_EXACT):
                totals.sums = list(map(add, totals.sums, party.days.total(low, high)))
            for key in reversed_.between((start,), (end,)):
                if key[1] < end and low <= key[2] < high:
                    totals.reversed += reversed_.values[key][0]
            for key in referred.between((low,), (high,)):
                if key[1] < end:
                    totals.referral_revenue += referred.values[key][1]
                    totals.converted.add(key[2])
        return totals

    def _merged(self, party_id: str) -> _Party | None:
        """The party merged, merging it now if it was not; None when it has no part."""
        party = self._parties.get(party_id)
        if party is None:
            party = _Party()
            with localcontext(_EXACT):
                for parts in self._relationships.get(party_id, {}).values():
                    for key, value in parts.items():
                        party.merge(key, value, add)
            if party.is_empty():
                return None
            self._parties[party_id] = party
        return party
