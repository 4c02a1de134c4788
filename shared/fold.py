"""The fold: every accepted event, in any arrival order, into per-relationship daily measure parts.

One `Fold` holds the state (plain data; see `shared.snapshot` for its JSON form) and `apply` adds one
event in O(size of what it touches). Lookups between events (an order for its reversal, a referral for
a sale, a customer's owners) are by event time over everything applied so far: a late event retracts
and re-adds the parts it changes, so the state is always the fold of all events in event-time order.

The bulk of the state (relationships, orders, reversals, referrals) is dicts and tuples of numbers and
strings only. CPython's garbage collector stops tracking such containers, so a year of history costs
it nothing; as objects of classes (always tracked) the same state kept a third of the fold's time in
the collector. A relationship is one dict of parts:

* `day` (UTC day index) -> tuple of sums in `SLOTS` order, only as long as the day's events reached;
* `(REVERSED, day, order day)` -> amount reversed that day of an order of that day;
* `(REFERRED, referral id, sale day)` -> (referral day, revenue) of sales to the customer it referred.

**Partitions.** Every record belongs to one key: a party's parties and relationships to the party, an
order (with its reversals) to the order, a customer's timelines to the customer, a referral to the
referral. A `Fold` may hold the records of one partition of the keys only (`partition` of `partitions`,
by `partition_of`). An event is applied where its home key (`home_key`) lives; whatever it changes under
another key is a *message* (a plain tuple whose second element is that key, see `MESSAGE_KINDS`), applied
at once when the key is local and otherwise put in `outbox`, for the owner to `receive`. Messages only
add to sums or insert into timelines, so they may arrive in any order; a fold of one partition (the
default) receives all of them at once and is the whole fold.

Speed: `make compile` builds this module with mypyc (README, "Benchmarks"), so its annotations are
enforced at run time. Handlers read an event's fields with `vars(event.data)`: a pydantic model's own
attribute access goes through its `__getattr__` hook, which measured about 360 instructions per field,
against about 140 for a lookup in `vars()`.
"""

from __future__ import annotations

import sys
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from decimal import Decimal
from operator import add
from typing import Any, NamedTuple

from shared.events import Event, PartyKind
from shared.measures import (
    CASES,
    CHURNED,
    CSAT_N,
    CSAT_SUM,
    DETRACTORS,
    EVENTS,
    NPS_N,
    PROMOTERS,
    REFERRALS_MADE,
    RENEWED,
    SLOTS,
    Totals,
)
from shared.periods import DAY_US, Window

__all__ = ["MESSAGE_KINDS", "REFERRED", "REVERSED", "Conflict", "Customer", "Fold", "Order", "Party", "Registration",
           "Span", "home_key", "partition_of", "spans_within"]

REVERSED, REFERRED = "rv", "rr"  # the two kinds of relationship parts keyed by two times
_intern = sys.intern


# the field of an event's data that holds its home key: the record it is applied to first
_HOME_FIELDS = {"party": "party_id", "sale": "order_id", "referral": "referral_id",
                "service": "customer_id", "survey": "customer_id", "retention": "customer_id"}

# What a fold sends to the owner of another key (the tuple's first element, then that key):
# ("add", party, counterparty, day, sums), ("reverse", party, counterparty, day, order day, amount, counted),
# ("refer", referrer, customer, referral id, sale day, referral day, amount), ("seen", party, kind),
# ("own", customer, sale time, order id, owners), ("referred", referral id, sale time, customer, amount)
MESSAGE_KINDS = ("add", "reverse", "refer", "seen", "own", "referred")


def home_key(event: Event) -> str:
    """The key an event is applied to first: the id that orders it with the events it depends on."""
    return getattr(event.data, _HOME_FIELDS[event.type.split(".", 1)[0]])


def partition_of(key: str, partitions: int) -> int:
    """The partition a key belongs to (CRC-32: the same in every process, unlike `hash`)."""
    return zlib.crc32(key.encode()) % partitions


class Conflict(ValueError):
    """A valid event that contradicts one already accepted (SPEC §2.2); it is rejected."""


