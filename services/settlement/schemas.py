"""Response shapes of the settlement API (SPEC §6), built from the core's frozen statements."""

from __future__ import annotations

from pydantic import BaseModel

from shared.settlement import Line, Settlement, Statement

__all__ = ["CloseOut", "SettlementOut", "StatementEventsOut", "StatementOut"]


class LineOut(BaseModel):
    plan: str
    component: str
    currency: str
    amount: str
    kind: str
    corrects: str | None = None
    measures: dict
    events: int

    @classmethod
    def of(cls, line: Line) -> LineOut:
        return cls(plan=line.plan, component=line.component, currency=line.currency, amount=str(line.amount),
                   kind=line.kind, corrects=line.corrects, measures=line.measures, events=line.events)


class StatementOut(BaseModel):
    """`currency`/`total` are those of the statement's first currency; `totals` has every currency."""

    party_id: str
    kind: str
    currency: str
    total: str
    totals: dict[str, str]
    lines: list[LineOut]

    @classmethod
    def of(cls, statement: Statement) -> StatementOut:
        totals = {currency: str(amount) for currency, amount in statement.totals.items()}
        currency = next(iter(totals), "")
        return cls(party_id=statement.party_id, kind=statement.kind, currency=currency,
                   total=totals.get(currency, "0"), totals=totals, lines=[LineOut.of(x) for x in statement.lines])


class EventRef(BaseModel):
    source: str
    id: str


class LineEvents(BaseModel):
    """A statement line and the ledger events behind it."""

    plan: str
    component: str
    kind: str
    corrects: str | None
    amount: str
    events: list[EventRef]


class StatementEventsOut(BaseModel):
    """The events behind each line of one party's frozen statement."""

    period: str
    party_id: str
    lines: list[LineEvents]


def _statements(settlement: Settlement) -> list[StatementOut]:
    return [StatementOut.of(s) for _, s in sorted(settlement.statements.items())]


def _totals(settlement: Settlement) -> dict[str, str]:
    return {currency: str(amount) for currency, amount in sorted(settlement.totals.items())}


class CloseOut(BaseModel):
    period: str
    status: str
    statements: list[StatementOut]
    totals: dict[str, str]

    @classmethod
    def of(cls, settlement: Settlement, status: str) -> CloseOut:
        return cls(period=settlement.period, status=status, statements=_statements(settlement),
                   totals=_totals(settlement))


class SettlementOut(CloseOut):
    closed_at: str
    plan_hashes: dict[str, str]
    export_id: str | None = None

    @classmethod
    def of(cls, settlement: Settlement, status: str, export_id: str | None = None) -> SettlementOut:
        return cls(period=settlement.period, status=status, statements=_statements(settlement),
                   totals=_totals(settlement), closed_at=settlement.closed_at.isoformat(),
                   plan_hashes=settlement.plan_hashes, export_id=export_id)
