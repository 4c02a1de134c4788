"""Settlement routes (SPEC §6): close, read, approve and export frozen settlements."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Response

from services.auth import require
from services.settlement.deps import ClockDep, CloserDep, SettlementsDep
from services.settlement.metrics import CLOSES, EXPORTS
from services.settlement.schemas import CloseOut, SettlementOut, StatementEventsOut, StatementOut
from services.store.settlements import SettlementRecord, SettlementStateError, SettlementStatus
from services.web import ApiError, PartyPath, PeriodPath, errors
from shared.periods import Period
from shared.settlement import CloseRefused, Settlement

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["settlement"], responses=errors(400, 401, 403, 422, 503))
_CSV: dict[int | str, dict[str, Any]] = {  # the type of FastAPI's `responses=`, as `errors` gives it
    200: {"description": "`party_id,kind,currency,total` rows, with a header row.",
          "content": {"text/csv": {"schema": {"type": "string"}}},
          "headers": {"X-Settlement-Status": {"description": "the settlement's status after this pull",
                                              "required": True, "schema": {"type": "string"}},
                      "X-Export-Id": {"description": "the export, once there is one",
                                      "schema": {"type": "string"}}}}}


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
async def close_period(period: PeriodPath, closer: CloserDep, store: SettlementsDep) -> CloseOut:
    """Close a period: wait for the ledger, compute and freeze every statement (idempotent)."""
    try:
        settlement = await closer.close(_period(period))
    except CloseRefused as error:
        CLOSES.labels("refused").inc()
        raise ApiError(409, str(error), code="out_of_order") from None
    except TimeoutError as error:
        CLOSES.labels("timeout").inc()
        raise ApiError(503, f"the ledger did not catch up with the event topics in time: {error}") from None
    CLOSES.labels("closed").inc()
    record = await store.get(period)
    return CloseOut.of(settlement, record.status.value if record else SettlementStatus.CLOSED.value)


@router.get("/settlements/{period}", response_model=SettlementOut, responses=errors(404),
            dependencies=[Depends(require("settlements:read"))])
async def get_settlement(period: PeriodPath, closer: CloserDep, store: SettlementsDep) -> SettlementOut:
    """A closed period's frozen statements, status and plan hashes."""
    settlement, record = await _frozen(closer, store, period)
    return SettlementOut.of(settlement, record.status.value, record.export_id)


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
async def approve(period: PeriodPath, closer: CloserDep, store: SettlementsDep, clock: ClockDep) -> SettlementOut:
    """Approve a closed period for payroll."""
    settlement, _ = await _frozen(closer, store, period)
    record = await store.approve(period, clock())
    return SettlementOut.of(settlement, record.status.value, record.export_id)


@router.get("/settlements/{period}/payouts.csv", dependencies=[Depends(require("settlements:read"))],
            response_class=Response, responses=_CSV | errors(404, 409))
async def payouts_csv(period: PeriodPath, closer: CloserDep, store: SettlementsDep, clock: ClockDep) -> Response:
    """`party_id,kind,currency,total` per party and currency; the first pull after approval exports it."""
    settlement, record = await _frozen(closer, store, period)
    if record.status is SettlementStatus.APPROVED:
        try:
            record = await store.mark_exported(period, f"exp-{uuid.uuid4().hex[:12]}", clock())
            EXPORTS.inc()
        except SettlementStateError as error:
            raise ApiError(409, str(error)) from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["party_id", "kind", "currency", "total"])
    for party_id, statement in sorted(settlement.statements.items()):
        for currency, total in statement.totals.items():
            writer.writerow([party_id, statement.kind, currency, str(total)])
    headers = {"X-Settlement-Status": record.status.value}
    if record.export_id:
        headers["X-Export-Id"] = record.export_id
    return Response(out.getvalue(), media_type="text/csv", headers=headers)
