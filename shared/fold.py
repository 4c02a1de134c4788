"""The fold: every accepted event, in any arrival order, into per-relationship daily measure parts.

One `Fold` holds the state (plain data; see `shared.snapshot` for its JSON form) and `apply` adds one
event in O(size of what it touches). Lookups between events (an order for its reversal, a referral for
a sale, a customer's owners) are by event time over everything applied so far: a late event retracts
and re-adds the parts it changes, so the state is always the fold of all events in event-time order.
"""

from __future__ import annotations

import sys
from bisect import bisect_right, insort
from decimal import Decimal

from shared.events import Event, PartyKind
from shared.measures import (
    CASES,
    CHURNED,
    CSAT_N,
    CSAT_SUM,
    DETRACTORS,
    EVENTS,
    FIRST_CONTACT,
    NPS_N,
    PROMOTERS,
    REFERRALS_MADE,
    RENEWED,
    Totals,
)
from shared.periods import DAY_US, Window

__all__ = ["Conflict", "Fold", "Order", "Party", "Relationship"]

REVERSED, REFERRAL_REVENUE = "rv", "rr"  # parts keyed by two days, see `Relationship.pairs`


class Conflict(ValueError):
    """A valid event that contradicts one already accepted (SPEC §2.2); it is rejected."""


class Party:
    """A party as last registered (by event time), or as inferred from the field it first appeared in."""

    __slots__ = ("kind", "manager_id", "name", "registered", "role", "tier")

    def __init__(self, kind: str, role: str | None = None, manager_id: str | None = None,
                 tier: str | None = None, name: str | None = None, registered: tuple | None = None):
        self.kind, self.role, self.manager_id = kind, role, manager_id
        # (event time, source, id) of the registration in force: the latest by event time, then by key
        self.tier, self.name, self.registered = tier, name, registered


class Relationship:
    """Measure parts of one (party, counterparty) pair.

    `days`: UTC day -> tuple of sums in `SLOTS` order, only as long as the day's events reached.
    `pairs`: (part, day, other day) -> amount, for parts whose window test needs two times (a reversal
    and its order; a referred sale and its referral). `conversions`: referral id -> [referral day, {sale days}].
    """

    __slots__ = ("conversions", "days", "pairs")

    def __init__(self) -> None:
        self.days: dict[int, tuple] = {}
        self.pairs: dict[tuple[str, int, int], Decimal] | None = None
        self.conversions: dict[str, list] | None = None

    def add(self, day: int, parts: tuple) -> None:
        """Add `parts` (a prefix of `SLOTS`) to the day's sums."""
        old = self.days.get(day)
        if old is None:
            self.days[day] = parts
        else:
            longer = old if len(old) > len(parts) else parts
            self.days[day] = tuple(a + b for a, b in zip(old, parts, strict=False)) + longer[
                min(len(old), len(parts)):]

    def add_pair(self, part: str, day: int, other: int, amount: Decimal) -> None:
        if self.pairs is None:
            self.pairs = {}
        key = (part, day, other)
        self.pairs[key] = self.pairs.get(key, 0) + amount

    def add_to(self, totals: Totals, window: Window) -> None:
        """Add this relationship's parts inside `window` to `totals`."""
        start, end = window.start_day, window.end_day
        sums = totals.sums
        for day, parts in self.days.items():
            if start <= day < end:
                for slot, value in enumerate(parts):
                    if value:
                        sums[slot] += value
        if self.pairs:
            for (part, day, other), amount in self.pairs.items():
                if part == REVERSED:
                    if start <= min(day, other) and max(day, other) < end:
                        totals.reversed += amount
                elif start <= day < end and other < end:
                    totals.referral_revenue += amount
        if self.conversions:
            for referral_id, (referral_day, sale_days) in self.conversions.items():
                if referral_day < end and any(start <= day < end for day in sale_days):
                    totals.converted.add(referral_id)


def _at(slot: int, value, events: int = 1) -> tuple:
    """The shortest `SLOTS`-ordered tuple holding `value` at `slot` and an event count."""
    parts = [0] * (slot + 1)
    parts[EVENTS] = events
    parts[slot] = value
    return tuple(parts)


_ONE_EVENT = (1,)