Registration = tuple  # (event time, source, id, kind, role, manager id, tier, name) of a `party.registered`
Span = tuple  # (first day or None, day after the last or None): UTC days, None where open


class Party:
    """A party's attributes, effective-dated (SPEC §2.3): its registrations, each in force from the UTC day of its
    event time until the day of the next one (by event time, then by source and id); before the first, the first's.

    The attribute fields are those of the latest registration (or, with none, the kind the party was inferred
    as from the field it first appeared in); `on` gives them as they were on a given day."""

    __slots__ = ("kind", "manager_id", "name", "registrations", "role", "tier")

    def __init__(self, kind: str, role: str | None = None, manager_id: str | None = None,
                 tier: str | None = None, name: str | None = None, registrations: tuple = ()):
        self.kind, self.role, self.manager_id = kind, role, manager_id
        self.tier, self.name = tier, name
        self.registrations: tuple[Registration, ...] = registrations  # in order: the last is in force last

    @classmethod
    def registered(cls, registrations: tuple[Registration, ...]) -> Party:
        """A party with these (ordered, at least one) registrations."""
        _, _, _, kind, role, manager_id, tier, name = registrations[-1]
        return cls(kind, role, manager_id, tier, name, registrations)

    def with_registration(self, registration: Registration) -> Party:
        """This party with one more registration (itself when it has that one already)."""
        registrations = self.registrations
        at = bisect_left(registrations, registration[:3], key=_registration_key)
        if at < len(registrations) and registrations[at][:3] == registration[:3]:
            return self
        return Party.registered((*registrations[:at], registration, *registrations[at:]))

    def on(self, day: int) -> Party:
        """The attributes in force on UTC day `day` (without registrations of their own)."""
        registrations = self.registrations
        if not registrations:
            return self
        at = max(bisect_right(registrations, day, key=_registration_day) - 1, 0)
        _, _, _, kind, role, manager_id, tier, name = registrations[at]
        return Party(kind, role, manager_id, tier, name)

    def managers(self) -> set[str]:
        """Every manager the party reports to on some day."""
        managers = {registration[5] for registration in self.registrations if registration[5]}
        if self.manager_id:
            managers.add(self.manager_id)
        return managers

    def days_under(self, manager_id: str) -> list[Span]:
        """The spans of days on which the party's manager in force is `manager_id`."""
        registrations = self.registrations
        if not registrations:
            return [(None, None)] if self.manager_id == manager_id else []
        spans: list[Span] = []
        for index, registration in enumerate(registrations):
            first = None if index == 0 else _registration_day(registration)
            last = _registration_day(registrations[index + 1]) if index + 1 < len(registrations) else None
            if registration[5] != manager_id or (first is not None and last is not None and last <= first):
                continue
            if spans and spans[-1][1] == first:
                spans[-1] = (spans[-1][0], last)
            else:
                spans.append((first, last))
        return spans


def _registration_key(registration: Registration) -> tuple:
    return registration[:3]


def _registration_day(registration: Registration) -> int:
    return registration[0] // DAY_US


class Order(NamedTuple):
    """A closed sale as needed later: for its reversals and its customer's owners.

    `Fold.orders` stores the plain tuple (a named tuple stays tracked by the collector); `Fold.order`
    gives this view of it.
    """

    ts: int
    customer: str
    amount: Decimal
    credits: tuple[tuple[str, Decimal], ...]  # (party, share), each party once (see SaleClosed)
    partner: str | None

    @property
    def owners(self) -> list[str]:
        """Every party credited on the order, and its partner of record."""
        return _owners(self)


def _owners(order: tuple) -> list[str]:
    _, _, _, credits, partner = order
    owners = [party for party, _ in credits]
    if partner and partner not in owners:
        owners.append(partner)
    return owners


def _add_window(totals: Totals, parts: dict, window: Window, low: int, high: int) -> None:
    """Add one relationship's parts inside `window` to `totals`, those of the days `low <= day < high` only (a
    span of the window): the day of an event, of a reversal (its order's day in the window), of a referred sale."""
    start, end = window.start_day, window.end_day
    sums = totals.sums
    for key, value in parts.items():
        if key.__class__ is int:
            if low <= key < high:
                for slot, amount in enumerate(value):
                    if amount:
                        sums[slot] += amount
        elif key[0] == REVERSED:
            if low <= key[1] < high and start <= key[2] < end:
                totals.reversed += value
        elif low <= key[2] < high and value[0] < end:  # the sale in the span, its referral before the window's end
            totals.referral_revenue += value[1]
            totals.converted.add(key[1])


