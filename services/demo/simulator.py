"""Simulated source systems: a CRM, a help desk, surveys, a partner portal and billing, posting to ingest."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx

__all__ = ["Simulator", "roster", "stream"]

log = logging.getLogger(__name__)

REPS = [f"ae-{i}" for i in range(8)]
AGENTS = [f"agent-{i}" for i in range(4)]
MANAGERS = ["mgr-0", "mgr-1"]
PARTNERS = [f"partner-{i}" for i in range(3)]


def _event(seq: int, source: str, kind: str, now: datetime, data: dict) -> dict:
    return {"specversion": "1.0", "id": f"demo-{now:%Y%m%d%H%M%S}-{seq}", "source": source, "type": kind,
            "time": now.isoformat(), "data": data}


def roster(now: datetime) -> list[dict]:
    """The workforce and partners, registered once."""
    people: list[tuple[str, str, str | None, str | None]] = [(m, "workforce", "manager", None) for m in MANAGERS]
    people += [(r, "workforce", "account_executive", MANAGERS[i % 2]) for i, r in enumerate(REPS)]
    people += [(a, "workforce", "service_agent", MANAGERS[0]) for a in AGENTS]
    people += [(p, "partner", None, None) for p in PARTNERS]
    return [_event(i, "hr", "party.registered", now,
                    {k: v for k, v in {"party_id": pid, "kind": kind, "role": role, "manager_id": mgr}.items() if v})
            for i, (pid, kind, role, mgr) in enumerate(people)]


def stream(rng: random.Random, clock: Callable[[], datetime], customers: int = 60) -> Iterator[dict]:
    """An endless, realistic mix of sales, reversals, cases, surveys, referrals and renewals."""
    orders: list[str] = []
    for seq in itertools.count(1000):
        now, number = clock(), rng.randrange(customers)
        customer, rep = f"cust-{number}", REPS[number % len(REPS)]
        roll = rng.random()
        if roll < 0.4:
            order = f"demo-o{seq}-{now:%H%M%S}"
            orders.append(order)
            data = {"order_id": order, "customer_id": customer, "amount": f"{rng.randrange(500, 40000)}.00",
                    "currency": "USD", "margin": f"{rng.randrange(100, 9000)}.00",
                    "motion": rng.choice(["new", "upsell", "cross_sell"]),
                    "credits": [{"party_id": rep, "share": "1"}]}
            if rng.random() < 0.3:
                data["partner_id"] = rng.choice(PARTNERS)
            yield _event(seq, "crm", "sale.closed", now, data)
        elif roll < 0.6:
            yield _event(seq, "helpdesk", "service.case_resolved", now,
                         {"case_id": f"k{seq}", "customer_id": customer, "resolver_id": rng.choice(AGENTS),
                          "first_contact": rng.random() < 0.75, "handle_minutes": rng.randrange(5, 90)})
        elif roll < 0.75:
            yield _event(seq, "surveys", "survey.responded", now,
                         {"survey_id": f"s{seq}", "customer_id": customer, "about_id": rng.choice([rep, *AGENTS]),
                          "nps": rng.randrange(4, 11), "csat": rng.randrange(2, 6)})
        elif roll < 0.85:
            yield _event(seq, "billing", rng.choice(["retention.renewed"] * 5 + ["retention.churned"]), now,
                         {"contract_id": f"c{seq}", "customer_id": customer, "arr": f"{rng.randrange(2000, 60000)}"})
        elif roll < 0.93:
            yield _event(seq, "partner-portal", "referral.made", now,
                         {"referral_id": f"ref{seq}", "referrer_id": rng.choice([customer, *PARTNERS]),
                          "prospect_id": f"cust-{rng.randrange(customers)}"})
        elif orders:
            yield _event(seq, "erp", "sale.reversed", now,
                         {"order_id": rng.choice(orders), "amount": f"{rng.randrange(50, 800)}", "reason": "return"})


class Simulator:
    """Posts the simulated stream to `POST /v1/events` in small batches at about `rate` events per second."""

    def __init__(self, base_url: str, token: str, rate: float = 20.0, seed: int = 2026) -> None:
        self._base_url, self._token, self._rate = base_url, token, rate
        self._rng = random.Random(seed)

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with httpx.AsyncClient(base_url=self._base_url, headers=headers, timeout=30) as client:
            await self._post(client, roster(datetime.now(UTC)))
            events = stream(self._rng, lambda: datetime.now(UTC))
            batch = max(1, int(self._rate))
            while True:
                await self._post(client, list(itertools.islice(events, batch)))
                await asyncio.sleep(1)

    async def _post(self, client: httpx.AsyncClient, events: list[dict]) -> None:
        try:
            response = await client.post("/v1/events", json=events)
            if response.status_code != 202:
                log.warning("demo events refused: %s %s", response.status_code, response.text[:200])
        except httpx.HTTPError as error:
            log.warning("demo events not delivered: %s", error)
