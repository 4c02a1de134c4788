"""Exact money: parsing to `Decimal` and half-even rounding to a currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["POINTS", "ZERO", "minor_unit", "parse_decimal", "render", "round_money"]

ZERO = Decimal(0)
POINTS = "PTS"

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
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def minor_unit(currency: str) -> int:
    """Decimal places of the currency's minor unit (points: 0)."""
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-even to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_EVEN)


def render(value: Decimal | None, places: int = 6) -> str | None:
    """A measure as text: at most `places` decimals, integers without a fraction."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
