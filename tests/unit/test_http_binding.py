"""The CloudEvents HTTP binding: every request mode read into raw event dicts, garbage refused."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.ingest.http_binding import MAX_BATCH, BindingError, parse_request

EVENT = {"specversion": "1.0", "id": "e-1", "source": "crm", "type": "sale.reversed",
         "time": "2026-03-14T10:22:00Z", "data": {"order_id": "o-1", "amount": 12.5}}
EXPECTED = {**EVENT, "data": {"order_id": "o-1", "amount": Decimal("12.5")}}


def body(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize("content_type", ["application/cloudevents+json; charset=utf-8", "application/json"])
def test_structured_mode_reads_one_event(content_type: str) -> None:
    assert parse_request({"content-type": content_type}, body(EVENT)) == [EXPECTED]


@pytest.mark.parametrize("content_type", ["application/json", "application/cloudevents-batch+json"])
def test_an_array_is_a_batch_in_order(content_type: str) -> None:
    second = {**EVENT, "id": "e-2"}
    events = parse_request({"content-type": content_type}, body([EVENT, second]))
    assert [e["id"] for e in events] == ["e-1", "e-2"]


def test_numbers_are_exact_decimals_never_floats() -> None:
    [event] = parse_request({"content-type": "application/json"}, b'{"data": {"amount": 0.1}}')
    assert event["data"]["amount"] == Decimal("0.1")


def test_binary_mode_reads_ce_headers_and_the_body_as_data() -> None:
    headers = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": "e-1",
               "ce-source": "crm", "ce-type": "sale.reversed", "ce-time": "2026-03-14T10:22:00Z"}
    [event] = parse_request(headers, body(EVENT["data"]))
    assert event == {**EXPECTED, "datacontenttype": "application/json"}


def test_binary_mode_percent_decodes_header_values() -> None:
    headers = {"ce-specversion": "1.0", "ce-source": "crm%20eu%C3%A9"}
    [event] = parse_request(headers, b"")
    assert event == {"specversion": "1.0", "source": "crm eué"}


def test_a_batch_over_the_limit_is_too_large() -> None:
    with pytest.raises(BindingError, match="at most 10000") as caught:
        parse_request({"content-type": "application/cloudevents-batch+json"}, body([{}] * (MAX_BATCH + 1)))
    assert caught.value.status == 413


def test_a_batch_at_the_limit_is_read() -> None:
    events = parse_request({"content-type": "application/cloudevents-batch+json"}, body([{}] * MAX_BATCH))
    assert len(events) == MAX_BATCH


@pytest.mark.parametrize(("headers", "payload", "status", "reason"), [
    ({"content-type": "application/json"}, b"{oops", 400, "not valid JSON"),
    ({"content-type": "application/json"}, b"[1, NaN]", 400, "NaN"),
    ({"content-type": "application/json"}, b'"e-1"', 400, "JSON object .* or an array"),
    ({"content-type": "application/cloudevents-batch+json"}, body(EVENT), 400, "must be a JSON array"),
    ({"content-type": "text/plain"}, b"hello", 415, "unsupported content type"),
    ({}, body(EVENT), 415, "unsupported content type"),
    ({"content-type": "text/csv", "ce-specversion": "1.0"}, b"a,b", 415, "not JSON"),
    ({"content-type": "application/json", "ce-specversion": "1.0"}, b"{", 400, "binary mode"),
])
def test_unreadable_requests_are_refused_with_a_status_and_reason(
        headers: dict[str, str], payload: bytes, status: int, reason: str) -> None:
    with pytest.raises(BindingError, match=reason) as caught:
        parse_request(headers, payload)
    assert caught.value.status == status
