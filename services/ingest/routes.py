"""`POST /v1/events`: validate every event, write the new ones to the ledger, answer once they are there.

The ledger is the durability point: a 202 means the events are committed to the database, whatever
happens to the broker next; the relay publishes them (`services.ledger.relay`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

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
from services.web import ApiError, SettingsDep
from shared.events import Event, EventError, parse_event

__all__ = ["Accepted", "accept", "router"]

router = APIRouter(prefix="/v1", tags=["events"])

_EVENT = {"type": "object", "required": ["specversion", "id", "source", "type", "time"]}
_BODY = {"requestBody": {"required": True, "content": {
    STRUCTURED: {"schema": _EVENT},
    BATCH: {"schema": {"type": "array", "items": _EVENT, "maxItems": MAX_BATCH}},
    "application/json": {"schema": {"oneOf": [_EVENT, {"type": "array", "items": _EVENT}]}},
}}}


class Accepted(BaseModel):
    """What a 202 reports: events newly accepted, and those already accepted before."""

    accepted: int
    duplicates: int


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


@router.post("/events", status_code=202, dependencies=[Depends(require("events:write"))], openapi_extra=_BODY)
async def post_events(request: Request, settings: SettingsDep, ledger: LedgerDep, relay: RelayDep) -> Accepted:
    """Accept one CloudEvent or a batch (≤ 10 000) in structured, batched or binary HTTP mode."""
    with REQUEST_SECONDS.time():
        try:
            check_content_length(request.headers)  # before reading a body that is too large
            raws = parse_request(request.headers, await request.body())
        except BindingError as error:
            raise ApiError(error.status, str(error)) from None
        return await accept(raws, settings, ledger, relay)