def spans_within(window: Window, spans: list[Span] | None) -> list[tuple[int, int]]:
    """The days of `window` inside `spans` (None: the whole window), as non-empty `(low, high)` day ranges."""
    start, end = window.start_day, window.end_day
    if spans is None:
        return [(start, end)] if start < end else []
    ranges = []
    for first, last in spans:
        low, high = start if first is None else max(start, first), end if last is None else min(end, last)
        if low < high:
            ranges.append((low, high))
    return ranges


_ZEROS = tuple((0,) * length for length in range(len(SLOTS)))


def _sums(slot: int, value: object, events: int = 1) -> tuple:
    """The shortest `SLOTS`-ordered tuple with `value` in `slot` (not `EVENTS`) and an event count."""
    return (events, *_ZEROS[slot - 1], value)


def _count_event(parts: dict, day: Any) -> None:
    """One more event on the day in a relationship's parts, for a part keyed by two times."""
    old = parts.get(day)
    parts[day] = (1,) if old is None else (old[0] + 1, *old[1:])


_WHOLE = Decimal(1)
_REFERRAL_MADE = _sums(REFERRALS_MADE, 1)
_CASE = {first: (*_sums(CASES, 1), int(first)) for first in (False, True)}  # the slot after CASES: FIRST_CONTACT


class Customer:
    """A customer's sales (for ownership) and retention events (re-attributed when a late sale lands), each
    as a list of event times (ints: quick to search) beside a list of what happened then."""

    __slots__ = ("owners", "retention", "retention_times", "sale_times", "sales")

    def __init__(self, sale_times: list | None = None, sales: list | None = None, owners: list | None = None,
                 retention_times: list | None = None, retention: list | None = None) -> None:
        self.sale_times: list[int] = sale_times or []  # ascending; equal times by order id
        self.sales: list[str] = sales or []  # order ids
        self.owners: list[tuple[str, ...]] = owners or []  # each sale's owners (`Order.owners`)
        self.retention_times: list[int] = retention_times or []  # ascending; equal times in arrival order
        self.retention: list[tuple[int, Decimal]] = retention or []  # (slot, arr)


