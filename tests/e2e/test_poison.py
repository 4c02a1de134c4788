"""Poison: events at and beyond SPEC §2.1's bounds, over HTTP and straight to Kafka, against one running system.

Over HTTP an invalid event is refused (422, 413 for a body over 32 MiB) and changes nothing; over Kafka it is
dead-lettered with its reason (`GET /v1/dead-letters`), `/healthz` stays 200 and the events after it are
processed. A dead letter replayed while still invalid is refused again. Then the small story, on the same
system, still pays every statement to the cent.

The valid events these tests send are dated June 2025, before the story begins, credit parties with no plan
(a workforce party without a role) and buy as customers registered as kind `provider` (no plan either): so
they add no statement and no measure the story checks.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.support.live import run_story, same
from tests.support.scenarios import load_scenario
from tests.support.system import System, running_system

pytestmark = pytest.mark.e2e

PERIOD, WHEN = "2025-06", "2025-06-15T12:00:00Z"
STRUCTURED = "application/cloudevents+json"
MAX_BODY = 32 * 1024 * 1024
SETTLE_TIMEOUT_S = 60
POISON_AMOUNT = "1000.00"  # what an invalid sale would add if it got through


def _event(event_id: str, type: str, data: dict, time: str = WHEN) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "poison", "type": type, "time": time, "data": data}


def _sale_data(order_id: str, party: str, amount: object = POISON_AMOUNT, credits: list | None = None) -> dict:
    return {"order_id": order_id, "customer_id": f"{party}-customer", "amount": amount, "currency": "USD",
            "credits": credits or [{"party_id": party, "share": "1"}]}


def _sale(event_id: str, party: str, **data: object) -> dict:
    """A sale of its own order, by `party`, to `party`'s customer."""
    return _event(event_id, "sale.closed", _sale_data(f"o-{event_id[:60]}", party, **data))


def _text(event: dict) -> str:
    return json.dumps(event)


def _registration(party: str) -> dict:
    """The party's customer, registered as a `provider`: no plan applies to it, so it gets no statement."""
    return _event(f"{party}-customer-registered", "party.registered",
                  {"party_id": f"{party}-customer", "kind": "provider"})


def _invalid(party: str) -> dict[str, str]:
    """Events that SPEC §2.1 makes invalid, by what is wrong with them, as the JSON text a source sends."""
    both = _sale(f"{party}-both", party)
    both["data_base64"] = base64.b64encode(json.dumps(both["data"]).encode()).decode()
    long_id = f"{party}-long-id-".ljust(257, "x")
    return {
        'amount "1e30"': _text(_sale(f"{party}-1e30", party, amount="1e30")),
        "amount 1e30 (a JSON number)": _text(_sale(f"{party}-1e30-number", party, amount="@")).replace(
            '"@"', "1e30"),
        'amount "9E+999999"': _text(_sale(f"{party}-9e999999", party, amount="9E+999999")),
        "amount 9E+999999 (a JSON number)": _text(_sale(f"{party}-9e999999-number", party, amount="@")).replace(
            '"@"', "9E+999999"),
        "time 0001-01-01T00:30:00+01:00": _text(_sale(f"{party}-year-0", party)).replace(
            WHEN, "0001-01-01T00:30:00+01:00"),
        'shares ["1", "1E-40"]': _text(_sale(f"{party}-shares", party, credits=[
            {"party_id": party, "share": "1"}, {"party_id": f"{party}-other", "share": "1E-40"}])),
        "an id of 257 characters": _text(_sale(long_id, party)),
        "both data and data_base64": _text(both),
    }


def _settled_measures(client: httpx.Client, party: str, want: dict[str, str], timeout_s: float = SETTLE_TIMEOUT_S
                      ) -> tuple[bool, object]:
    """Poll the party's June 2025 measures until they equal `want`; (whether they did, what was served last)."""
    deadline, served = time.monotonic() + timeout_s, None
    while True:
        response = client.get(f"/v1/parties/{party}/measures", params={"period": PERIOD, "window": "period"})
        served = response.json().get("measures") if response.status_code == 200 else response.status_code
        if isinstance(served, dict) and all(same(served.get(m, "absent"), v) for m, v in want.items()):
            return True, served
        if time.monotonic() > deadline:
            return False, served
        time.sleep(0.3)


