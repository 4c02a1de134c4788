"""The CloudEvents Kafka binding: keys that keep related events together, and both decoding modes."""

from __future__ import annotations

import base64
import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.broker.binding import decode, encode, loads, topic_for
from services.settings import Settings
from shared.events import load_json, parse_event

TIME = "2026-03-14T10:22:00+01:00"
DATA = {
    "party.registered": {"party_id": "ae-1", "kind": "workforce"},
    "sale.closed": {"order_id": "o-1", "customer_id": "c-1", "amount": "100.10", "currency": "USD",
                    "credits": [{"party_id": "ae-1", "share": 1}]},
    "sale.reversed": {"order_id": "o-1"},
    "service.case_resolved": {"case_id": "k-1", "customer_id": "c-1", "resolver_id": "sa-1",
                              "first_contact": True},
    "survey.responded": {"survey_id": "s-1", "customer_id": "c-1", "about_id": "sa-1", "nps": 9},
    "referral.made": {"referral_id": "r-1", "referrer_id": "p-1", "prospect_id": "c-2"},
    "retention.renewed": {"contract_id": "k-9", "customer_id": "c-1", "arr": 1200},
    "retention.churned": {"contract_id": "k-9", "customer_id": "c-1", "arr": 1200},
}
KEYS = {"party.registered": b"ae-1", "sale.closed": b"o-1", "sale.reversed": b"o-1",
        "service.case_resolved": b"c-1", "survey.responded": b"c-1", "referral.made": b"r-1",
        "retention.renewed": b"c-1", "retention.churned": b"c-1"}


def event(event_type: str) -> dict:
    return {"specversion": "1.0", "id": f"e-{event_type}", "source": "crm", "type": event_type,
            "time": TIME, "data": DATA[event_type]}


@pytest.mark.parametrize("event_type", sorted(DATA))
def test_encode_keys_each_type_by_the_id_that_orders_it(event_type: str) -> None:
    key, _, _ = encode(parse_event(event(event_type)))
    assert key == KEYS[event_type]


@pytest.mark.parametrize("event_type", sorted(DATA))
def test_structured_round_trip_gives_back_the_same_event(event_type: str) -> None:
    original = parse_event(event(event_type))
    _, value, headers = encode(original)
    assert parse_event(decode(value, headers)) == original


def test_encode_is_structured_mode_with_money_as_strings_and_utc_time() -> None:
    _, value, headers = encode(parse_event(event("sale.closed")))
    assert headers == [("content-type", b"application/cloudevents+json")]
    body = json.loads(value)
    assert body["data"]["amount"] == "100.10"
    assert body["time"] == "2026-03-14T09:22:00Z"


def test_structured_decode_reads_numbers_as_exact_decimals() -> None:
    raw = decode(b'{"specversion": "1.0", "data": {"amount": 0.1}}', [])
    assert raw["data"]["amount"] == Decimal("0.1")


def test_binary_mode_takes_attributes_from_ce_headers_and_data_from_the_value() -> None:
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"e-7"), ("ce_source", b"crm"),
               ("ce_type", b"sale.closed"), ("ce_time", TIME.encode()), ("content-type", b"application/json")]
    value = json.dumps(DATA["sale.closed"]).encode()
    parsed = parse_event(decode(value, headers))
    assert (parsed.key, parsed.type, parsed.data.amount) == (("crm", "e-7"), "sale.closed", Decimal("100.10"))


@pytest.mark.parametrize(("value", "headers", "reason"), [
    (b"{not json", [], "not valid JSON"),
    (b'[{"id": "e-1"}]', [], "must be a JSON object"),
    (b'{"amount": NaN}', [], "NaN"),
    (None, [], "no value"),
    (b"\xff\xfe", [], "not valid JSON"),
    (b"{}", [("ce_specversion", b"\xff")], "not UTF-8"),
    (b"<xml/>", [("ce_specversion", b"1.0"), ("content-type", b"application/xml")], "only JSON"),
    (b"<xml/>", [("ce_specversion", b"1.0")], "not valid JSON"),
    (b"\xff{}", [("ce_specversion", b"1.0"), ("content-type", b"application/json")], "not valid JSON"),
    (b"{}", [("ce_specversion", "1.0")], "not a \\(name, bytes\\) pair"),
    (b"{}", [(b"ce_specversion", b"1.0")], "not a \\(name, bytes\\) pair"),
    (b"{}", [("ce_specversion",)], "not a \\(name, bytes\\) pair"),
    (b"{}", [None], "not a \\(name, bytes\\) pair"),
    (b"[" * 100_000, [], "not valid JSON"),
])
def test_decode_refuses_garbage_with_a_reason(value: bytes | None, headers: list, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode(value, headers)


def test_topic_for_uses_the_prefixed_family_topic() -> None:
    settings = Settings(topic_prefix="t.")
    assert topic_for("survey.responded", settings) == "t.events.service"
    assert topic_for("party.registered", settings) == "t.events.parties"


def test_the_binding_reads_json_with_the_event_contracts_exact_loader() -> None:
    assert loads is load_json


def test_structured_mode_data_base64_is_decoded_by_the_event_contract() -> None:
    original = parse_event(event("sale.closed"))
    value = json.dumps({**{k: v for k, v in event("sale.closed").items() if k != "data"},
                        "data_base64": base64.b64encode(json.dumps(DATA["sale.closed"]).encode()).decode()})
    assert parse_event(decode(value.encode(), [])) == original


HEADER_NAMES = st.one_of(st.sampled_from(["ce_specversion", "ce_id", "ce_type", "content-type", "CE_TIME"]),
                         st.text(max_size=8), st.binary(max_size=4))
HEADER_VALUES = st.one_of(st.none(), st.binary(max_size=12), st.text(max_size=4),
                          st.sampled_from([b"1.0", b"application/json", b"text/plain", b"\xff"]))
HEADERS = st.lists(st.one_of(st.tuples(HEADER_NAMES, HEADER_VALUES), st.lists(HEADER_NAMES, max_size=3),
                             st.none()), max_size=4)
VALUES = st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"{}", b"[]", b'{"data": 1e999}', b"NaN"]),
                   st.text(max_size=20).map(str.encode), st.text(max_size=20).map(lambda t: t.encode("utf-16")))


@settings(max_examples=300, deadline=None)
@given(VALUES, HEADERS)
def test_decode_raises_only_value_error_for_any_message(value: bytes | None, headers: list) -> None:
    with contextlib.suppress(ValueError):  # anything else escapes and fails the test
        assert isinstance(decode(value, headers), dict)