class Fold:
    """The state of all accepted events; `apply` folds in one more."""

    def __init__(self, provider_id: str = "provider", track_changes: bool = False, partition: int = 0,
                 partitions: int = 1) -> None:
        self.provider_id = provider_id
        self.partition, self.partitions = partition, partitions
        self.outbox: list[tuple] = []  # messages for keys of other partitions, in the order they were sent
        # (record kind, key...) of every record changed since the owner last cleared it, when tracked:
        # ("party", id), ("relationship", party, counterparty), ("order", id), ("customer", id),
        # ("referral", id), ("referred", referral id)
        self.changed: set[tuple[str, ...]] | None = set() if track_changes else None
        self.parties: dict[str, Party] = {}  # written through `put_party`, which keeps `direct_reports`
        self._reports: dict[str, set[str]] = {}
        # party -> counterparty -> parts (see above), or their stored text until first read (`relationship`)
        self.relationships: dict[str, dict[str, Any]] = {}
        self.decode_parts: Callable[[str], dict] | None = None  # set by whoever stores texts there
        self.orders: dict[str, tuple] = {}  # order id -> `Order` fields
        # order id -> ((event time, "source/id", requested amount or None, applied or None), ...) by time;
        # also for an order that has not arrived yet
        self.reversals: dict[str, tuple[tuple, ...]] = {}
        self.customers: dict[str, Customer] = {}
        self.referrals: dict[str, tuple[str, int]] = {}  # referral id -> (referrer, event time)
        self.referred_sales: dict[str, list[tuple[int, str, Decimal]]] = {}  # unknown referral id -> sales
        self._days: dict = {}  # each day index stored once
        # the credits of the last order credited to the same parties: party id, or tuple of party ids -> credits
        self._credit_lists: dict[object, tuple[tuple[str, Decimal], ...]] = {}
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
        self._receivers = {"add": self._on_add, "reverse": self._on_reverse, "refer": self._on_refer,
                           "seen": self._on_seen, "own": self._on_own, "referred": self._on_referred}

    # ---- applying events -------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one accepted, not-duplicate event in, at its home key (`owns(home_key(event))`); raises
        `Conflict` (and changes nothing, sends nothing) if it clashes."""
        self._handlers[event.type](event)

    def receive(self, message: tuple) -> None:
        """Apply a message another partition's fold sent for a key of this one."""
        self._receivers[message[0]](message)

    def owns(self, key: str) -> bool:
        """Whether `key`'s records belong to this fold."""
        return self.partitions == 1 or partition_of(key, self.partitions) == self.partition

    def _add_to(self, party: str, counterparty: str, day: Any, sums: tuple) -> None:
        """`_add` where the party's records are: here at once (the hot path: no message is built), or by an
        "add" message."""
        if self.partitions == 1 or partition_of(party, self.partitions) == self.partition:
            self._add(party, counterparty, day, sums)
        else:
            self.outbox.append(("add", party, counterparty, day, sums))

    def _send(self, message: tuple) -> None:
        if self.partitions == 1 or partition_of(message[1], self.partitions) == self.partition:
            self._receivers[message[0]](message)
        else:
            self.outbox.append(message)

    def _day(self, ts: int) -> Any:
        """The UTC day index of `ts`, as the one int object every part of that day shares. (`Any`, not
        `int`: compiled by mypyc, an `int` would be unboxed, then boxed into a new object for each key.)"""
        day = ts // DAY_US
        return self._days.setdefault(day, day)

    def _touch(self, kind: str, key: str) -> None:
        if self.changed is not None:
            self.changed.add((kind, key))

    def _parts(self, party: str, counterparty: str) -> dict:
        """The relationship's parts, created empty if new."""
        if self.changed is not None:
            self.changed.add(("relationship", party, counterparty))
        mine = self.relationships.get(party)
        if mine is None:
            mine = self.relationships[_intern(party)] = {}
        parts = mine.get(counterparty)
        if parts is None:
            parts = mine[_intern(counterparty)] = {}
        elif parts.__class__ is str:
            parts = self._read(mine, counterparty)
        return parts

    def relationship(self, party: str, counterparty: str) -> dict | None:
        """The relationship's parts, None if there is no such relationship."""
        mine = self.relationships.get(party)
        return None if mine is None or counterparty not in mine else self._read(mine, counterparty)

    def _read(self, mine: dict[str, Any], counterparty: str) -> dict:
        """One of a party's relationships (`mine`), decoded first if it is still its stored text."""
        parts = mine[counterparty]
        if parts.__class__ is str:
            assert self.decode_parts is not None, "relationships stored as text need a decoder"
            parts = mine[counterparty] = self.decode_parts(parts)
        return parts

    def _add(self, party: str, counterparty: str, day: Any, sums: tuple) -> None:
        """Add `sums` (a prefix of `SLOTS`) to the relationship's sums of the day."""
        parts = self._parts(party, counterparty)
        old = parts.get(day)
        if old is None:
            parts[day] = sums
        elif len(old) == len(sums):
            parts[day] = tuple(map(add, old, sums))
        elif len(old) > len(sums):
            parts[day] = (*map(add, old, sums), *old[len(sums):])
        else:
            parts[day] = (*map(add, old, sums), *sums[len(old):])

    def _seen(self, party_id: str, kind: PartyKind) -> None:
        """A party seen in an event field: registered as of that kind unless it is known (the check comes
        first: it is the hot path; a party of another partition is never known here, its owner decides)."""
        if party_id not in self.parties:
            self._send(("seen", party_id, kind.value))

    def _credits(self, credited: tuple) -> tuple[tuple[str, Decimal], ...]:
        """A sale's credits as (party, share) pairs: the very tuple of the last order credited the same way,
        found by its parties alone (hashing an order's `Decimal` shares measured about 10,000 instructions)."""
        if len(credited) == 1:  # most sales: one party takes the whole order (shares sum to exactly 1)
            key: object = credited[0].party_id
            credits = self._credit_lists.get(key)
            if credits is None:
                party = _intern(credited[0].party_id)
                credits = self._credit_lists[party] = ((party, _WHOLE),)
            return credits
        pairs = tuple([(credit.party_id, credit.share) for credit in credited])
        key = tuple([party for party, _ in pairs])
        credits = self._credit_lists.get(key)
        if credits != pairs:  # new parties or other shares (`Decimal` equality: no hashing)
            credits = self._credit_lists[key] = tuple([(_intern(party), share) for party, share in pairs])
        return credits

    def _customer(self, customer_id: str) -> Customer:
        """The customer's timelines, created empty if new."""
        self._touch("customer", customer_id)
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = self.customers[_intern(customer_id)] = Customer()
        return customer

    def _registered(self, event: Event) -> None:
        data = vars(event.data)
        party_id = data["party_id"]
        registration = (event.ts, *event.key, data["kind"].value, data["role"], data["manager_id"], data["tier"],
                        data["name"])
        party = self.parties.get(party_id)
        self.put_party(_intern(party_id), Party.registered((registration,)) if party is None
                       else party.with_registration(registration))
        self._touch("party", party_id)

    def _sale(self, event: Event) -> None:
        ts: Any = event.ts  # one int object for the order and the timeline (see `_day`)
        data = vars(event.data)
        order_id = data["order_id"]
        if order_id in self.orders:
            raise Conflict(f"data.order_id: order {order_id!r} was already closed by another event")
        customer, partner, amount = _intern(data["customer_id"]), data["partner_id"], data["amount"]
        credits = self._credits(data["credits"])
        if partner:
            partner = _intern(partner)
        order = self.orders[order_id] = (ts, customer, amount, credits, partner)
        self._touch("order", order_id)
        self._seen(customer, PartyKind.CUSTOMER)
        day, margin = self._day(ts), data["margin"] or 0
        upsell = data["motion"] != "new"
        whole = (1, amount, 1, margin, amount) if upsell else (1, amount, 1, margin)
        for party, share in credits:
            self._seen(party, PartyKind.WORKFORCE)
            if share == 1:
                self._add_to(party, customer, day, whole)
            else:
                credited = amount * share
                self._add_to(party, customer, day, (1, credited, 1, margin * share, credited if upsell else 0))
        if partner:
            self._seen(partner, PartyKind.PARTNER)
            self._add_to(partner, customer, day, whole)
        self._add_to(customer, self.provider_id, day, whole)
        referral_id = data["referral_id"]
        if referral_id:
            self._send(("referred", referral_id, ts, customer, amount))
        self._send(("own", customer, ts, order_id, tuple(_owners(order))))
        if order_id in self.reversals:
            self._settle_reversals(order_id)

    def _retention(self, event: Event, slot: int) -> None:
        ts, data = event.ts, vars(event.data)
        customer_id = data["customer_id"]
        self._seen(customer_id, PartyKind.CUSTOMER)
        customer = self._customer(customer_id)
        at = bisect_right(customer.retention_times, ts)  # after equal times
        customer.retention_times.insert(at, ts)
        customer.retention.insert(at, (slot, data["arr"]))
        day, parts = self._day(ts), _sums(slot, data["arr"])
        for owner in self.owners_at(customer_id, ts):
            self._add_to(owner, customer_id, day, parts)
        self._add_to(customer_id, self.provider_id, day, parts)

    def _renewed(self, event: Event) -> None:
        self._retention(event, RENEWED)

    def _churned(self, event: Event) -> None:
        self._retention(event, CHURNED)

    def _reversal(self, event: Event) -> None:
        data = vars(event.data)
        order_id = data["order_id"]
        reversal = (event.ts, "/".join(event.key), data["amount"], None)
        reversals = self.reversals.get(order_id, ())
        at = bisect_right(reversals, reversal[:2])  # (time, key) are unique: no reversal compares equal
        self.reversals[order_id] = (*reversals[:at], reversal, *reversals[at:])
        self._touch("order", order_id)
        if order_id in self.orders:
            self._settle_reversals(order_id)

    def _settle_reversals(self, order_id: str) -> None:
        """Re-apply an order's reversals in event-time order; each takes at most what is left."""
        order = self.orders[order_id]
        left, settled = order[2], []
        for reversal in self.reversals[order_id]:
            ts, tie, requested, applied = reversal
            amount = left if requested is None else min(requested, left)
            left -= amount
            if applied is None or amount != applied:
                self._reversed_parts(order, ts, amount - (applied or 0), count=applied is None)
                reversal = (ts, tie, requested, amount)
            settled.append(reversal)
        self.reversals[order_id] = tuple(settled)

    def _reversed_parts(self, order: tuple, ts: int, delta: Decimal, count: bool) -> None:
        order_ts, customer, _, credits, partner = order
        day, order_day = self._day(ts), self._day(order_ts)
        for party, share in credits:
            self._send(("reverse", party, customer, day, order_day, delta * share, count))
        if partner:
            self._send(("reverse", partner, customer, day, order_day, delta, count))
        self._send(("reverse", customer, self.provider_id, day, order_day, delta, count))

    def _case(self, event: Event) -> None:
        data = vars(event.data)
        customer = data["customer_id"]
        self._seen(customer, PartyKind.CUSTOMER)
        self._add_to(data["resolver_id"], customer, self._day(event.ts), _CASE[data["first_contact"]])

    def _survey(self, event: Event) -> None:
        ts, data = event.ts, vars(event.data)
        customer, nps, csat = data["customer_id"], data["nps"], data["csat"]
        self._seen(customer, PartyKind.CUSTOMER)
        parts = [0] * (DETRACTORS + 1 if nps is not None else CSAT_SUM + 1)
        parts[EVENTS] = 1
        if csat is not None:
            parts[CSAT_N], parts[CSAT_SUM] = 1, csat
        if nps is not None:
            parts[NPS_N] = 1
            parts[PROMOTERS] = 1 if nps >= 9 else 0
            parts[DETRACTORS] = 1 if nps <= 6 else 0
        self._add_to(data["about_id"], customer, self._day(ts), tuple(parts))

    def _referral(self, event: Event) -> None:
        ts, data = event.ts, vars(event.data)
        referral_id, referrer, prospect = data["referral_id"], data["referrer_id"], data["prospect_id"]
        if referral_id in self.referrals:
            raise Conflict(f"data.referral_id: referral {referral_id!r} is already known from another event")
        self._seen(prospect, PartyKind.CUSTOMER)
        referral = self.referrals[referral_id] = (_intern(referrer), ts)
        self._touch("referral", referral_id)
        if referral_id in self.referred_sales:
            self._touch("referred", referral_id)
        self._add_to(referrer, prospect, self._day(ts), _REFERRAL_MADE)
        for sale_ts, customer, amount in self.referred_sales.pop(referral_id, ()):
            self._referred_sale(referral_id, referral, sale_ts, customer, amount)

    def _referred_sale(self, referral_id: str, referral: tuple[str, int], ts: int, customer: str,
                       amount: Decimal) -> None:
        referrer, referral_ts = referral
        self._send(("refer", referrer, customer, referral_id, self._day(ts), self._day(referral_ts), amount))

    # ---- receiving messages: each changes the records of the key it names ----------------------------

    def _on_add(self, message: tuple) -> None:
        _, party, counterparty, day, sums = message
        self._add(party, counterparty, self._days.setdefault(day, day), sums)

    def _on_reverse(self, message: tuple) -> None:
        _, party, counterparty, day, order_day, amount, counted = message
        day, key = self._days.setdefault(day, day), (REVERSED, day, self._days.setdefault(order_day, order_day))
        parts = self._parts(party, counterparty)
        parts[key] = parts.get(key, 0) + amount
        if counted:
            _count_event(parts, day)

    def _on_refer(self, message: tuple) -> None:
        _, referrer, customer, referral_id, day, referral_day, amount = message
        day = self._days.setdefault(day, day)
        parts = self._parts(referrer, customer)
        key = (REFERRED, referral_id, day)
        revenue = parts[key][1] + amount if key in parts else amount
        parts[key] = (self._days.setdefault(referral_day, referral_day), revenue)
        _count_event(parts, day)

    def _on_seen(self, message: tuple) -> None:
        _, party_id, kind = message
        if party_id not in self.parties:
            self.put_party(_intern(party_id), Party(kind))
            self._touch("party", party_id)

    def _on_referred(self, message: tuple) -> None:
        _, referral_id, ts, customer, amount = message
        referral = self.referrals.get(referral_id)
        if referral is None:
            self.referred_sales.setdefault(referral_id, []).append((ts, customer, amount))
            self._touch("referred", referral_id)
        else:
            self._referred_sale(referral_id, referral, ts, customer, amount)

    def _on_own(self, message: tuple) -> None:
        """Place a sale in its customer's timeline; retention events it now owns move to its owners."""
        _, customer_id, ts, order_id, owners = message
        customer = self._customer(customer_id)
        times, sales = customer.sale_times, customer.sales
        at = bisect_right(times, ts)
        if at and times[at - 1] == ts:  # equal times: the greater order id is the more recent
            at = bisect_right(sales, order_id, bisect_left(times, ts, 0, at), at)
        times.insert(at, ts)
        sales.insert(at, order_id)
        customer.owners.insert(at, owners)
        retention_times = customer.retention_times
        if not retention_times:
            return
        first = bisect_left(retention_times, ts)
        until = times[at + 1] if at + 1 < len(times) else None
        if first == len(retention_times) or (until is not None and retention_times[first] >= until):
            return  # no retention event changes owner
        before = customer.owners[at - 1] if at else ()
        # an owner of both sales would lose and regain the same amounts: only the difference moves
        losing, gaining = [o for o in before if o not in owners], [o for o in owners if o not in before]
        if not (losing or gaining):
            return
        for index in range(first, len(retention_times)):
            event_ts = retention_times[index]
            if until is not None and event_ts >= until:
                break
            slot, arr = customer.retention[index]
            day = self._day(event_ts)
            for owner in losing:
                self._add_to(owner, customer_id, day, _sums(slot, -arr, events=-1))
            for owner in gaining:
                self._add_to(owner, customer_id, day, _sums(slot, arr))

    # ---- reading measures ------------------------------------------------------------------------

    def totals(self, party: str, window: Window, counterparty: str | None = None,
               spans: list[Span] | None = None) -> Totals:
        """Summed parts of a party's relationships (or of one of them) inside `window`, on the days of `spans`
        only when given (`direct_reports`)."""
        totals = Totals()
        mine = self.relationships.get(party, {})
        chosen = list(mine) if counterparty is None else [counterparty] if counterparty in mine else []
        relationships = [self._read(mine, name) for name in chosen]
        for low, high in spans_within(window, spans):
            for parts in relationships:
                _add_window(totals, parts, window, low, high)
        return totals

    def order(self, order_id: str) -> Order | None:
        """The closed order, or None if it has not arrived."""
        order = self.orders.get(order_id)
        return None if order is None else Order(*order)

    def owners_at(self, customer_id: str, ts: int) -> list[str]:
        """The customer's owners at event time `ts`: those of its most recent sale at or before it."""
        customer = self.customers.get(customer_id)
        if customer is None:
            return []
        at = bisect_right(customer.sale_times, ts)
        return list(customer.owners[at - 1]) if at else []

    def put_party(self, party_id: str, party: Party | None) -> None:
        """Set (or, with None, remove) a party, keeping the index of direct reports."""
        old = self.parties.pop(party_id, None)
        if old is not None:
            for manager_id in old.managers():
                self._reports[manager_id].discard(party_id)
        if party is not None:
            self.parties[party_id] = party
            for manager_id in party.managers():
                self._reports.setdefault(manager_id, set()).add(party_id)

    def direct_reports(self, manager_id: str) -> dict[str, list[Span]]:
        """The parties that report to `manager_id` on some day, each with the spans of days it does (SPEC §2.3)."""
        parties = self.parties
        return {report: parties[report].days_under(manager_id) for report in self._reports.get(manager_id, ())}


