"""Settlement routes (SPEC §5.4, §6): close, read, approve, reject and export frozen settlements; the audit log."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from services.auth import ActorDep, require
from services.settlement.closer import PeriodNotEnded
from services.settlement.deps import AuditDep, ClockDep, CloserDep, SettlementsDep
from services.settlement.metrics import EXPORTS
from services.settlement.schemas import (
    AuditOut,
    CloseOut,
    Detail,
    LineRow,
    PartyRow,
    PayoutsOut,
    RejectIn,
    SettlementOut,
    SettlementsOut,
    SettlementSummary,
    StatementEventsOut,
    StatementOut,
    payout_rows,
)
from services.store.settlements import SettlementRecord, SettlementStateError, SettlementStatus
from services.web import ApiError, PartyPath, PeriodPath, SettingsDep, errors
from shared.periods import PERIOD_OUT_OF_RANGE, PERIOD_PATTERN, Period
from shared.settlement import CloseRefused, Settlement, settlement_from_data

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["settlement"], responses=errors(400, 401, 403, 422, 503))
_PULL_HEADERS = {"X-Settlement-Status": {"description": "the settlement's status after this pull",
                                         "required": True, "schema": {"type": "string"}},
                 "X-Export-Id": {"description": "the export, once there is one", "schema": {"type": "string"}}}
_CSV: dict[int | str, dict[str, Any]] = {  # the type of FastAPI's `responses=`, as `errors` gives it
    200: {"description": f"`{','.join(PartyRow.model_fields)}` rows (`detail=lines`: "
                         f"`{','.join(LineRow.model_fields)}`), with a header row.",
          "content": {"text/csv": {"schema": {"type": "string"}}}, "headers": _PULL_HEADERS}}
_JSON: dict[int | str, dict[str, Any]] = {200: {"description": "The rows of the pull.", "headers": _PULL_HEADERS}}
CurrencyQuery = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", examples=["USD", "PTS"],
                                            description="default: the settlement currency; `PTS`: loyalty points")]
DetailQuery = Annotated[Detail, Query(description="`party`: one row per party; `lines`: per statement line")]
AuditPeriodQuery = Annotated[str | None, Query(description="only the entries about this period", examples=["2026-03"],
                                               pattern=PERIOD_PATTERN,
                                               json_schema_extra={"not": {"type": "string",
                                                                          "pattern": PERIOD_OUT_OF_RANGE}})]
MAX_ID = 2**63 - 1  # the database's BIGINT


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as error:
        raise ApiError(400, str(error)) from None


async def _frozen(closer: CloserDep, store: SettlementsDep, period: str) -> tuple[Settlement, SettlementRecord]:
    _period(period)
    record = await store.get(period)
    settlement = await closer.frozen(period)
    if record is None or settlement is None:
        raise ApiError(404, f"period {period} is not closed")
    return settlement, record


@router.post("/periods/{period}/close", response_model=CloseOut, responses=errors(409),
             dependencies=[Depends(require("periods:close"))])
async def close_period(period: PeriodPath, closer: CloserDep, store: SettlementsDep, actor: ActorDep) -> CloseOut:
    """Close a period once it has ended: wait for the ledger, compute and freeze every statement (idempotent)."""
    try:
        settlement = await closer.close(_period(period), actor)
    except PeriodNotEnded as error:
        raise ApiError(409, str(error), code="period_not_ended") from None
    except CloseRefused as error:
        raise ApiError(409, str(error), code="out_of_order") from None
    except TimeoutError as error:
        raise ApiError(503, f"the ledger did not catch up with the event topics in time: {error}") from None
    record = await store.get(period)
    return CloseOut.of(settlement, record.status.value if record else SettlementStatus.CLOSED.value)


@router.get("/settlements", response_model=SettlementsOut, dependencies=[Depends(require("settlements:read"))])
async def list_settlements(store: SettlementsDep, settings: SettingsDep) -> SettlementsOut:
    """Every closed period, by period: its status, approvals so far and totals per currency."""
    return SettlementsOut(items=[SettlementSummary.of(settlement_from_data(json.loads(record.body)), record,
                                                      settings.approvers) for record in await store.all()])


@router.get("/settlements/{period}", response_model=SettlementOut, responses=errors(404),
            dependencies=[Depends(require("settlements:read"))])
async def get_settlement(period: PeriodPath, closer: CloserDep, store: SettlementsDep,
                         settings: SettingsDep) -> SettlementOut:
    """A closed period's frozen statements, plan hashes, status, approvals and rejection."""
    settlement, record = await _frozen(closer, store, period)
    return SettlementOut.of(settlement, record, settings.approvers)


@router.get("/settlements/{period}/statements/{party_id}", response_model=StatementOut, responses=errors(404),
            dependencies=[Depends(require("settlements:read"))])
async def get_statement(period: PeriodPath, party_id: PartyPath, closer: CloserDep,
                        store: SettlementsDep) -> StatementOut:
    """One party's frozen statement."""
    settlement, _ = await _frozen(closer, store, period)
    statement = settlement.statements.get(party_id)
    if statement is None:
        raise ApiError(404, f"no statement for {party_id} in {period}")
    return StatementOut.of(statement)


@router.get("/settlements/{period}/statements/{party_id}/events", responses=errors(404),
            dependencies=[Depends(require("settlements:read"))])
