"""Exact money: decimals parsed without float, half-even rounding to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import minor_unit, parse_decimal, render, round_money


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
