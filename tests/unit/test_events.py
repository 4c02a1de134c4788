"""The event contract (SPEC §2.1, §2.2): what is accepted, how it is normalised, why the rest is refused."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.events import Event, EventError, parse_event
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
    ("time", 1773483720), ("time", ""),
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
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
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
    ("99999999999999999999.99", "99999999999999999999.99"),
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
