"""The CloudEvents Kafka protocol binding: structured-mode encoding, structured and binary decoding."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from typing import Any

from services.broker.topics import inbound_topic
from services.settings import Settings
from shared.events import Event, family_of, load_json
from shared.fold import home_key

__all__ = ["CONTENT_TYPE", "binary_event", "decode", "encode", "is_json", "loads", "topic_for"]

CONTENT_TYPE = "application/cloudevents+json"
Headers = list[tuple[str, bytes | None]]

loads = load_json  # the event contract's exact JSON: non-integer numbers as `Decimal`, ValueError when invalid


def is_json(content_type: str | None) -> bool:
    """Whether a content type (absent means JSON) carries JSON."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def binary_event(attributes: Mapping[str, str], data: bytes | None, content_type: str | None) -> dict:
    """A binary-mode event (attributes from headers, `data` the JSON payload) as a structured dict."""
    event: dict[str, Any] = dict(attributes)
    if content_type is not None:
        event["datacontenttype"] = content_type
    if data:
        if not is_json(content_type):
            raise ValueError(f"data of content type {content_type!r} is not supported, only JSON")
        event["data"] = loads(data)
    return event


def topic_for(event_type: str, settings: Settings) -> str:
    """The inbound topic of an event type, e.g. `convergence.events.sales` for `sale.closed`."""
    return settings.topic(inbound_topic(family_of(event_type)))


def encode(event: Event) -> tuple[bytes, bytes, Headers]:
    """The Kafka message (key, value, headers) of an event in structured mode."""
    value = json.dumps(event.to_json_dict(), separators=(",", ":")).encode()
    return home_key(event).encode(), value, [("content-type", CONTENT_TYPE.encode())]


def _header_fields(headers: Headers) -> dict[str, str]:
    """Header values as text by lower-case name; ValueError for anything but (name, UTF-8 bytes) pairs."""
    fields = {}
    for header in headers:
        name, raw = header if isinstance(header, tuple | list) and len(header) == 2 else (None, None)
        if not isinstance(name, str) or not isinstance(raw, bytes | None):
            raise ValueError(f"header {reprlib.repr(header)} is not a (name, bytes) pair")
        try:
            fields[name.lower()] = (raw or b"").decode()
        except UnicodeDecodeError:
            raise ValueError(f"header {reprlib.repr(name)} is not UTF-8") from None
    return fields


def decode(value: bytes | None, headers: Headers) -> dict:
    """The event dict of a Kafka message in binary (`ce_*` headers) or structured mode; raises only ValueError."""
    fields = _header_fields(headers)
    if "ce_specversion" in fields:
        attributes = {name[3:]: text for name, text in fields.items() if name.startswith("ce_")}
        return binary_event(attributes, value, fields.get("content-type"))
    if value is None:
        raise ValueError("message has no value and no ce_specversion header")
    event = loads(value)
    if not isinstance(event, dict):
        raise ValueError("structured-mode value must be a JSON object")
    return event
