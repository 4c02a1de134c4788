"""The fold's state as JSON-ready data, record by record, and back (`fold-state/1`).

Decimals travel as strings and integers as numbers, so a record survives `json.dumps`/`json.loads`
unchanged; tuples come back as tuples where the fold relies on them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.fold import Customer, Fold, Order, Party, Relationship

__all__ = ["FORMAT", "decode_fold", "encode_fold", "get_record", "put_record", "record_keys"]

FORMAT = "fold-state/1"


def _out(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _in(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


def encode_party(party: Party) -> list:
    return [party.kind, party.role, party.manager_id, party.tier, party.name,
            None if party.registered is None else list(party.registered)]


def decode_party(data: list) -> Party:
    *attributes, registered = data
    return Party(*attributes, None if registered is None else tuple(registered))


def encode_relationship(relationship: Relationship) -> dict:
    data: dict[str, Any] = {"d": {str(day): [_out(v) for v in parts] for day, parts in relationship.days.items()}}
    if relationship.pairs:
        data["p"] = [[part, day, other, str(amount)]
                     for (part, day, other), amount in relationship.pairs.items()]
    if relationship.conversions:
        data["c"] = {rid: [day, sorted(days)] for rid, (day, days) in relationship.conversions.items()}
    return data


def decode_relationship(data: dict) -> Relationship:
    relationship = Relationship()
    relationship.days = {int(day): tuple(_in(v) for v in parts) for day, parts in data["d"].items()}
    if "p" in data:
        relationship.pairs = {(part, day, other): Decimal(amount) for part, day, other, amount in data["p"]}
    if "c" in data:
        relationship.conversions = {rid: [day, set(days)] for rid, (day, days) in data["c"].items()}
    return relationship


def encode_order(order: Order) -> list:
    reversals = None if order.reversals is None else [
        [ts, tie, _out(requested), _out(applied)] for ts, tie, requested, applied in order.reversals]
    return [order.ts, order.customer, _out(order.amount), [[p, str(s)] for p, s in order.credits],
            order.partner, reversals]


def decode_order(data: list) -> Order:
    ts, customer, amount, credits, partner, reversals = data
    return Order(ts, customer, _in(amount), tuple((p, Decimal(s)) for p, s in credits), partner,
                 None if reversals is None else [[t, tie, _in(r), _in(a)] for t, tie, r, a in reversals])


def encode_customer(customer: Customer) -> dict:
    return {"s": [list(sale) for sale in customer.sales],
            "r": [[ts, slot, str(arr)] for ts, slot, arr in customer.retention]}


def decode_customer(data: dict) -> Customer:
    return Customer([tuple(sale) for sale in data["s"]],
                    [(ts, slot, Decimal(arr)) for ts, slot, arr in data["r"]])


def _encode_referred(sales: list) -> list:
    return [[ts, customer, str(amount)] for ts, customer, amount in sales]


def _decode_referred(data: list) -> list:
    return [(ts, customer, Decimal(amount)) for ts, customer, amount in data]


# record kind -> (the fold's dict of such records, encode, decode); relationships nest one level deeper.
_KINDS = {
    "party": (lambda fold: fold.parties, encode_party, decode_party),
    "order": (lambda fold: fold.orders, encode_order, decode_order),
    "customer": (lambda fold: fold.customers, encode_customer, decode_customer),
    "referral": (lambda fold: fold.referrals, list, tuple),
    "referred": (lambda fold: fold.referred_sales, _encode_referred, _decode_referred),
}


def get_record(fold: Fold, key: tuple[str, ...]) -> Any:
    """One record (`("party", id)`, `("relationship", party, counterparty)`, …) as JSON-ready data, or None."""
    if key[0] == "relationship":
        relationship = fold.relationships.get(key[1], {}).get(key[2])
        return None if relationship is None else encode_relationship(relationship)
    records, encode, _ = _KINDS[key[0]]
    record = records(fold).get(key[1])
    return None if record is None else encode(record)


def put_record(fold: Fold, key: tuple[str, ...], data: Any) -> None:
    """Set one record from `get_record` data; None removes it."""
    if key[0] == "party":
        fold.put_party(key[1], None if data is None else decode_party(data))
        return
    if key[0] == "relationship":
        records, decode, name = fold.relationships.setdefault(key[1], {}), decode_relationship, key[2]
    else:
        accessor, _, decode = _KINDS[key[0]]
        records, name = accessor(fold), key[1]
    if data is None:
        records.pop(name, None)
    else:
        records[name] = decode(data)
    if key[0] == "order":
        if data is not None and records[name].reversals:
            fold.reversed_orders.add(name)
        else:
            fold.reversed_orders.discard(name)


def record_keys(fold: Fold) -> list[tuple[str, ...]]:
    """The key of every record in `fold`."""
    keys = [(kind, name) for kind, (records, _, _) in _KINDS.items() for name in records(fold)]
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
