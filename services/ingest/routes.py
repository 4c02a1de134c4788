"""`POST /v1/events`: validate every event, drop duplicates, publish the rest, answer once Kafka has them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.auth import require
from services.broker.batches import Message, send_batched
from services.broker.binding import encode, topic_for
from services.ingest.deps import IngestKeysDep, ProducerDep
from services.ingest.http_binding import BATCH, MAX_BATCH, STRUCTURED, BindingError, parse_request
from services.ingest.metrics import EVENTS, REQUEST_SECONDS
from services.settings import Settings
from services.web import ApiError, SettingsDep
from shared.events import Event, EventError, parse_event

__all__ = ["Accepted", "router"]

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


async def _publish(producer: AIOKafkaProducer, events: list[Event], settings: Settings) -> None:
    by_topic: defaultdict[str, list[Message]] = defaultdict(list)
    for event in events:
        by_topic[topic_for(event.type, settings)].append(encode(event))
    sent = [future for topic, messages in by_topic.items()  # one request per partition, one wait for all acks
            for future in await send_batched(producer, topic, messages)]
    outcomes = await asyncio.gather(*sent, return_exceptions=True)  # every ack, even after a failure
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        raise failures[0]


@router.post("/events", status_code=202, dependencies=[Depends(require("events:write"))], openapi_extra=_BODY)
async def post_events(request: Request, settings: SettingsDep, keys: IngestKeysDep,
                      producer: ProducerDep) -> Accepted:
    """Accept one CloudEvent or a batch (≤ 10 000) in structured, batched or binary HTTP mode."""
    with REQUEST_SECONDS.time():
        try:
            raws = parse_request(request.headers, await request.body())
        except BindingError as error:
            raise ApiError(error.status, str(error)) from None
        unique: dict[tuple[str, str], Event] = {}
        for event in _validate(raws, settings):
            unique.setdefault(event.key, event)  # within a request the first of a key wins
        claimed = await keys.claim(list(unique))
        fresh = [event for key, event in unique.items() if key in claimed]
        try:
            await _publish(producer, fresh, settings)
        except KafkaError as error:
            await keys.release([event.key for event in fresh])
            raise ApiError(503, f"the event log is unavailable, nothing was accepted: {error}") from None
        EVENTS.labels("accepted").inc(len(fresh))
        EVENTS.labels("duplicate").inc(len(raws) - len(fresh))
        return Accepted(accepted=len(fresh), duplicates=len(raws) - len(fresh))
