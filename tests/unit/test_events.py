"""The event contract (SPEC §2.1, §2.2): what is accepted, how it is normalised, why the rest is refused."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.events import DATA_MODELS, MAX_ID_LENGTH, Event, EventError, parse_event
from tests.support.events import raw_event

SALE = {"order_id": "o-1", "customer_id": "c-1", "amount": "1000.50", "currency": "USD",
        "credits": [{"party_id": "ae-1", "share": "0.6"}, {"party_id": "ae-2", "share": "0.4"}]}
VALID = {
    "party.registered": {"party_id": "ae-1", "kind": "workforce", "role": "account_executive"},
    "sale.closed": SALE,
    "sale.reversed": {"order_id": "o-1"},
    "service.case_resolved": {"case_id": "k-1", "customer_id": "c-1", "resolver_id": "ag-1",
                              "first_contact": True},
    "survey.responded": {"survey_id": "s-1", "customer_id": "c-1", "about_id": "ae-1", "nps": 9},
    "referral.made": {"referral_id": "r-1", "referrer_id": "c-1", "prospect_id": "c-2"},
    "retention.renewed": {"contract_id": "ct-1", "customer_id": "c-1", "arr": "12000"},
    "retention.churned": {"contract_id": "ct-1", "customer_id": "c-1", "arr": "12000", "reason": "price"},
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def raw(type: str = "sale.closed", time: str = "2026-03-14T10:22:00Z", **changes: Any) -> dict:
    """A valid raw event of `type`, with `data` fields replaced (a value of `...` removes the field)."""
    data = copy.deepcopy(VALID[type])
    for name, value in changes.items():
        if value is ...:
            data.pop(name)
        else:
            data[name] = value
    return raw_event(type, time, id="e-1", source="crm", **data)


def rejection(event: object, currency: str = "USD") -> str:
    with pytest.raises(EventError) as caught:
        parse_event(event, currency)
    return str(caught.value)


def assert_names(message: str, field: str) -> None:
    """The error names `field` as `field: reason` (possibly among several problems)."""
    assert re.search(rf"(^|; ){re.escape(field)}: \S", message), f"{field!r} not named in {message!r}"


@pytest.mark.parametrize("type", sorted(VALID))
def test_every_event_type_with_its_required_fields_is_accepted(type: str) -> None:
    event = parse_event(raw(type))
    assert event.type == type
    assert event.key == ("crm", "e-1")


@pytest.mark.parametrize("field", ["specversion", "id", "source", "type", "time"])
def test_a_missing_envelope_attribute_is_rejected_by_name(field: str) -> None:
    event = raw()
    del event[field]
    assert_names(rejection(event), field)


@pytest.mark.parametrize(("attribute", "value"), [
    ("specversion", "0.3"), ("specversion", 1.0), ("id", ""), ("id", 17), ("source", None),
    ("type", "sale.exploded"), ("type", "Sale.Closed"),
    ("time", "yesterday"), ("time", "2026-03-14T10:22:00"), ("time", "2026-02-30T10:00:00Z"),
    ("time", 1773483720), ("time", ""), ("time", "0000-01-01T00:00:00Z"), ("time", "2026-03-14T10:22:00Z\n"),
    ("time", "٢٠٢٦-03-14T10:22:00Z"),
])
def test_a_bad_envelope_attribute_is_rejected_by_name(attribute: str, value: object) -> None:
    assert_names(rejection({**raw(), attribute: value}), attribute)


def test_an_unknown_type_is_named_in_the_error() -> None:
    assert "sale.exploded" in rejection({**raw(), "type": "sale.exploded"})


@pytest.mark.parametrize(("type", "changes", "field"), [
    # missing required data fields
    ("sale.closed", {"amount": ...}, "data.amount"),
    ("sale.closed", {"order_id": ...}, "data.order_id"),
    ("sale.closed", {"customer_id": ...}, "data.customer_id"),
    ("sale.closed", {"currency": ...}, "data.currency"),
    ("sale.closed", {"credits": ...}, "data.credits"),
    ("sale.reversed", {"order_id": ...}, "data.order_id"),
    ("party.registered", {"kind": ...}, "data.kind"),
    ("service.case_resolved", {"first_contact": ...}, "data.first_contact"),
    ("referral.made", {"prospect_id": ...}, "data.prospect_id"),
    ("retention.renewed", {"arr": ...}, "data.arr"),
    # ill-typed fields
    ("sale.closed", {"order_id": 42}, "data.order_id"),
    ("sale.closed", {"amount": "ten"}, "data.amount"),
    ("sale.closed", {"motion": "resale"}, "data.motion"),
    ("sale.closed", {"credits": []}, "data.credits"),
    ("sale.closed", {"credits": "ae-1"}, "data.credits"),
    ("party.registered", {"kind": "robot"}, "data.kind"),
    ("service.case_resolved", {"first_contact": "yes"}, "data.first_contact"),
    ("survey.responded", {"nps": "9"}, "data.nps"),
    ("survey.responded", {"nps": 11}, "data.nps"),
    ("survey.responded", {"nps": ..., "csat": 0}, "data.csat"),
    ("survey.responded", {"nps": ..., "csat": 6}, "data.csat"),
    # negative amounts
    ("sale.closed", {"amount": "-0.01"}, "data.amount"),
    ("sale.closed", {"margin": "-5"}, "data.margin"),
    ("sale.reversed", {"amount": "-100"}, "data.amount"),
    ("retention.churned", {"arr": -1}, "data.arr"),
    # shares
    ("sale.closed", {"credits": [{"party_id": "ae-1", "share": "0.6"}, {"party_id": "ae-2", "share": "0.3"}]},
     "data.credits"),
    ("sale.closed", {"credits": [{"party_id": "ae-1", "share": "0.7"}, {"party_id": "ae-2", "share": "0.4"}]},
     "data.credits"),
    ("sale.closed", {"credits": [{"party_id": "ae-1", "share": "1"}, {"party_id": "ae-2", "share": "0"}]},
     "data.credits.1.share"),
    ("sale.closed", {"credits": [{"party_id": "a", "share": "1.5"}, {"party_id": "b", "share": "-0.5"}]},
     "data.credits.0.share"),
    ("sale.closed", {"credits": [{"share": "1"}]}, "data.credits.0.party_id"),
    # the deployment settles in one currency
    ("sale.closed", {"currency": "EUR"}, "data.currency"),
    # money never goes through float
    ("sale.closed", {"amount": 1000.5}, "data.amount"),
    ("sale.reversed", {"amount": 0.1}, "data.amount"),
])
def test_a_bad_data_field_is_rejected_by_name(type: str, changes: dict, field: str) -> None:
    assert_names(rejection(raw(type, **changes)), field)


def test_shares_not_summing_to_one_say_so() -> None:
    credits = [{"party_id": "ae-1", "share": "0.5"}, {"party_id": "ae-2", "share": "0.4"}]
    assert "sum" in rejection(raw(credits=credits))


def test_a_negative_amount_says_so() -> None:
    assert "negative" in rejection(raw(amount="-1"))


def test_a_survey_needs_nps_or_csat() -> None:
    message = rejection(raw("survey.responded", nps=...))
    assert_names(message, "data")
    assert "nps" in message and "csat" in message


@pytest.mark.parametrize("answers", [{"nps": 0}, {"csat": 5}, {"nps": 10, "csat": 1}])
def test_a_survey_with_either_answer_is_accepted(answers: dict) -> None:
    data = parse_event(raw("survey.responded", **({"nps": ...} | answers))).data
    assert (data.nps, data.csat) == (answers.get("nps"), answers.get("csat"))


def test_other_currency_is_accepted_when_it_is_the_deployments() -> None:
    assert parse_event(raw(currency="EUR"), currency="EUR").data.currency == "EUR"
    assert_names(rejection(raw(), currency="EUR"), "data.currency")


@pytest.mark.parametrize("event", ["not an object", ["a", "list"], None, 42])
def test_anything_but_an_object_is_rejected(event: object) -> None:
    assert rejection(event)


def test_an_event_error_is_a_value_error() -> None:
    assert issubclass(EventError, ValueError)


@pytest.mark.parametrize("time", ["2026-03-14T12:22:00+02:00", "2026-03-14T10:22:00Z",
                                  "2026-03-14T10:22:00+00:00", "2026-03-14T05:22:00-05:00"])
def test_time_is_normalised_to_utc(time: str) -> None:
    event = parse_event(raw(time=time))
    assert event.time == datetime(2026, 3, 14, 10, 22, tzinfo=UTC)
    assert event.time.utcoffset() == timedelta(0)
    assert event.ts == (datetime(2026, 3, 14, 10, 22, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def test_an_offset_moves_the_event_to_another_utc_day() -> None:
    event = parse_event(raw(time="2026-04-01T01:30:00+02:00"))
    assert event.time == datetime(2026, 3, 31, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("moment", [
    datetime(2026, 3, 14, 10, 22, 0, 7, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, tzinfo=UTC),
])
def test_ts_is_the_exact_epoch_microsecond(moment: datetime) -> None:
    event = parse_event(raw(time=moment.isoformat()))
    assert event.ts == (moment - EPOCH) // timedelta(microseconds=1)


def test_event_time_keeps_microseconds() -> None:
    event = parse_event(raw(time="2026-03-14T10:22:00.000007Z"))
    assert event.ts % 1_000_000 == 7
    assert event.ts // 1_000_000 == (datetime(2026, 3, 14, 10, 22, tzinfo=UTC) - EPOCH).total_seconds()


@pytest.mark.parametrize(("amount", "expected"), [
    ("1000.10", "1000.10"), ("0.000001", "0.000001"), (Decimal("12.345"), "12.345"), (250, "250"),
    ("999999999999999.999999", "999999999999999.999999"), ("1.50000000", "1.50000000"), ("1E+2", "1E+2"),
])
def test_money_is_exact_from_strings_and_decimals(amount: object, expected: str) -> None:
    data = parse_event(raw(amount=amount, margin=amount)).data
    assert data.amount == Decimal(expected) and str(data.amount) == expected
    assert data.margin == Decimal(expected)


def test_shares_are_exact_decimals() -> None:
    credits = [{"party_id": p, "share": s} for p, s in (("a", "0.1"), ("b", "0.2"), ("c", "0.7"))]
    data = parse_event(raw(credits=credits)).data
    assert [(c.party_id, c.share) for c in data.credits] == [("a", Decimal("0.1")), ("b", Decimal("0.2")),
                                                               ("c", Decimal("0.7"))]


def test_optional_fields_take_their_defaults() -> None:
    sale = parse_event(raw()).data
    assert (sale.motion, sale.partner_id, sale.referral_id, sale.margin) == ("new", None, None, None)
    assert parse_event(raw("sale.reversed")).data.amount is None


def test_id_and_source_together_are_the_key() -> None:
    first = parse_event(raw())
    other_source = parse_event({**raw(), "source": "erp"})
    assert first.key == ("crm", "e-1") and other_source.key == ("erp", "e-1")


def test_an_event_survives_its_json_form() -> None:
    event = parse_event(raw(time="2026-03-14T12:22:00.5+02:00", margin="12.50", partner_id="p-1"))
    again = parse_event(event.to_json_dict())
    assert again == event
    assert isinstance(again, Event)


# SPEC §2.1 bounds: money, arr, handle_minutes and share have at most 15 digits before the point and 6 after it.
DECIMAL_FIELDS = [("sale.closed", "amount"), ("sale.closed", "margin"), ("sale.reversed", "amount"),
                  ("retention.renewed", "arr"), ("retention.churned", "arr"),
                  ("service.case_resolved", "handle_minutes")]
OUT_OF_BOUNDS = ["1e30", "9E+999999", "1E-40", "0.0000001", "1000000000000000", "1E+15", "0.1234567",
                 Decimal("1E+999999999"), Decimal("1E-999999999"), 10**16, "NaN", "Infinity", "sNaN"]


@pytest.mark.parametrize("value", OUT_OF_BOUNDS)
@pytest.mark.parametrize(("type", "field"), DECIMAL_FIELDS)
def test_decimals_beyond_15_digits_before_or_6_after_the_point_are_rejected_by_name(
        type: str, field: str, value: object) -> None:
    message = rejection(raw(type, **{field: value}))
    assert_names(message, f"data.{field}")
    assert re.search(r"digits (before|after) the decimal point|not a finite number", message), message


@pytest.mark.parametrize(("value", "reason"), [("1e30", "more than 15 digits before the decimal point"),
                                               ("0.0000001", "more than 6 digits after the decimal point")])
def test_an_out_of_bounds_amount_says_which_bound(value: str, reason: str) -> None:
    assert f"data.amount: '{value}' has {reason}" in rejection(raw(amount=value))


@pytest.mark.parametrize("value", ["999999999999999.999999", "1.50000000", "1E+2", "0.000001", "0E+999999999",
                                   "1234567890.1234560000000000000"])
@pytest.mark.parametrize(("type", "field"), DECIMAL_FIELDS)
def test_decimals_within_the_bounds_are_accepted(type: str, field: str, value: str) -> None:
    assert getattr(parse_event(raw(type, **{field: value})).data, field) == Decimal(value)


@pytest.mark.parametrize(("shares", "field"), [
    (["1", "1E-40"], "data.credits.1.share"),          # would sum to 1 in 28-digit arithmetic
    (["0.5000001", "0.4999999"], "data.credits.0.share"),
    (["1E-7", "0.9999999"], "data.credits.0.share"),
])
def test_a_share_has_at_most_six_decimal_places(shares: list[str], field: str) -> None:
    credits = [{"party_id": f"ae-{n}", "share": share} for n, share in enumerate(shares)]
    assert_names(rejection(raw(credits=credits)), field)


def test_shares_with_six_decimal_places_and_trailing_zeros_are_accepted() -> None:
    credits = [{"party_id": "a", "share": "0.333333"}, {"party_id": "b", "share": "0.666667000"}]
    assert sum(c.share for c in parse_event(raw(credits=credits)).data.credits) == 1


@pytest.mark.parametrize(("time", "utc"), [
    ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ("1970-01-01T01:00:00+01:00", datetime(1970, 1, 1, tzinfo=UTC)),
    ("9999-12-31T00:00:00Z", datetime(9999, 12, 31, tzinfo=UTC)),
    ("9999-12-30T23:00:00-01:00", datetime(9999, 12, 31, tzinfo=UTC)),
])
def test_times_at_the_bounds_are_accepted(time: str, utc: datetime) -> None:
    assert parse_event(raw(time=time)).time == utc


@pytest.mark.parametrize("time", [
    "1969-12-31T23:59:59.999999Z", "1970-01-01T00:30:00+01:00", "0001-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",     # before year 1 in UTC: astimezone overflows
    "9999-12-31T00:00:00.000001Z", "9999-12-31T00:00:00-00:01",
    "9999-12-31T23:59:59-23:59",     # after year 9999 in UTC: astimezone overflows
    "9999-12-31T23:59:59Z",
])
def test_times_outside_1970_to_9999_12_31_are_rejected_by_name(time: str) -> None:
    message = rejection(raw(time=time))
    assert_names(message, "time")
    assert "must be between 1970-01-01T00:00:00Z and 9999-12-31T00:00:00Z" in message


ID_FIELDS = [(type, name) for type, model in sorted(DATA_MODELS.items())
             for name in model.model_fields if name.endswith("_id")]


def test_the_id_fields_are_every_one_of_spec_2_2() -> None:
    assert {name for _, name in ID_FIELDS} == {
        "party_id", "manager_id", "order_id", "customer_id", "partner_id", "referral_id", "case_id", "resolver_id",
        "survey_id", "about_id", "referrer_id", "prospect_id", "provider_id", "contract_id"}


@pytest.mark.parametrize(("type", "field"), ID_FIELDS)
def test_an_id_field_has_at_most_256_characters(type: str, field: str) -> None:
    longest, too_long = "x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1)
    assert getattr(parse_event(raw(type, **{field: longest})).data, field) == longest
    assert_names(rejection(raw(type, **{field: too_long})), f"data.{field}")


def test_a_credited_party_id_has_at_most_256_characters() -> None:
    assert parse_event(raw(credits=[{"party_id": "p" * MAX_ID_LENGTH, "share": "1"}]))
    assert_names(rejection(raw(credits=[{"party_id": "p" * (MAX_ID_LENGTH + 1), "share": "1"}])),
                 "data.credits.0.party_id")


@pytest.mark.parametrize("attribute", ["id", "source"])
def test_the_event_id_and_source_have_at_most_256_characters(attribute: str) -> None:
    assert parse_event({**raw(), attribute: "e" * MAX_ID_LENGTH}).key
    assert_names(rejection({**raw(), attribute: "e" * (MAX_ID_LENGTH + 1)}), attribute)


def encoded(payload: bytes | str) -> str:
    return base64.b64encode(payload.encode() if isinstance(payload, str) else payload).decode()


def with_base64(event: dict, payload: bytes | str | None = None) -> dict:
    """`event` with its `data` moved to `data_base64` (or `payload` encoded there instead)."""
    moved = {name: value for name, value in event.items() if name != "data"}
    moved["data_base64"] = encoded(json.dumps(event["data"]) if payload is None else payload)
    return moved


@pytest.mark.parametrize("type", sorted(VALID))
def test_data_base64_carries_the_same_payload_as_data(type: str) -> None:
    assert parse_event(with_base64(raw(type))) == parse_event(raw(type))


def test_data_base64_numbers_are_exact_decimals_and_the_json_form_has_data() -> None:
    payload = json.dumps(SALE).replace('"1000.50"', "1000.50").replace('"0.6"', "0.6").replace('"0.4"', "0.4")
    event = parse_event(with_base64(raw(), payload))
    assert event.data.amount == Decimal("1000.50") and str(event.data.amount) == "1000.50"
    body = event.to_json_dict()
    assert "data_base64" not in body and body["data"]["amount"] == "1000.50"
    assert parse_event(body) == event


def test_data_base64_payload_errors_name_the_data_field() -> None:
    assert_names(rejection(with_base64(raw(amount="-5"))), "data.amount")


@pytest.mark.parametrize(("value", "reason"), [
    ("!!!!", "not valid base64"), ("eyJ", "not valid base64"), ("eyJhIjogMX0=\n", "not valid base64"),
    ("eyJhIjogMX0", "not valid base64"), ("ïï==", "not valid base64"), (encoded(b"\xff\xfe{}"), "not valid base64"),
    (42, "must be a base64 string"), (None, "must be a base64 string"),
    (encoded("{oops"), "not valid JSON"), (encoded('{"amount": NaN}'), "not valid JSON"),
])
def test_bad_data_base64_is_rejected_with_its_reason(value: object, reason: str) -> None:
    message = rejection({**with_base64(raw()), "data_base64": value})
    assert_names(message, "data_base64")
    assert reason in message


def test_an_event_with_both_data_and_data_base64_is_rejected() -> None:
    message = rejection({**raw(), "data_base64": encoded(json.dumps(SALE))})
    assert_names(message, "data_base64")
    assert "not both" in message


# Whatever a JSON decoder (numbers as Decimal) or a careless caller hands it, parse_event raises EventError only.
DECIMALS = st.one_of(st.decimals(), st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-10**20, 10**20),
                                              st.integers(-10**12, 10**12)))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), DECIMALS, st.text(max_size=20),
                    st.sampled_from(["", "1", "0.5", "1E-40", "9E+999999", "NaN", "-0", "x" * 300, "USD", "EUR"]))
JSON_LIKE = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
OFFSETS = st.one_of(st.sampled_from(["Z", "z", "+00:00"]),
                    st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 25), st.integers(0, 60)))
TIMES = st.one_of(
    st.builds(lambda moment, offset: moment.isoformat() + offset,  # mostly well-formed, any year, any offset
              st.datetimes(), OFFSETS),
    st.builds("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format,  # the edges, and impossible fields
              st.sampled_from([0, 1, 1969, 1970, 9999]), st.integers(0, 13), st.integers(0, 32),
              st.integers(0, 24), st.integers(0, 60), st.integers(0, 60),
              st.sampled_from(["", ".5", ".000001", ".9999999"]), st.one_of(OFFSETS, st.just(""))),
    JSON_LIKE)
FIELD_NAMES = sorted({name for model in DATA_MODELS.values() for name in model.model_fields})
CREDITS = st.lists(st.fixed_dictionaries({"party_id": st.one_of(st.text(max_size=5), JSON_LIKE),
                                          "share": st.one_of(DECIMALS, JSON_LIKE)}), max_size=4)
DATA = st.dictionaries(st.sampled_from(FIELD_NAMES), st.one_of(JSON_LIKE, CREDITS), max_size=8)


@st.composite
def event_shaped(draw: st.DrawFn) -> dict:
    """A dict that looks like an event: plausible attributes, each sometimes replaced by anything."""
    type = draw(st.sampled_from([*DATA_MODELS, "sale.exploded"]))
    event = {"specversion": "1.0", "id": "e-1", "source": "crm", "type": type, "time": draw(TIMES),
             "data": {**VALID.get(type, {}), **draw(DATA)}}
    for attribute in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        event[attribute] = draw(JSON_LIKE)
    if draw(st.integers(0, 3)) == 3:  # now and then: hypothesis favours 0
        payload = draw(st.one_of(st.binary(max_size=20),
                                 st.builds(lambda d: json.dumps(d, default=str).encode(), DATA)))
        event["data_base64"] = draw(st.one_of(st.just(base64.b64encode(payload).decode()), JSON_LIKE))
        if draw(st.booleans()):
            del event["data"]
    return event


def parses_or_refuses(value: object) -> None:
    """Any exception but EventError escapes and fails the test."""
    with contextlib.suppress(EventError):
        parse_event(value)


@settings(max_examples=200, deadline=None)
@given(JSON_LIKE)
def test_parse_event_raises_only_event_error_for_any_json_value(value: object) -> None:
    parses_or_refuses(value)


@settings(max_examples=200, deadline=None)
@given(event_shaped())
@example({**raw(), "time": "0001-01-01T00:30:00+01:00"})
@example({**raw(), "time": "9999-12-31T23:00:00-05:00"})
@example(raw(amount="9E+999999", margin="1E-999999999"))
@example(raw(credits=[{"party_id": "a", "share": "1"}, {"party_id": "b", "share": "1E-40"}]))
@example(raw(credits=[{"party_id": "a", "share": Decimal("sNaN")}]))
def test_parse_event_raises_only_event_error_for_any_event_shaped_dict(event: dict) -> None:
    parses_or_refuses(event)
