"""Which events stand behind a statement line: the events that feed a party's measures in a window."""

from __future__ import annotations

from shared.events import Event
from shared.fold import Fold

__all__ = ["fed_parties"]


def fed_parties(event: Event, fold: Fold) -> set[str]:
    """The parties whose own measures (their side of a relationship) `event` feeds, with lookups in `fold`."""
    data = event.data
    if event.type == "sale.closed":
        fed = {credit.party_id for credit in data.credits} | {data.customer_id}
        if data.partner_id:
            fed.add(data.partner_id)
        if data.referral_id in fold.referrals:
            fed.add(fold.referrals[data.referral_id][0])
        return fed
    if event.type == "sale.reversed":
        order = fold.order(data.order_id)
        return set() if order is None else {*order.owners, order.customer}
    if event.type == "service.case_resolved":
        return {data.resolver_id}
    if event.type == "survey.responded":
        return {data.about_id}
    if event.type == "referral.made":
        return {data.referrer_id}
    if event.type.startswith("retention."):
        return {data.customer_id, *fold.owners_at(data.customer_id, event.ts)}
    return set()
