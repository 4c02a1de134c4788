"""Exact money: parsing to `Decimal` and half-even rounding to a currency's minor unit."""

from __future__ import annotations

import reprlib
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import overload

__all__ = ["MAX_FRACTION_DIGITS", "MAX_INTEGER_DIGITS", "POINTS", "ZERO", "minor_unit", "parse_bounded",
           "parse_decimal", "render", "round_money"]

ZERO = Decimal(0)
POINTS = "PTS"
# SPEC §2.1: event money, `arr`, `share` and the like have at most 15 digits before the point and 6 after it.
MAX_INTEGER_DIGITS = 15
MAX_FRACTION_DIGITS = 6

# ISO 4217 minor units that differ from 2; loyalty points settle in whole points.
_MINOR_UNITS = {POINTS: 0, "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3,
                "JOD": 3, "TND": 3}


def parse_decimal(value: object) -> Decimal:
    """A finite `Decimal` from a JSON string or number; floats are refused (they are already inexact)."""
    if isinstance(value, bool | float):
        raise ValueError("must be a decimal string or an integer, not a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{reprlib.repr(value)} is not a decimal number") from None
    else:
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{reprlib.repr(value)} is not a finite number")
    return result


def parse_bounded(value: object) -> Decimal:
    """`parse_decimal`, then SPEC §2.1's bounds: at most 15 digits before the point and 6 after it.

    Trailing zeros do not count (`1.50000000` is fine). Only the digit tuple and the exponent are read, never an
    arithmetic result, so `9E+999999` or `1E-999999999` is refused without Overflow or a huge expansion.
    """
    result = parse_decimal(value)
    _sign, digits, exponent = result.as_tuple()
    kept = bytes(digits).rstrip(b"\0")  # the digits without trailing zeros (a Decimal has no leading ones)
    if not kept:  # a zero has no significant digit; an absurd exponent is dropped so later arithmetic cannot clamp
        return result if -MAX_FRACTION_DIGITS <= int(exponent) <= 0 else ZERO
    shown = reprlib.repr(value if isinstance(value, str) else str(result))  # repr of a huge int would raise
    last = int(exponent) + len(digits) - len(kept)  # the power of ten of the last significant digit
    if last + len(kept) > MAX_INTEGER_DIGITS:
        raise ValueError(f"{shown} has more than {MAX_INTEGER_DIGITS} digits before the decimal point")
    if -last > MAX_FRACTION_DIGITS:
        raise ValueError(f"{shown} has more than {MAX_FRACTION_DIGITS} digits after the decimal point")
    return result


def minor_unit(currency: str) -> int:
    """Decimal places of the currency's minor unit (points: 0)."""
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-even to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_EVEN)


@overload
def render(value: Decimal, places: int = 6) -> str: ...
@overload
def render(value: Decimal | None, places: int = 6) -> str | None: ...
def render(value: Decimal | None, places: int = 6) -> str | None:
    """A measure as text: at most `places` decimals, integers without a fraction."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