class Order:
    """A sale as needed later: for its reversals and its customer's owners. `ts` is None until it arrives."""

    __slots__ = ("amount", "credits", "customer", "partner", "reversals", "ts")

    def __init__(self, ts: int | None = None, customer: str | None = None, amount: Decimal | None = None,
                 credits: tuple[tuple[str, Decimal], ...] = (), partner: str | None = None,
                 reversals: list[list] | None = None):
        self.ts, self.customer, self.amount = ts, customer, amount
        self.credits, self.partner = credits, partner
        # each reversal: [event time, "source/id" (orders ties), requested amount or None, applied or None]
        self.reversals = reversals

    @property
    def owners(self) -> list[str]:
        """Every party credited on the order, and its partner of record."""
        owners = [party for party, _ in self.credits]  # credits name each party once (see SaleClosed)
        if self.partner and self.partner not in owners:
            owners.append(self.partner)
        return owners


class Customer:
    """A customer's sales (for ownership) and retention events (re-attributed when a late sale lands)."""

    __slots__ = ("retention", "sales")

    def __init__(self, sales: list | None = None, retention: list | None = None) -> None:
        self.sales: list[tuple[int, str]] = sales or []  # (event time, order id), by time
        self.retention: list[tuple[int, int, Decimal]] = retention or []  # (event time, slot, arr)


