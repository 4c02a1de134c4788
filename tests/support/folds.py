"""Folding hand-made histories and reading their measures, the way the services do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from shared.events import Event
from shared.fold import Fold, home_key, partition_of
from shared.measures import measure_values
from shared.payouts import MeasureView
from shared.periods import Period, Window
from shared.snapshot import get_record, put_record, record_keys

__all__ = ["Partitions", "fold_of", "measures", "team_measures"]

PARTITIONS = 1  # how many partitions `fold_of` folds into (tests set it to run the same checks partitioned)


class Partitions:
    """The fold kept in `count` partition folds that exchange messages, as the processor's workers do.

    `apply` folds an event at its home partition; what the folds send stays in flight until `deliver`
    (by default, every message, in the order `pick` chooses: the first in flight). Reading any other
    attribute reads the fold of every partition's records merged, once everything is delivered.
    """

    def __init__(self, count: int, pick: Callable[[int], int] = lambda in_flight: 0) -> None:
        self.folds = [Fold(partition=p, partitions=count) for p in range(count)]
        self.in_flight: list[tuple] = []
        self._pick = pick

    def apply(self, event: Event, deliver: bool = True) -> None:
        home = self.folds[partition_of(home_key(event), len(self.folds))]
        home.apply(event)
        self._collect(home)
        if deliver:
            self.deliver()

    def deliver(self, count: int | None = None) -> None:
        """Deliver `count` messages in flight (all, and all they send, when None)."""
        while self.in_flight and (count is None or count > 0):
            message = self.in_flight.pop(self._pick(len(self.in_flight)))
            receiver = self.folds[partition_of(message[1], len(self.folds))]
            receiver.receive(message)
            self._collect(receiver)
            count = None if count is None else count - 1

    def merged(self) -> Fold:
        """One fold of every partition's records (each record is in its key's partition only)."""
        assert not self.in_flight, "messages are still in flight"
        whole = Fold()
        for fold in self.folds:
            for key in record_keys(fold):
                assert fold.owns(key[1]), key
                put_record(whole, key, get_record(fold, key))
        return whole

    def _collect(self, fold: Fold) -> None:
        self.in_flight += fold.outbox
        fold.outbox.clear()

    def __getattr__(self, name: str) -> Any:  # read like the whole fold, which the measures helpers take
        return getattr(self.merged(), name)


def fold_of(events: Iterable[Event], fold: Fold | Partitions | None = None) -> Fold:
    """A fold of `events` (into `fold`, else a new one), applied in the given (arrival) order."""
    if fold is None:
        fold = Fold() if PARTITIONS == 1 else Partitions(PARTITIONS)
    for event in events:
        fold.apply(event)
    return fold


def measures(fold: Fold, party: str, period: str = "2026-03", window: str = "period",
             counterparty: str | None = None, as_of_ts: int | None = None) -> dict[str, Decimal | None]:
    """A party's (or one relationship's) measures for `window` of `period`, as of its end by default."""
    p = Period.parse(period)
    span = Window.of(window, p, p.end_ts if as_of_ts is None else as_of_ts)
    return measure_values(fold.totals(party, span, counterparty))


def team_measures(fold: Fold, manager: str, period: str = "2026-03", window: str = "period"
                  ) -> dict[str, Decimal | None]:
    """A manager's `scope: team` measures: its direct reports taken together."""
    p = Period.parse(period)
    return MeasureView(fold, p, p.end_ts).measures(manager, window, scope="team")[0]
