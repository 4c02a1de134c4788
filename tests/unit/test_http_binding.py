"""The CloudEvents HTTP binding: every request mode read into raw event dicts, garbage refused."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from services.ingest.http_binding import MAX_BATCH, MAX_BODY_BYTES, BindingError, check_content_length, parse_request
from shared.events import parse_event

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


def test_the_body_limit_is_32_mib() -> None:
    assert MAX_BODY_BYTES == 32 * 1024 * 1024


def test_a_body_over_32_mib_is_too_large() -> None:
    with pytest.raises(BindingError, match="at most 33554432 bytes") as caught:
        parse_request({"content-type": "application/json"}, b" " * (MAX_BODY_BYTES + 1))
    assert caught.value.status == 413


def test_a_body_of_exactly_32_mib_is_read() -> None:
    padded = b"[" + b" " * (MAX_BODY_BYTES - 2 - len(body(EVENT))) + body(EVENT) + b"]"
    assert len(padded) == MAX_BODY_BYTES
    assert parse_request({"content-type": "application/cloudevents-batch+json"}, padded) == [EXPECTED]


@pytest.mark.parametrize("headers", [{}, {"content-length": "0"}, {"content-length": str(MAX_BODY_BYTES)},
                                     {"content-length": "000033554432"}])
def test_a_content_length_up_to_32_mib_passes(headers: dict[str, str]) -> None:
    check_content_length(headers)


@pytest.mark.parametrize(("length", "status"), [
    (str(MAX_BODY_BYTES + 1), 413), ("9" * 5000, 413), ("-1", 400), ("12k", 400), ("", 400), ("١٢", 400),
])
def test_a_content_length_over_32_mib_or_not_a_number_is_refused(length: str, status: int) -> None:
    with pytest.raises(BindingError) as caught:
        check_content_length({"content-length": length})
    assert caught.value.status == status


def test_structured_mode_data_base64_is_decoded_by_the_event_contract() -> None:
    data = b'{"order_id": "o-1", "amount": 12.5}'
    structured = {key: value for key, value in EVENT.items() if key != "data"}
    [raw] = parse_request({"content-type": "application/cloudevents+json"},
                          body({**structured, "data_base64": base64.b64encode(data).decode()}))
    event = parse_event(raw)
    assert event.data.amount == Decimal("12.5") and event == parse_event(EXPECTED)