async def get_statement_events(period: PeriodPath, party_id: PartyPath, closer: CloserDep) -> StatementEventsOut:
    """The ids of the ledger events behind each line of one party's frozen statement."""
    _period(period)
    lines = await closer.events_behind(period, party_id)
    if lines is None:
        raise ApiError(404, f"no statement for {party_id} in {period}")
    return StatementEventsOut.model_validate({"period": period, "party_id": party_id, "lines": lines})


@router.post("/settlements/{period}/approve", response_model=SettlementOut, responses=errors(404),
             dependencies=[Depends(require("settlements:approve"))])
async def approve(period: PeriodPath, closer: CloserDep, store: SettlementsDep, clock: ClockDep, actor: ActorDep,
                  settings: SettingsDep) -> SettlementOut:
    """Approve a closed or rejected period as the token's name: `approved` once `CONVERGENCE_APPROVERS` distinct
    names approved; from 2, the name that closed it may not (403 `separation_of_duties`)."""
    settlement, record = await _frozen(closer, store, period)
    if settings.approvers >= 2 and actor == record.closed_by:
        raise ApiError(403, f"{actor} closed {period}: another name must approve it", code="separation_of_duties")
    record = await store.approve(period, clock(), by=actor, required=settings.approvers)
    return SettlementOut.of(settlement, record, settings.approvers)


@router.post("/settlements/{period}/reject", response_model=SettlementOut, responses=errors(404, 409),
             dependencies=[Depends(require("settlements:approve"))])
async def reject(period: PeriodPath, body: RejectIn, closer: CloserDep, store: SettlementsDep, clock: ClockDep,
                 actor: ActorDep, settings: SettingsDep) -> SettlementOut:
    """Send a closed or approved period back with a reason: `rejected`, approvals cleared, statements unchanged
    (corrections come as adjustments at the next close); it can be approved again. Exported: 409."""
    settlement, _ = await _frozen(closer, store, period)
    try:
        record = await store.reject(period, clock(), by=actor, reason=body.reason)
    except SettlementStateError as error:
        raise ApiError(409, str(error)) from None
    return SettlementOut.of(settlement, record, settings.approvers)


async def _pull(period: str, closer: CloserDep, store: SettlementsDep, clock: ClockDep, actor: str, currency: str,
                detail: Detail) -> tuple[SettlementRecord, list[PartyRow] | list[LineRow]]:
    """The settlement's record and the rows of a payroll pull; the first pull after approval exports it."""
    settlement, record = await _frozen(closer, store, period)
    if record.status is SettlementStatus.APPROVED:
        try:
            record = await store.mark_exported(period, f"exp-{uuid.uuid4().hex[:12]}", clock(), by=actor)
        except SettlementStateError as error:  # rejected meanwhile
            raise ApiError(409, str(error)) from None
        EXPORTS.inc()
    return record, payout_rows(settlement, currency, detail)


def _pull_headers(record: SettlementRecord) -> dict[str, str]:
    headers = {"X-Settlement-Status": record.status.value}
    if record.export_id:
        headers["X-Export-Id"] = record.export_id
    return headers


@router.get("/settlements/{period}/payouts.csv", dependencies=[Depends(require("settlements:read"))],
            response_class=Response, responses=_CSV | errors(404, 409))
async def payouts_csv(period: PeriodPath, closer: CloserDep, store: SettlementsDep, clock: ClockDep,
                      actor: ActorDep, settings: SettingsDep, currency: CurrencyQuery = None,
                      detail: DetailQuery = "party") -> Response:
    """Payroll rows in one currency, per party or per line (`negative`: `true`/`false`); the first pull after
    approval exports the period."""
    record, rows = await _pull(period, closer, store, clock, actor, currency or settings.currency, detail)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((LineRow if detail == "lines" else PartyRow).model_fields)
    for row in rows:
        writer.writerow(_cell(value) for value in row.model_dump().values())
    return Response(out.getvalue(), media_type="text/csv", headers=_pull_headers(record))


def _cell(value: object) -> object:
    """A CSV cell: booleans as `true`/`false`, nothing as an empty cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


@router.get("/settlements/{period}/payouts.json", response_model=PayoutsOut, responses=_JSON | errors(404, 409),
            dependencies=[Depends(require("settlements:read"))])
async def payouts_json(period: PeriodPath, response: Response, closer: CloserDep, store: SettlementsDep,
                       clock: ClockDep, actor: ActorDep, settings: SettingsDep, currency: CurrencyQuery = None,
                       detail: DetailQuery = "party") -> PayoutsOut:
    """The payroll pull as JSON: the same rows as `payouts.csv`, with the status and the export id."""
    currency = currency or settings.currency
    record, rows = await _pull(period, closer, store, clock, actor, currency, detail)
    response.headers.update(_pull_headers(record))
    return PayoutsOut(period=period, status=record.status.value, export_id=record.export_id, currency=currency,
                      rows=rows)


@router.get("/audit", response_model=AuditOut, dependencies=[Depends(require("audit:read"))])
async def list_audit(audit: AuditDep, period: AuditPeriodQuery = None,
                     after: Annotated[int, Query(ge=0, le=MAX_ID, description="the id after which to start")] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditOut:
    """The audit log, oldest first: every close, approval, rejection, export, plan reload and token creation
    (time, token name, action, period, content hash). Nothing can change or delete an entry."""
    if period is not None:
        _period(period)
    items = await audit.entries(period=period, after=after, limit=limit)
    return AuditOut(items=items, next_after=items[-1].id if len(items) == limit else None)