def _answers(client: httpx.Client) -> bool:
    try:
        client.get("/healthz", timeout=5)
    except httpx.TransportError:
        return False
    return True


class NoDeadLetters(AssertionError):
    """`GET /v1/dead-letters` does not exist (404): waiting longer will not help."""


def _dead_letters(client: httpx.Client) -> tuple[list[dict], str | None]:
    """Every dead letter, page by page (oldest first); or what went wrong reading them."""
    items, after = [], None
    while True:
        response = client.get("/v1/dead-letters", params={"limit": 100, **({"after": after} if after else {})})
        if response.status_code == 404:
            raise NoDeadLetters(f"GET /v1/dead-letters answered 404 {response.text[:300]}")
        if response.status_code != 200:
            return items, f"GET /v1/dead-letters answered {response.status_code} {response.text[:300]}"
        page = response.json()
        items += page["items"]
        after = page.get("next_after")
        if after is None:
            return items, None


def _dead_letter_problems(items: list[dict], sent: dict[str, tuple[str, str]], marker: dict[str, str]) -> list[str]:
    """What is missing or wrong among the dead letters of the messages `sent` (name -> (topic, value))."""
    problems = []
    for name, (topic, value) in sent.items():
        exact = [item for item in items if item.get("value") == value]
        if not exact:
            near = [item for item in items if marker[name] in (item.get("value") or "")]
            problems.append(f"{name}: not dead-lettered" if not near else
                            f"{name}: dead-lettered, but not with the message value as sent: {near[0]}")
            continue
        item = exact[0]
        if not item.get("reason"):
            problems.append(f"{name}: dead-lettered without a reason: {item}")
        if item.get("topic") != topic:
            problems.append(f"{name}: dead-lettered as read from {item.get('topic')!r}, it was sent to {topic!r}")
    return problems


async def _produce(bootstrap: str, messages: list[tuple[str, str]]) -> None:
    """Produce (topic, value) messages in structured mode, each acknowledged by the broker, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for topic, value in messages:
            await producer.send_and_wait(topic, value.encode(), key=b"poison",
                                         headers=[("content-type", STRUCTURED.encode())])
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One system on SQLite for the whole module, with the small story's plans."""
    tmp: Path = tmp_path_factory.mktemp("poison")
    with running_system(tmp, load_scenario("small").plans_dir) as system:
        yield system


def test_invalid_events_over_http_are_refused_and_change_nothing(system: System) -> None:
    party, problems = "poison-ae-http", []
    with system.client() as client:
        def post(body: str | bytes) -> httpx.Response:
            return client.post("/v1/events", content=body, headers={"Content-Type": STRUCTURED})

        assert post(_text(_registration(party))).status_code == 202
        for name, body in _invalid(party).items():
            try:
                response = post(body)
            except httpx.TransportError as error:
                health = client.get("/healthz", timeout=5).status_code if _answers(client) else "no answer"
                problems.append(f"{name}: no answer ({error!r}); /healthz then: {health}")
                continue
            if response.status_code != 422:
                problems.append(f"{name}: expected 422, got {response.status_code} {response.text[:300]}")
            elif not (response.json().get("errors") or [{}])[0].get("error"):
                problems.append(f"{name}: a 422 without a per-event error: {response.text[:300]}")
        padded = _text(_sale(f"{party}-huge", party)).encode().ljust(MAX_BODY + 1)  # valid JSON, one byte too many
        response = post(padded)
        if response.status_code != 413:
            problems.append(f"a body of 32 MiB + 1 byte: expected 413, got {response.status_code} "
                            f"{response.text[:300]}")

        valid = _sale(f"{party}-valid", party, amount="100.00")
        assert post(_text(valid)).status_code == 202
        encoded = _sale(f"{party}-base64", party, amount="10.00")
        encoded["data_base64"] = base64.b64encode(json.dumps(encoded.pop("data")).encode()).decode()
        response = post(_text(encoded))
        base64_accepted = response.status_code == 202 and response.json().get("accepted") == 1
        if not base64_accepted:
            problems.append(f"a valid event as data_base64: expected 202 accepted 1, got {response.status_code} "
                            f"{response.text[:300]}")
        # nothing but the valid sales that were accepted counts for the party
        want = {"revenue": "110.00", "deals": "2"} if base64_accepted else {"revenue": "100.00", "deals": "1"}
        settled, served = _settled_measures(client, party, want)
        if not settled:
            problems.append(f"{party}'s measures are not those of its accepted sales {want} within "
                            f"{SETTLE_TIMEOUT_S} s: {served}")
    assert not problems, "\n".join(problems)


