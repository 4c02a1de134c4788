"""Hand-made CloudEvents for tests: raw dicts as a source system would send them, and parsed `Event`s."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from shared.events import Event, parse_event

__all__ = ["at", "case", "churned", "make_event", "raw_event", "referral", "registered", "renewed",
           "reversal", "sale", "survey"]

_ids = itertools.count(1)


def at(when: str) -> str:
    """RFC 3339 text for `when`; a bare date `2026-03-05` means noon UTC that day."""
    return when if "T" in when else f"{when}T12:00:00Z"


def raw_event(type: str, time: str, *, id: str | None = None, source: str = "test", **data: Any) -> dict:
    """A structured-mode CloudEvent as decoded JSON; `id` defaults to a fresh one."""
    return {"specversion": "1.0", "id": id or f"t-{next(_ids)}", "source": source, "type": type,
            "time": at(time), "data": data}


def make_event(type: str, time: str, *, id: str | None = None, source: str = "test", **data: Any) -> Event:
    """A parsed, valid `Event` (settlement currency USD)."""
    return parse_event(raw_event(type, time, id=id, source=source, **data))


def sale(order_id: str, time: str, amount: str, credits: Mapping[str, str] | None = None,
         customer: str = "c-1", **extra: Any) -> Event:
    """A `sale.closed`; `credits` maps party to share (default: all to `ae-1`)."""
    shares = [{"party_id": party, "share": share} for party, share in (credits or {"ae-1": "1"}).items()]
    return make_event("sale.closed", time, order_id=order_id, customer_id=customer, amount=amount,
                      currency="USD", credits=shares, **extra)


def reversal(order_id: str, time: str, amount: str | None = None) -> Event:
    data = {} if amount is None else {"amount": amount}
    return make_event("sale.reversed", time, order_id=order_id, **data)


def registered(party_id: str, kind: str = "workforce", time: str = "2025-01-01", **extra: Any) -> Event:
    return make_event("party.registered", time, party_id=party_id, kind=kind, **extra)


def case(resolver: str, time: str, first_contact: bool = True, customer: str = "c-1") -> Event:
    return make_event("service.case_resolved", time, case_id=f"k-{next(_ids)}", customer_id=customer,
                      resolver_id=resolver, first_contact=first_contact)


def survey(about: str, time: str, customer: str = "c-1", **answers: int) -> Event:
    return make_event("survey.responded", time, survey_id=f"s-{next(_ids)}", customer_id=customer,
                      about_id=about, **answers)


def referral(referral_id: str, time: str, referrer: str, prospect: str, **extra: Any) -> Event:
    return make_event("referral.made", time, referral_id=referral_id, referrer_id=referrer,
                      prospect_id=prospect, **extra)


def _retention(type: str, customer: str, time: str, arr: str) -> Event:
    return make_event(type, time, contract_id=f"ct-{next(_ids)}", customer_id=customer, arr=arr)


def renewed(customer: str, time: str, arr: str) -> Event:
    return _retention("retention.renewed", customer, time, arr)


def churned(customer: str, time: str, arr: str) -> Event:
    return _retention("retention.churned", customer, time, arr)

