"""Exact money: decimals parsed without float, half-even rounding to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import minor_unit, parse_bounded, parse_decimal, render, round_money


@pytest.mark.parametrize(("raw", "expected"), [
    ("0.1", Decimal("0.1")),
    (" 1234.5678 ", Decimal("1234.5678")),
    ("-3.50", Decimal("-3.50")),
    (1000, Decimal(1000)),
    (Decimal("0.30"), Decimal("0.30")),
])
def test_parse_decimal_is_exact(raw: object, expected: Decimal) -> None:
    parsed = parse_decimal(raw)
    assert parsed == expected
    assert str(parsed) == str(expected)  # same digits and exponent, not merely numerically equal


def test_parsed_tenths_add_up_exactly() -> None:
    assert parse_decimal("0.1") + parse_decimal("0.2") == Decimal("0.3")


@pytest.mark.parametrize("raw", [0.1, 1.0, True, "abc", "", "NaN", "Infinity", "-inf", None, [1], {"v": 1}])
def test_parse_decimal_refuses_floats_and_non_numbers(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_decimal(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1.50000000", "1.50000000"),              # trailing zeros do not count
    ("1E+2", "1E+2"),                          # = 100
    ("999999999999999.999999", "999999999999999.999999"),
    ("-999999999999999", "-999999999999999"),
    ("0.000001", "0.000001"),
    (10**14, "100000000000000"),
    ("100000000000000.0000000000", "100000000000000.0000000000"),
    ("0E+999999999", "0"),                     # a zero, its absurd exponent dropped
    ("0E-999999999", "0"),
    ("0.00", "0.00"),
])
def test_parse_bounded_keeps_what_is_within_15_digits_before_and_6_after_the_point(raw: object, expected: str) -> None:
    assert str(parse_bounded(raw)) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("1e30", "'1e30' has more than 15 digits before the decimal point"),
    ("9E+999999", "'9E+999999' has more than 15 digits before the decimal point"),
    (Decimal("9E+999999999999"), "'9E+999999999999' has more than 15 digits before the decimal point"),
    ("1000000000000000", "has more than 15 digits before the decimal point"),
    ("-1000000000000000.5", "has more than 15 digits before the decimal point"),
    pytest.param(10**5000, "has more than 15 digits before the decimal point", id="10**5000"),  # too long to repr
    pytest.param("1" * 100_000, "has more than 15 digits before the decimal point", id="100000-digits"),
    ("1E-40", "'1E-40' has more than 6 digits after the decimal point"),
    ("0.0000001", "'0.0000001' has more than 6 digits after the decimal point"),
    (Decimal("1E-999999999999"), "has more than 6 digits after the decimal point"),
    ("NaN", "not a finite number"),
    ("-Infinity", "not a finite number"),
    (0.5, "not a float"),
])
def test_parse_bounded_refuses_larger_or_finer_values_with_the_reason(raw: object, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_bounded(raw)
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 200  # the value is shown cut short


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("2.345", "USD", "2.34"),    # tie goes to the even cent
    ("2.355", "USD", "2.36"),
    ("2.3450001", "USD", "2.35"),
    ("-2.345", "USD", "-2.34"),
    ("0.005", "EUR", "0.00"),
    ("7", "USD", "7.00"),
    ("2.5", "PTS", "2"),         # loyalty points settle in whole points
    ("3.5", "PTS", "4"),
    ("1234.5", "JPY", "1234"),
    ("1.0005", "KWD", "1.000"),
    ("1.0015", "KWD", "1.002"),
])
def test_round_money_is_half_even_to_the_minor_unit(amount: str, currency: str, expected: str) -> None:
    rounded = round_money(Decimal(amount), currency)
    assert rounded == Decimal(expected)
    assert str(rounded) == expected


@pytest.mark.parametrize(("currency", "places"), [("USD", 2), ("EUR", 2), ("PTS", 0), ("JPY", 0), ("BHD", 3)])
def test_minor_unit_of_a_currency(currency: str, places: int) -> None:
    assert minor_unit(currency) == places


@pytest.mark.parametrize(("value", "text"), [
    (None, None),
    (Decimal("100.000"), "100"),
    (Decimal("-3"), "-3"),
    (Decimal("0.2253"), "0.225300"),
    (Decimal(2) / Decimal(3), "0.666667"),
    (Decimal("0.0000005"), "0.000000"),
    (Decimal("0.0000015"), "0.000002"),
])
def test_render_gives_at_most_six_decimals_and_integers_bare(value: Decimal | None, text: str | None) -> None:
    assert render(value) == text