async def test_invalid_events_over_kafka_are_dead_lettered_and_the_stream_goes_on(system: System) -> None:
    party, problems = "poison-ae-kafka", []
    sales, service = "convergence.events.sales", "convergence.events.service"
    sent = {name: (sales, value) for name, value in _invalid(party).items()}
    sent["a value that is not JSON"] = (sales, f'not JSON: {party}-garbage {{"specversion": "1.0", ')
    sent["a valid sale on the service topic"] = (service, _text(_sale(f"{party}-wrong-topic", party)))
    marker = {name: value[value.index(party):][:60] for name, (_, value) in sent.items()}
    await _produce(system.bootstrap, [*sent.values(), ("convergence.events.parties", _text(_registration(party))),
                                      (sales, _text(_sale(f"{party}-valid", party, amount="100.00")))])

    with system.client() as client:
        unhealthy = []
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:  # until every poison is dead-lettered (or time runs out), /healthz must answer 200 throughout
            health = client.get("/healthz")
            if health.status_code != 200:
                unhealthy.append(f"{health.status_code} {health.text[:200]}")
            try:
                items, unreadable = _dead_letters(client)
            except NoDeadLetters as error:
                items, unreadable = [], str(error)
                break
            if not (unreadable or _dead_letter_problems(items, sent, marker)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        problems += [unreadable] if unreadable else _dead_letter_problems(items, sent, marker)
        if unhealthy:
            problems.append(f"/healthz did not stay 200 ({len(unhealthy)} times), e.g. {unhealthy[0]}")
        settled, served = _settled_measures(client, party, {"revenue": "100.00", "deals": "1"})
        if not settled:
            problems.append(f"the valid sale sent after the poison: {party}'s measures are not revenue 100.00, "
                            f"deals 1 within {SETTLE_TIMEOUT_S} s: {served}")
        health = client.get("/healthz")
        if health.status_code != 200:
            problems.append(f"/healthz after the poison: {health.status_code} {health.text[:300]}")
    assert not problems, "\n".join(problems)


async def test_replaying_a_dead_letter_that_is_still_invalid_is_refused_and_an_unknown_one_is_404(
        system: System) -> None:
    party = "poison-ae-replay"
    value = _text(_sale(f"{party}-1e30", party, amount="1e30"))
    await _produce(system.bootstrap, [("convergence.events.sales", value)])
    with system.client() as client:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            items, unreadable = _dead_letters(client)
            mine = [item for item in items if item.get("value") == value]
            if mine:
                break
            assert time.monotonic() < deadline, (f"the poison sent to Kafka is not among the dead letters within "
                                                 f"{SETTLE_TIMEOUT_S} s: {unreadable or items[-5:]}")
            time.sleep(0.5)
        response = client.post(f"/v1/dead-letters/{mine[0]['id']}/replay")
        assert response.status_code == 422, response.text
        assert response.json()["errors"] and response.json()["error"], response.text
        unknown = max(item["id"] for item in items) + 1_000_000
        response = client.post(f"/v1/dead-letters/{unknown}/replay")
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"], response.text


async def test_the_small_story_still_pays_every_statement_to_the_cent_after_the_poison(system: System) -> None:
    await run_story(system, load_scenario("small"))