class Fold:
    """The state of all accepted events; `apply` folds in one more."""

    def __init__(self, provider_id: str = "provider", track_changes: bool = False) -> None:
        self.provider_id = provider_id
        # (record kind, key...) of every record changed since the owner last cleared it, when tracked:
        # ("party", id), ("relationship", party, counterparty), ("order", id), ("customer", id),
        # ("referral", id), ("referred", referral id)
        self.changed: set[tuple[str, ...]] | None = set() if track_changes else None
        self.parties: dict[str, Party] = {}  # written through `put_party`, which keeps `direct_reports`
        self._reports: dict[str, set[str]] = {}
        self.relationships: dict[str, dict[str, Relationship]] = {}
        self.orders: dict[str, Order] = {}
        self.reversed_orders: set[str] = set()
        self.customers: dict[str, Customer] = {}
        self.referrals: dict[str, tuple[str, int]] = {}  # referral id -> (referrer, event time)
        self.referred_sales: dict[str, list[tuple[int, str, Decimal]]] = {}  # unknown referral id -> sales
        self._shared: dict = {}  # equal days and credit lists stored once
        self._handlers = {
            "party.registered": self._registered,
            "sale.closed": self._sale,
            "sale.reversed": self._reversal,
            "service.case_resolved": self._case,
            "survey.responded": self._survey,
            "referral.made": self._referral,
            "retention.renewed": self._renewed,
            "retention.churned": self._churned,
        }

    # ---- applying events -------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one accepted, not-duplicate event in; raises `Conflict` (and changes nothing) if it clashes."""
        self._handlers[event.type](event.ts, event.data, event.key)

    def _day(self, ts: int) -> int:
        day = ts // DAY_US
        return self._shared.setdefault(day, day)

    def _touch(self, *key: str) -> None:
        if self.changed is not None:
            self.changed.add(key)

    def _relationship(self, party: str, counterparty: str) -> Relationship:
        if self.changed is not None:
            self.changed.add(("relationship", party, counterparty))
        mine = self.relationships.get(party)
        if mine is None:
            mine = self.relationships[sys.intern(party)] = {}
        relationship = mine.get(counterparty)
        if relationship is None:
            relationship = mine[sys.intern(counterparty)] = Relationship()
        return relationship

    def _add(self, party: str, counterparty: str, day: int, parts: tuple) -> None:
        self._relationship(party, counterparty).add(day, parts)

    def _known(self, party_id: str, kind: PartyKind) -> None:
        if party_id not in self.parties:
            self.put_party(sys.intern(party_id), Party(kind.value))
            self._touch("party", party_id)

    def _registered(self, ts: int, data, key: tuple[str, str]) -> None:
        party = self.parties.get(data.party_id)
        registered = (ts, *key)
        if party is not None and party.registered is not None and registered < party.registered:
            return  # an older registration than the one in force
        self.put_party(sys.intern(data.party_id), Party(data.kind.value, data.role, data.manager_id, data.tier,
                                                        data.name, registered))
        self._touch("party", data.party_id)

    def _sale(self, ts: int, data, _key: tuple[str, str]) -> None:
        order = self.orders.get(data.order_id)
        if order is not None and order.ts is not None:
            raise Conflict(f"data.order_id: order {data.order_id!r} was already closed by another event")
        if order is None:
            order = self.orders[data.order_id] = Order()
        self._touch("order", data.order_id)
        customer = sys.intern(data.customer_id)
        partner = data.partner_id and sys.intern(data.partner_id)
        credits = tuple((sys.intern(credit.party_id), credit.share) for credit in data.credits)
        order.ts, order.customer, order.amount, order.partner = ts, customer, data.amount, partner
        order.credits = self._shared.setdefault(credits, credits)
        self._known(customer, PartyKind.CUSTOMER)
        day, amount, margin = self._day(ts), data.amount, data.margin or 0
        upsell = data.motion != "new"
        for party, share in order.credits:
            self._known(party, PartyKind.WORKFORCE)
            if share == 1:
                self._add(party, customer, day, (1, amount, 1, margin, amount) if upsell else (1, amount, 1, margin))
            else:
                credited = amount * share
                self._add(party, customer, day, (1, credited, 1, margin * share, credited if upsell else 0))
        parts = (1, amount, 1, margin, amount) if upsell else (1, amount, 1, margin)
        if partner:
            self._known(partner, PartyKind.PARTNER)
            self._add(partner, customer, day, parts)
        self._add(customer, self.provider_id, day, parts)
        if data.referral_id:
            referral = self.referrals.get(data.referral_id)
            if referral is None:
                self.referred_sales.setdefault(data.referral_id, []).append((ts, customer, amount))
                self._touch("referred", data.referral_id)
            else:
                self._referred_sale(data.referral_id, referral, ts, customer, amount)
        self._own(customer, ts, data.order_id)
        if order.reversals:
            self._settle_reversals(order)

    def _referred_sale(self, referral_id: str, referral: tuple[str, int], ts: int, customer: str,
                       amount: Decimal) -> None:
        referrer, referral_ts = referral
        day, referral_day = self._day(ts), self._day(referral_ts)
        relationship = self._relationship(referrer, customer)
        relationship.add_pair(REFERRAL_REVENUE, day, referral_day, amount)
        relationship.add(day, _ONE_EVENT)
        if relationship.conversions is None:
            relationship.conversions = {}
        conversion = relationship.conversions.setdefault(referral_id, [referral_day, set()])
        conversion[1].add(day)

    def _own(self, customer_id: str, ts: int, order_id: str) -> None:
        """Place a sale in its customer's timeline; retention events it now owns move to its owners."""
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = self.customers[customer_id] = Customer()
        self._touch("customer", customer_id)
        sales = customer.sales
        at = bisect_right(sales, (ts, order_id))  # equal times: the greater order id is the more recent
        sales.insert(at, (ts, order_id))
        if not customer.retention:
            return
        retention = customer.retention
        first = bisect_right(retention, ts - 1, key=lambda event: event[0])
        until = sales[at + 1][0] if at + 1 < len(sales) else None
        if first == len(retention) or (until is not None and retention[first][0] >= until):
            return  # no retention event changes owner
        previous = self.orders[sales[at - 1][1]].owners if at else ()
        owners = self.orders[order_id].owners
        for index in range(first, len(retention)):
            event_ts, slot, arr = retention[index]
            if until is not None and event_ts >= until:
                break
            day = self._day(event_ts)
            for owner in previous:
                self._add(owner, customer_id, day, _at(slot, -arr, events=-1))
            for owner in owners:
                self._add(owner, customer_id, day, _at(slot, arr))

    def _retention(self, ts: int, data, slot: int) -> None:
        customer_id = sys.intern(data.customer_id)
        self._known(customer_id, PartyKind.CUSTOMER)
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = self.customers[customer_id] = Customer()
        self._touch("customer", customer_id)
        insort(customer.retention, (ts, slot, data.arr), key=lambda event: event[0])
        day, parts = self._day(ts), _at(slot, data.arr)
        for owner in self.owners_at(customer_id, ts):
            self._add(owner, customer_id, day, parts)
        self._add(customer_id, self.provider_id, day, parts)

    def _renewed(self, ts: int, data, _key: tuple[str, str]) -> None:
        self._retention(ts, data, RENEWED)

    def _churned(self, ts: int, data, _key: tuple[str, str]) -> None:
        self._retention(ts, data, CHURNED)

    def _reversal(self, ts: int, data, key: tuple[str, str]) -> None:
        order = self.orders.get(data.order_id)
        if order is None:
            order = self.orders[data.order_id] = Order()  # the order has not arrived yet
        self._touch("order", data.order_id)
        if order.reversals is None:
            order.reversals = []
        insort(order.reversals, [ts, "/".join(key), data.amount, None], key=lambda reversal: reversal[:2])
        self.reversed_orders.add(data.order_id)
        if order.ts is not None:
            self._settle_reversals(order)

    def _settle_reversals(self, order: Order) -> None:
        """Re-apply an order's reversals in event-time order; each takes at most what is left."""
        left = order.amount
        for reversal in order.reversals:
            ts, _, requested, applied = reversal
            amount = left if requested is None else min(requested, left)
            left -= amount
            if applied is None or amount != applied:
                self._reversed_parts(order, ts, amount - (applied or 0), count=applied is None)
                reversal[3] = amount

    def _reversed_parts(self, order: Order, ts: int, delta: Decimal, count: bool) -> None:
        day, order_day = self._day(ts), self._day(order.ts)
        parts = [(party, delta * share) for party, share in order.credits]
        if order.partner:
            parts.append((order.partner, delta))
        parts.append((order.customer, delta))
        for party, amount in parts:
            counterparty = self.provider_id if party == order.customer else order.customer
            relationship = self._relationship(party, counterparty)
            relationship.add_pair(REVERSED, day, order_day, amount)
            if count:
                relationship.add(day, _ONE_EVENT)

    def _case(self, ts: int, data, _key: tuple[str, str]) -> None:
        customer = sys.intern(data.customer_id)
        self._known(customer, PartyKind.CUSTOMER)
        parts = [0] * (FIRST_CONTACT + 1)
        parts[EVENTS] = parts[CASES] = 1
        parts[FIRST_CONTACT] = 1 if data.first_contact else 0
        self._add(data.resolver_id, customer, self._day(ts), tuple(parts))

    def _survey(self, ts: int, data, _key: tuple[str, str]) -> None:
        customer = sys.intern(data.customer_id)
        self._known(customer, PartyKind.CUSTOMER)
        parts = [0] * (DETRACTORS + 1 if data.nps is not None else CSAT_SUM + 1)
        parts[EVENTS] = 1
        if data.csat is not None:
            parts[CSAT_N], parts[CSAT_SUM] = 1, data.csat
        if data.nps is not None:
            parts[NPS_N] = 1
            parts[PROMOTERS] = 1 if data.nps >= 9 else 0
            parts[DETRACTORS] = 1 if data.nps <= 6 else 0
        self._add(data.about_id, customer, self._day(ts), tuple(parts))

    def _referral(self, ts: int, data, _key: tuple[str, str]) -> None:
        if data.referral_id in self.referrals:
            raise Conflict(f"data.referral_id: referral {data.referral_id!r} is already known from another event")
        prospect = sys.intern(data.prospect_id)
        self._known(prospect, PartyKind.CUSTOMER)
        referral = self.referrals[data.referral_id] = (sys.intern(data.referrer_id), ts)
        self._touch("referral", data.referral_id)
        if data.referral_id in self.referred_sales:
            self._touch("referred", data.referral_id)
        self._add(data.referrer_id, prospect, self._day(ts), _at(REFERRALS_MADE, 1))
        for sale_ts, customer, amount in self.referred_sales.pop(data.referral_id, ()):
            self._referred_sale(data.referral_id, referral, sale_ts, customer, amount)

    # ---- reading measures ------------------------------------------------------------------------

    def totals(self, party: str, window: Window, counterparty: str | None = None) -> Totals:
        """Summed parts of a party's relationships (or of one of them) inside `window`."""
        totals = Totals()
        mine = self.relationships.get(party, {})
        if counterparty is not None:
            relationship = mine.get(counterparty)
            if relationship is not None:
                relationship.add_to(totals, window)
            return totals
        for relationship in mine.values():
            relationship.add_to(totals, window)
        return totals

    def owners_at(self, customer_id: str, ts: int) -> list[str]:
        """The customer's owners at event time `ts`: those of its most recent sale at or before it."""
        customer = self.customers.get(customer_id)
        at = 0 if customer is None else bisect_right(customer.sales, ts, key=lambda sale: sale[0])
        return self.orders[customer.sales[at - 1][1]].owners if at else []

    def put_party(self, party_id: str, party: Party | None) -> None:
        """Set (or, with None, remove) a party, keeping the index of direct reports."""
        old = self.parties.pop(party_id, None)
        if old is not None and old.manager_id:
            self._reports[old.manager_id].discard(party_id)
        if party is not None:
            self.parties[party_id] = party
            if party.manager_id:
                self._reports.setdefault(party.manager_id, set()).add(party_id)

    def direct_reports(self) -> dict[str, set[str]]:
        """Manager id -> its direct reports, from the parties as registered now (read only)."""
        return self._reports
