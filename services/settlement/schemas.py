"""Request and response shapes of the settlement API (SPEC §5.4, §6), built from the core's frozen statements
and the store's records."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.store.audit import AuditEntry
from services.store.settlements import SettlementRecord
from shared.money import ZERO
from shared.settlement import Line, Settlement, Statement

__all__ = ["AuditOut", "CloseOut", "Detail", "LineRow", "PartyRow", "PayoutsOut", "RejectIn", "SettlementOut",
           "SettlementSummary", "SettlementsOut", "StatementEventsOut", "StatementOut", "payout_rows"]


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


class _Frozen(BaseModel):
    """What a close and a read of a settlement both answer."""

    period: str
    status: str
    statements: list[StatementOut]
    totals: dict[str, str]


class CloseOut(_Frozen):
    @classmethod
    def of(cls, settlement: Settlement, status: str) -> CloseOut:
        return cls(period=settlement.period, status=status, statements=_statements(settlement),
                   totals=_totals(settlement))


class ApprovalOut(BaseModel):
    name: str = Field(description="the approving token's name")
    at: str


class SettlementOut(_Frozen):
    """`status`: `closed` → `approved` (`approvals_required` distinct names) → `exported`, or `rejected`."""

    closed_at: str
    plan_hashes: dict[str, str]
    export_id: str | None = None
    closed_by: str | None = Field(description="the closing token's name (null: closed before names were recorded)")
    approvals: list[ApprovalOut] = Field(description="approvals since the close or the last rejection")
    approvals_required: int
    rejection_reason: str | None = Field(description="why it was sent back, while it is `rejected`")
    rejected_by: str | None
    rejected_at: str | None

    @classmethod
    def of(cls, settlement: Settlement, record: SettlementRecord, approvals_required: int) -> SettlementOut:
        return cls(period=settlement.period, status=record.status.value, statements=_statements(settlement),
                   totals=_totals(settlement), closed_at=settlement.closed_at.isoformat(),
                   plan_hashes=settlement.plan_hashes, export_id=record.export_id, closed_by=record.closed_by,
                   approvals=[ApprovalOut(name=a.name, at=a.at.isoformat()) for a in record.approvals],
                   approvals_required=approvals_required, rejection_reason=record.rejection_reason,
                   rejected_by=record.rejected_by,
                   rejected_at=record.rejected_at.isoformat() if record.rejected_at else None)


class SettlementSummary(BaseModel):
    """A closed period at a glance: its status, its approvals so far and its totals per currency."""

    period: str
    status: str
    closed_at: str
    closed_by: str | None
    approvals: int = Field(description="approvals since the close or the last rejection")
    approvals_required: int
    export_id: str | None
    statements: int
    totals: dict[str, str]

    @classmethod
    def of(cls, settlement: Settlement, record: SettlementRecord, approvals_required: int) -> SettlementSummary:
        return cls(period=settlement.period, status=record.status.value, closed_at=settlement.closed_at.isoformat(),
                   closed_by=record.closed_by, approvals=len(record.approvals), approvals_required=approvals_required,
                   export_id=record.export_id, statements=len(settlement.statements), totals=_totals(settlement))


class SettlementsOut(BaseModel):
    """Every closed period, by period."""

    items: list[SettlementSummary]


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="why it is sent back",
                        examples=["ae-3's quota is wrong"])


Detail = Literal["party", "lines"]


class PartyRow(BaseModel):
    """A party's total in one currency; a negative one is paid as it is and flagged, to hold or recover."""

    party_id: str
    kind: str
    currency: str
    total: str
    negative: bool


class LineRow(BaseModel):
    """One statement line; `line_kind` is `payout`, `clawback` or `adjustment` (which `corrects` a period)."""

    party_id: str
    kind: str
    currency: str
    plan: str
    component: str
    line_kind: str
    corrects: str | None
    amount: str


def payout_rows(settlement: Settlement, currency: str, detail: Detail) -> list[PartyRow] | list[LineRow]:
    """The rows of a payroll pull: only what is in `currency`, per party (default) or per statement line."""
    statements = [statement for _, statement in sorted(settlement.statements.items())]
    if detail == "lines":
        return [LineRow(party_id=s.party_id, kind=s.kind, currency=line.currency, plan=line.plan,
                        component=line.component, line_kind=line.kind, corrects=line.corrects,
                        amount=str(line.amount))
                for s in statements for line in s.lines if line.currency == currency]
    rows = []
    for statement in statements:
        total = statement.totals.get(currency)
        if total is not None:
            rows.append(PartyRow(party_id=statement.party_id, kind=statement.kind, currency=currency,
                                 total=str(total), negative=total < ZERO))
    return rows


class PayoutsOut(BaseModel):
    """A payroll pull: `rows` are `PartyRow`s, or `LineRow`s with `detail=lines`, all in `currency`."""

    period: str
    status: str = Field(description="the settlement's status after this pull")
    export_id: str | None
    currency: str
    rows: list[PartyRow] | list[LineRow]


class AuditOut(BaseModel):
    """A page of the audit log, oldest first; `next_after` is the `after` of the next page (null: no more)."""

    items: list[AuditEntry]
    next_after: int | None
