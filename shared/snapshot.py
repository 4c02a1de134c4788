"""The fold's state as JSON-ready data, record by record, and back (`fold-state/4`).

Decimals travel as strings and integers as numbers, so a record survives `json.dumps`/`json.loads`
unchanged; tuples come back as tuples where the fold relies on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from shared.fold import REFERRED, REVERSED, Customer, Fold, Party

__all__ = ["FORMAT", "decode_fold", "encode_fold", "get_record", "put_record", "put_stored", "record_keys"]

FORMAT = "fold-state/4"


def _out(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _in(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


def encode_party(party: Party) -> list:
    """[kind, registrations]: the kind counts only for a party that was never registered (it was inferred)."""
    return [party.kind, [list(registration) for registration in party.registrations]]


def decode_party(data: list) -> Party:
    kind, registrations = data
    return Party.registered(tuple(map(tuple, registrations))) if registrations else Party(kind)


def encode_relationship(parts: dict) -> dict:
    data: dict[str, Any] = {"d": {}}
    for key, value in parts.items():
        if isinstance(key, int):
            data["d"][str(key)] = [_out(v) for v in value]
        elif key[0] == REVERSED:
            data.setdefault(REVERSED, []).append([key[1], key[2], str(value)])
        else:
            data.setdefault(REFERRED, []).append([key[1], key[2], value[0], str(value[1])])
    return data


def decode_relationship(data: dict) -> dict:
    parts: dict = {int(day): tuple([Decimal(v) if v.__class__ is str else v for v in sums])
                   for day, sums in data["d"].items()}
    for day, order_day, amount in data.get(REVERSED, ()):
        parts[REVERSED, day, order_day] = Decimal(amount)
    for referral_id, day, referral_day, revenue in data.get(REFERRED, ()):
        parts[REFERRED, referral_id, day] = (referral_day, Decimal(revenue))
    return parts


def get_order(fold: Fold, order_id: str) -> list | None:
    """An order and its reversals (the order's fields are None until it arrives), or None if neither is known."""
    order, reversals = fold.orders.get(order_id), fold.reversals.get(order_id)
    if order is None and reversals is None:
        return None
    ts, customer, amount, credits, partner = order or (None,) * 5
    return [ts, customer, _out(amount), credits and [[p, str(s)] for p, s in credits], partner,
            reversals and [[ts, tie, _out(requested), _out(applied)] for ts, tie, requested, applied in reversals]]


def put_order(fold: Fold, order_id: str, data: list | None) -> None:
    fields: list[Any] = data or [None] * 6
    ts, customer, amount, credits, partner, reversals = fields
    if ts is None:
        fold.orders.pop(order_id, None)
    else:
        fold.orders[order_id] = (ts, customer, _in(amount), tuple((p, Decimal(s)) for p, s in credits), partner)
    if reversals is None:
        fold.reversals.pop(order_id, None)
    else:
        fold.reversals[order_id] = tuple((t, tie, _in(r), _in(a)) for t, tie, r, a in reversals)


def encode_customer(customer: Customer) -> dict:
    return {"s": [[ts, order_id, list(owners)]
                  for ts, order_id, owners in zip(customer.sale_times, customer.sales, customer.owners, strict=True)],
            "r": [[ts, slot, str(arr)] for ts, (slot, arr) in zip(customer.retention_times, customer.retention,
                                                                   strict=True)]}


def decode_customer(data: dict) -> Customer:
    return Customer([ts for ts, _, _ in data["s"]], [order_id for _, order_id, _ in data["s"]],
                    [tuple(owners) for _, _, owners in data["s"]], [ts for ts, _, _ in data["r"]],
                    [(slot, Decimal(arr)) for _, slot, arr in data["r"]])


def _encode_referred(sales: list) -> list:
    return [[ts, customer, str(amount)] for ts, customer, amount in sales]


def _decode_referred(data: list) -> list:
    return [(ts, customer, Decimal(amount)) for ts, customer, amount in data]


# record kind -> (the fold's dict of such records by id, encode, decode); orders (with their reversals)
# and relationships (nested one level deeper) have functions of their own.
_Kind = tuple[Callable[[Fold], dict[str, Any]], Callable[[Any], Any], Callable[[Any], Any]]
_KINDS: dict[str, _Kind] = {
    "party": (lambda fold: fold.parties, encode_party, decode_party),
    "customer": (lambda fold: fold.customers, encode_customer, decode_customer),
    "referral": (lambda fold: fold.referrals, list, tuple),
    "referred": (lambda fold: fold.referred_sales, _encode_referred, _decode_referred),
}


def get_record(fold: Fold, key: tuple[str, ...]) -> Any:
    """One record (`("party", id)`, `("relationship", party, counterparty)`, …) as JSON-ready data, or None."""
    if key[0] == "relationship":
        parts = fold.relationship(key[1], key[2])
        return None if parts is None else encode_relationship(parts)
    if key[0] == "order":
        return get_order(fold, key[1])
    records, encode, _ = _KINDS[key[0]]
    record = records(fold).get(key[1])
    return None if record is None else encode(record)


def put_record(fold: Fold, key: tuple[str, ...], data: Any) -> None:
    """Set one record from `get_record` data; None removes it."""
    if key[0] == "party":
        fold.put_party(key[1], None if data is None else decode_party(data))
    elif key[0] == "order":
        put_order(fold, key[1], data)
    else:
        decode: Callable[[Any], Any]
        if key[0] == "relationship":
            records, decode, name = fold.relationships.setdefault(key[1], {}), decode_relationship, key[2]
        else:
            accessor, _, decode = _KINDS[key[0]]
            records, name = accessor(fold), key[1]
        if data is None:
            records.pop(name, None)
        else:
            records[name] = decode(data)


def put_stored(fold: Fold, key: tuple[str, ...], text: str, loads: Callable[[str], Any] = json.loads) -> None:
    """`put_record` of a record's JSON text (read by `loads`), for a fold loaded from a store: a relationship
    stays its text until the fold first reads it (`Fold.relationship`). A processor's partition of a year of
    history holds hundreds of thousands of relationships, few of which a worker touches soon after it starts:
    decoding them all was over half of its load."""
    if key[0] == "relationship":
        fold.decode_parts = _decode_relationship_text
        fold.relationships.setdefault(key[1], {})[key[2]] = text
    else:
        put_record(fold, key, loads(text))


def _decode_relationship_text(text: str) -> dict:
    return decode_relationship(json.loads(text))


def record_keys(fold: Fold) -> list[tuple[str, ...]]:
    """The key of every record in `fold`."""
    keys: list[tuple[str, ...]] = [(kind, name) for kind, (records, _, _) in _KINDS.items() for name in records(fold)]
    keys += [("order", order_id) for order_id in {**fold.orders, **fold.reversals}]
    keys += [("relationship", party, cp) for party, mine in fold.relationships.items() for cp in mine]
    return keys


def encode_fold(fold: Fold) -> dict:
    """The whole state, as plain JSON-ready data."""
    return {"format": FORMAT, "provider_id": fold.provider_id,
            "records": [[list(key), get_record(fold, key)] for key in record_keys(fold)]}


def decode_fold(data: dict) -> Fold:
    """A fold from `encode_fold` output (after a JSON round trip or not)."""
    if data.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} snapshot")
    fold = Fold(data["provider_id"])
    for key, record in data["records"]:
        put_record(fold, tuple(key), record)
    return fold
