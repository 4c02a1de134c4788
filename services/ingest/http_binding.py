"""The CloudEvents HTTP protocol binding: structured, batched and binary requests as raw event dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from services.broker.binding import binary_event, is_json, loads

__all__ = ["BATCH", "MAX_BATCH", "MAX_BODY_BYTES", "STRUCTURED", "BindingError", "check_content_length",
           "parse_request"]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BATCH = 10_000
MAX_BODY_BYTES = 32 * 1024 * 1024  # SPEC §2.1: a request body is at most 32 MiB


class BindingError(ValueError):
    """A request the binding cannot read; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _too_large(size: int | str) -> BindingError:
    return BindingError(413, f"a request body may be at most {MAX_BODY_BYTES} bytes (32 MiB), this one has {size}")


def check_content_length(headers: Mapping[str, str]) -> None:
    """Refuse by its Content-Length, before reading it, a body over MAX_BODY_BYTES (413); keys are lower-case."""
    declared = headers.get("content-length")
    if declared is None:
        return
    digits = declared.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise BindingError(400, f"Content-Length {declared[:40]!r} is not a number of bytes")
    significant = digits.lstrip("0")  # int() of thousands of digits would raise, so count them first
    if len(significant) > len(str(MAX_BODY_BYTES)) or int(significant or "0") > MAX_BODY_BYTES:
        raise _too_large(significant[:40])


def _json(body: bytes) -> Any:
    try:
        return loads(body)
    except ValueError as error:
        raise BindingError(400, f"the body is {error}") from None


def _one_or_many(body: bytes) -> list[Any]:
    document = _json(body)
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        return document
    raise BindingError(400, "the body must be a JSON object (one event) or an array of events")


def _batch(body: bytes) -> list[Any]:
    document = _json(body)
    if not isinstance(document, list):
        raise BindingError(400, f"a {BATCH} body must be a JSON array of events")
    return document


def _binary(headers: Mapping[str, str], body: bytes, content_type: str | None) -> list[Any]:
    attributes = {name[3:]: unquote(value) for name, value in headers.items() if name.startswith("ce-")}
    if body and not is_json(content_type):
        raise BindingError(415, f"binary mode: data of content type {content_type!r} is not JSON")
    try:
        return [binary_event(attributes, body, content_type)]
    except ValueError as error:
        raise BindingError(400, f"binary mode: {error}") from None


def parse_request(headers: Mapping[str, str], body: bytes) -> list[Any]:
    """The raw events of a request, in order; `headers` keys are lower-case. Raises BindingError."""
    if len(body) > MAX_BODY_BYTES:
        raise _too_large(len(body))
    content_type = headers.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == BATCH:
        events = _batch(body)
    elif media == STRUCTURED:
        events = _one_or_many(body)
    elif "ce-specversion" in headers:
        events = _binary(headers, body, content_type)
    elif media == "application/json":
        events = _one_or_many(body)
    else:
        raise BindingError(415, f"unsupported content type {content_type!r}: use {STRUCTURED}, {BATCH}, "
                                "application/json, or binary mode with ce-* headers")
    if len(events) > MAX_BATCH:
        raise BindingError(413, f"a request may carry at most {MAX_BATCH} events, this one has {len(events)}")
    return events
