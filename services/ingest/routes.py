"""`POST /v1/events`: validate every event, write the new ones to the ledger, answer once they are there.

The ledger is the durability point: a 202 means the events are committed to the database, whatever
happens to the broker next; the relay publishes them (`services.ledger.relay`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.auth import require
from services.broker.binding import encode
from services.ingest.deps import LedgerDep, RelayDep
from services.ingest.http_binding import (
    BATCH,
    MAX_BATCH,
    STRUCTURED,
    BindingError,
    check_content_length,
    parse_request,
)
from services.ingest.metrics import EVENTS, REQUEST_SECONDS
from services.ledger.relay import Relay
from services.ledger.rows import event_row
from services.settings import Settings
from services.store.ledger import LedgerStore
from services.web import ApiError, ErrorBody, SettingsDep, errors
from shared.events import DATA_MODELS, MAX_ID_LENGTH, Event, EventError, parse_event

__all__ = ["Accepted", "InvalidEvents", "accept", "router"]

router = APIRouter(prefix="/v1", tags=["events"])

_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
_EVENT = {"type": "object", "required": ["specversion", "id", "source", "type", "time"], "properties": {
    "specversion": {"const": "1.0"}, "id": _ID, "source": _ID, "type": {"enum": sorted(DATA_MODELS)},
    "time": {"type": "string", "format": "date-time",
             "description": "RFC 3339 with an offset, from 1970-01-01T00:00:00Z to 9999-12-31T00:00:00Z"},
    "data": {"type": "object", "description": "the fields of the event type (SPEC §2.2)"},
    "data_base64": {"type": "string", "description": "base64 of the JSON data, instead of `data`"}}}
_SALE = {"specversion": "1.0", "id": "crm-4711", "source": "crm", "type": "sale.closed", "time": "2026-03-02T10:00:00Z",
         "data": {"order_id": "o-4711", "customer_id": "cust-1", "amount": "1200.00", "currency": "USD",
                  "credits": [{"party_id": "ae-0", "share": "1"}]}}
_BODY = {"requestBody": {"required": True, "content": {
    STRUCTURED: {"schema": _EVENT, "example": _SALE},
    BATCH: {"schema": {"type": "array", "items": _EVENT, "maxItems": MAX_BATCH}},
    "application/json": {"schema": {"oneOf": [_EVENT, {"type": "array", "items": _EVENT}]}},
}}}


class Accepted(BaseModel):
    """What a 202 reports: events newly accepted, and those already accepted before."""

    accepted: int
    duplicates: int


class InvalidEvent(BaseModel):
    index: int = Field(description="its position in the request, from 0")
    id: str | None = Field(description="its `id`, when it has a string one")
    error: str


class InvalidEvents(ErrorBody):
    """A 422 `invalid_events`: the error, and why each invalid event is invalid (none was accepted)."""

    errors: list[InvalidEvent]


def _validate(raws: list[Any], settings: Settings) -> list[Event]:
    events, errors = [], []
    for index, raw in enumerate(raws):
        try:
            events.append(parse_event(raw, settings.currency))
        except EventError as error:
            event_id = raw.get("id") if isinstance(raw, dict) else None
            errors.append({"index": index, "id": event_id if isinstance(event_id, str) else None,
                           "error": str(error)})
    if errors:
        EVENTS.labels("rejected").inc(len(raws))
        raise ApiError(422, f"{len(errors)} of {len(raws)} events are invalid; none was accepted",
                       code="invalid_events", extra={"errors": errors})
    return events


async def accept(raws: list[Any], settings: Settings, ledger: LedgerStore, relay: Relay) -> Accepted:
    """Validate `raws` (all or none), append the events not in the ledger yet, and have them published."""
    unique: dict[tuple[str, str], Event] = {}
    for event in _validate(raws, settings):
        unique.setdefault(event.key, event)  # within a request the first of a key wins
    rows = [event_row(event, encode(event)[1].decode(), settings) for event in unique.values()]
    accepted = await ledger.append(rows)
    relay.nudge()
    EVENTS.labels("accepted").inc(accepted)
    EVENTS.labels("duplicate").inc(len(raws) - accepted)
    return Accepted(accepted=accepted, duplicates=len(raws) - accepted)


@router.post("/events", status_code=202, dependencies=[Depends(require("events:write"))], openapi_extra=_BODY,
             responses=errors(400, 401, 403, 413, 415, 503) | errors(422, model=InvalidEvents))
async def post_events(request: Request, settings: SettingsDep, ledger: LedgerDep, relay: RelayDep) -> Accepted:
    """Accept one CloudEvent or a batch (≤ 10 000) in structured, batched or binary HTTP mode."""
    with REQUEST_SECONDS.time():
        try:
            check_content_length(request.headers)  # before reading a body that is too large
            raws = parse_request(request.headers, await request.body())
        except BindingError as error:
            raise ApiError(error.status, str(error)) from None
        return await accept(raws, settings, ledger, relay)
