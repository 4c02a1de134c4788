"""Replay a steps file (events and closes, in arrival order) through the fold and the settlement logic."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from shared.events import EventError, parse_event
from shared.fold import Conflict, Fold
from shared.money import render
from shared.payouts import MeasureView
from shared.periods import Period
from shared.plans import PlanSet
from shared.settlement import Book, CloseRefused, Settlement, Statement

__all__ = ["Replay", "statement_json"]


def statement_json(statement: Statement) -> dict[str, Any]:
    """A statement in the shape of the scenarios' `expected.json`."""
    lines = []
    for line in statement.lines:
        row = {"plan": line.plan, "component": line.component, "currency": line.currency, "kind": line.kind,
               "amount": str(line.amount)}
        if line.corrects:
            row["corrects"] = line.corrects
        lines.append(row)
    return {"lines": lines, "total": {cur: str(amount) for cur, amount in statement.totals.items()}}


def _settlement_json(settlement: Settlement) -> dict[str, Any]:
    return {party: statement_json(statement) for party, statement in sorted(settlement.statements.items())}


class Replay:
    """One in-process run of the system's logic: dedup, validate, fold, close — no I/O, no clock."""

    def __init__(self, plans: PlanSet, currency: str = "USD", provider_id: str = "provider") -> None:
        self.plans, self.currency = plans, currency
        self.fold = Fold(provider_id)
        self.book = Book()
        self.seen: set[tuple[str, str]] = set()
        self.rejected: list[dict[str, Any]] = []
        self.refused_closes: list[dict[str, Any]] = []
        self.duplicates = 0
        self.last_closed: Period | None = None

    def event(self, index: int, raw: object) -> None:
        try:
            event = parse_event(raw, self.currency)
            if event.key in self.seen:
                self.duplicates += 1
                return
            self.fold.apply(event)
        except (EventError, Conflict) as error:
            self.rejected.append({"step": index, "id": raw.get("id") if isinstance(raw, dict) else None,
                                  "error": str(error)})
            return
        self.seen.add(event.key)

    def close(self, index: int, period_text: str, closed_at: datetime) -> None:
        try:
            period = Period.parse(period_text)
            self.book.close(self.fold, self.plans, period, closed_at)
        except (ValueError, CloseRefused) as error:
            self.refused_closes.append({"step": index, "period": period_text, "error": str(error)})
            return
        self.last_closed = period

    def run(self, steps: Iterable[object], clock: Callable[[], datetime],
            progress: Callable[[], None] | None = None) -> Replay:
        for index, step in enumerate(steps):
            if isinstance(step, dict) and "action" in step:
                if step["action"] == "close":
                    self.close(index, str(step.get("period")), clock())
                else:
                    self.refused_closes.append({"step": index, "error": f"unknown action {step['action']!r}"})
            else:
                self.event(index, step)
            if progress:
                progress()
        return self

    def measures(self, period: Period, as_of_ts: int) -> dict[str, Any]:
        view = MeasureView(self.fold, period, min(as_of_ts, period.end_ts))
        parties = {party: {name: render(value) for name, value in sorted(view.measures(party)[0].items())}
                   for party in sorted(self.fold.parties)}
        return {"period": str(period), "window": "period", "parties": parties}

    def result(self, now_ts: int) -> dict[str, Any]:
        """The run in the shape of `expected.json`, plus the reasons for every rejection."""
        result: dict[str, Any] = {
            "closes": {period: _settlement_json(s) for period, s in self.book.closed.items()},
            "rejected_steps": [item["step"] for item in self.rejected],
            "duplicates": self.duplicates,
            "measures": self.measures(self.last_closed, now_ts) if self.last_closed else {},
            "rejections": self.rejected,
        }
        if self.refused_closes:
            result["refused_closes"] = self.refused_closes
        return result
