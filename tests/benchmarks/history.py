"""A generated year of history: a realistic mix of every event type over many relationships."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from shared.events import Event, parse_event

START = datetime(2026, 1, 1, tzinfo=UTC)


def raw_history(events: int, customers: int, seed: int = 7) -> Iterator[dict]:
    """`events` CloudEvents (as decoded JSON) over a year, arrival order slightly shuffled in time."""
    rng = random.Random(seed)
    reps = [f"ae-{i}" for i in range(max(10, customers // 40))]
    agents = [f"agent-{i}" for i in range(max(5, customers // 100))]
    partners = [f"partner-{i}" for i in range(max(3, customers // 400))]
    managers = [f"mgr-{i}" for i in range(max(2, len(reps) // 8))]
    n = 0
    for i, party in enumerate(reps + agents):
        role = "account_executive" if party.startswith("ae") else "service_agent"
        yield {
            "specversion": "1.0",
            "id": f"p{i}",
            "source": "hr",
            "type": "party.registered",
            "time": START.isoformat(),
            "data": {"party_id": party, "kind": "workforce", "role": role, "manager_id": managers[i % len(managers)]},
        }
        n += 1
    orders: list[str] = []
    referrals: list[str] = []
    span = 365 * 86400
    while n < events:
        n += 1
        when = (START + timedelta(seconds=rng.randrange(span))).isoformat()
        number = rng.randrange(customers)
        customer = f"cust-{number}"
        roll = rng.random()
        base = {"specversion": "1.0", "id": f"e{n}", "source": "gen", "time": when}
        if roll < 0.40:
            order = f"o{n}"
            orders.append(order)
            rep = reps[number % len(reps)]
            credits = (
                [{"party_id": rep, "share": "1"}]
                if rng.random() < 0.8
                else [{"party_id": rep, "share": "0.6"}, {"party_id": rng.choice(reps), "share": "0.4"}]
            )
            data = {
                "order_id": order,
                "customer_id": customer,
                "amount": f"{rng.randrange(100, 50000)}.{rng.randrange(100):02d}",
                "currency": "USD",
                "margin": f"{rng.randrange(10, 9000)}.50",
                "motion": rng.choice(["new", "new", "upsell", "cross_sell"]),
                "credits": credits,
            }
            if rng.random() < 0.3:
                data["partner_id"] = partners[number % len(partners)]
            if referrals and rng.random() < 0.05:
                data["referral_id"] = rng.choice(referrals)
            yield {**base, "type": "sale.closed", "data": data}
        elif roll < 0.58:
            yield {
                **base,
                "type": "service.case_resolved",
                "data": {
                    "case_id": f"k{n}",
                    "customer_id": customer,
                    "resolver_id": agents[(number + rng.randrange(2)) % len(agents)],
                    "first_contact": rng.random() < 0.7,
                },
            }
        elif roll < 0.72:
            yield {
                **base,
                "type": rng.choice(["retention.renewed"] * 4 + ["retention.churned"]),
                "data": {"contract_id": f"c{n}", "customer_id": customer, "arr": f"{rng.randrange(1000, 90000)}"},
            }
        elif roll < 0.82:
            yield {
                **base,
                "type": "survey.responded",
                "data": {
                    "survey_id": f"s{n}",
                    "customer_id": customer,
                    "about_id": rng.choice([reps[number % len(reps)], agents[number % len(agents)]]),
                    "nps": rng.randrange(11),
                    "csat": rng.randrange(1, 6),
                },
            }
        elif roll < 0.90:
            referral = f"r{n}"
            referrals.append(referral)
            yield {
                **base,
                "type": "referral.made",
                "data": {
                    "referral_id": referral,
                    "referrer_id": rng.choice([customer, partners[number % len(partners)]]),
                    "prospect_id": f"cust-{rng.randrange(customers)}",
                },
            }
        elif orders:
            data = {"order_id": rng.choice(orders)}
            if rng.random() < 0.7:
                data["amount"] = f"{rng.randrange(10, 2000)}"
            yield {**base, "type": "sale.reversed", "data": data}


def history(events: int, customers: int, seed: int = 7) -> list[Event]:
    return [parse_event(raw) for raw in raw_history(events, customers, seed)]


__all__ = ["history", "raw_history"]
