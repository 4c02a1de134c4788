"""The ledger events behind each line of a frozen statement.

A payout line's events are those ingested by its close that feed the party (or, for a `/team` measure,
its direct reports on the days they report to it) inside a window the line read; a clawback's are the
reversals of its order in the period; an adjustment's are the events ingested after the corrected period
closed, inside its windows.
Lookups (an order's parties, a customer's owners) use the ledger as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.store.ledger import LedgerStore
from services.store.reading import ledger_events
from shared.fold import Fold, Span
from shared.lineage import fed_parties
from shared.periods import DAY_US, Period, Window
from shared.settlement import Line, Settlement

__all__ = ["events_behind"]


@dataclass(frozen=True)
class _Criterion:
    """Events with seq in (after, upto], a day in one of `windows`, feeding one of `parties` or one of the `team`
    (direct reports, each with the spans of days it reports to the line's party) on such a day."""

    after: int
    upto: int
    windows: tuple[Window, ...]
    parties: frozenset[str]
    order_id: str | None = None
    team: tuple[tuple[str, tuple[Span, ...]], ...] = ()

    def admits(self, seq: int, event, fed: set[str]) -> bool:
        day = event.ts // DAY_US
        if not self.after < seq <= self.upto or not any(w.contains(day) for w in self.windows):
            return False
        if self.order_id is not None:
            return event.type == "sale.reversed" and event.data.order_id == self.order_id
        return bool(fed & self.parties) or any(
            report in fed and any((first is None or first <= day) and (last is None or day < last)
                                  for first, last in spans) for report, spans in self.team)


def _criterion(line: Line, party_id: str, fold: Fold, settled: dict[str, tuple[Settlement, int]],
               period: str) -> _Criterion:
    which = Period.parse(line.corrects or period)
    upto = settled[period][1]
    after = settled[line.corrects][1] if line.corrects else 0
    labels = line.measures
    if line.corrects:  # an adjustment reads what the corrected period's own line read
        own = settled[line.corrects][0].statements.get(party_id)
        labels = next((x.measures for x in own.lines if (x.plan, x.component) == (line.plan, line.component)),
                      {}) if own else {}
    read = [label for label in labels if "@" in label]  # "measure@window" or "measure@window/team"
    names = {label.split("@", 1)[1].removesuffix("/team") for label in read} or {"period"}
    parties = {party_id} if not read or any(not label.endswith("/team") for label in read) else set()
    team = tuple((report, tuple(spans)) for report, spans in sorted(fold.direct_reports(party_id).items())
                 ) if any(label.endswith("/team") for label in read) else ()
    windows = tuple(Window.of(name, which, which.end_ts) for name in sorted(names))
    order_id = line.measures.get("order_id") if line.kind == "clawback" else None
    return _Criterion(after, upto, windows, frozenset(parties), order_id, team)


async def events_behind(party_id: str, period: str, settled: dict[str, tuple[Settlement, int]], fold: Fold,
                        ledger: LedgerStore, currency: str) -> list[dict]:
    """Each line of the party's statement in `period` with the (source, id) of the events behind it.

    `settled`: every closed period -> (its settlement, the last ledger seq its close included).
    """
    statement = settled[period][0].statements[party_id]
    criteria = [_criterion(line, party_id, fold, settled, period) for line in statement.lines]
    found: list[list[dict]] = [[] for _ in criteria]
    async for seq, event in ledger_events(ledger, currency, up_to_seq=max((c.upto for c in criteria), default=0)):
        fed = fed_parties(event, fold)
        for index, criterion in enumerate(criteria):
            if criterion.admits(seq, event, fed):
                found[index].append({"source": event.source, "id": event.id})
    return [{"plan": line.plan, "component": line.component, "kind": line.kind, "corrects": line.corrects,
             "amount": str(line.amount), "events": events} for line, events in zip(statement.lines, found, strict=True)]
