"""The reference stories through the real system: HTTP ingest, broker, processor, ledger, settlement, query."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.plan_files import load_plans
from shared.events import EventError, parse_event
from shared.money import render
from shared.payouts import MeasureView
from shared.periods import Period
from shared.replay import Replay
from tests.support.databases import database_urls
from tests.support.scenarios import Scenario, assert_matches_expected, load_scenario
from tests.support.system import running_system

pytestmark = pytest.mark.e2e
LIVE_TIMEOUT_S = 120


def _drive(client: httpx.Client, scenario: Scenario) -> tuple[list[int], int, list[str]]:
    """Send every step in order; return the steps refused with 422, the duplicates and the closed periods."""
    refused, duplicates, closed = [], 0, []
    for index, line in enumerate(scenario.steps_path.read_text().splitlines()):
        step = json.loads(line)
        if "action" in step:
            response = client.post(f"/v1/periods/{step['period']}/close")
            assert response.status_code == 200, response.text
            closed.append(step["period"])
            continue
        response = client.post("/v1/events", content=line, headers={"Content-Type": "application/cloudevents+json"})
        if response.status_code == 422:
            refused.append(index)
            assert response.json()["errors"][0]["error"], response.text
        else:
            assert response.status_code == 202, response.text
            duplicates += response.json()["duplicates"]
    return refused, duplicates, closed


def _statement(statement: dict) -> dict:
    return {"lines": statement["lines"], "total": statement["totals"]}


def _same(got: str | None, want: str | None) -> bool:
    if got is None or want is None:
        return got is want
    return got != "absent" and Decimal(got) == Decimal(want)


def _live_measures(client: httpx.Client, expected: dict) -> dict:
    """Party measures from the query API, polled until they equal the expected ones (or time runs out)."""
    period, deadline = expected["period"], time.monotonic() + LIVE_TIMEOUT_S
    while True:
        parties = {}
        for party in expected["parties"]:
            response = client.get(f"/v1/parties/{party}/measures", params={"period": period, "window": "period"})
            parties[party] = response.json().get("measures", {}) if response.status_code == 200 else {}
        live = {"period": period, "window": "period", "parties": parties}
        settled = all(_same(parties[p].get(m, "absent"), v)
                      for p, values in expected["parties"].items() for m, v in values.items())
        if settled or time.monotonic() > deadline:
            return live
        time.sleep(0.5)


async def _dead_lettered(bootstrap: str) -> dict[tuple[str, str], str]:
    """(source, id) -> reason of every event the processor sent to the dead-letter topic."""
    consumer = AIOKafkaConsumer("convergence.events.dead-letter", bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        rejected = {}
        for records in batches.values():
            for record in records:
                event = json.loads(record.value)
                rejected[(event["source"], event["id"])] = dict(record.headers)["error"].decode()
        return rejected
    finally:
        await consumer.stop()


def _assert_live_scorecards_equal_the_replay(client: httpx.Client, scenario: Scenario, period: str) -> None:
    """Every scorecard metric served live equals the same measure computed by `convergence replay`'s code."""
    steps = [json.loads(line, parse_float=Decimal) for line in scenario.steps_path.read_text().splitlines()]
    replay = Replay(load_plans(scenario.plans_dir)).run(steps, clock=lambda: datetime.now(UTC))
    view = MeasureView(replay.fold, Period.parse(period), Period.parse(period).end_ts)
    compared = 0
    for party_id, party in sorted(replay.fold.parties.items()):
        for card in replay.plans.scorecards_for(party_id, party):
            response = client.get(f"/v1/scorecards/{party_id}", params={"period": period})
            assert response.status_code == 200, response.text
            for metric in response.json()["metrics"]:
                mine = render(view.value(party_id, metric["measure"], metric["window"]))
                assert _same(metric["value"], mine), (party_id, card.scorecard, metric, mine)
                compared += 1
    assert compared, "no scorecard metric was compared"


def _assert_lines_list_their_events(client: httpx.Client, scenario: Scenario, period: str, party: str) -> None:
    """The commission line lists every sale credited to the party in the period, and only events of the
    windows it read (the period, and 90 days back for its retention gate)."""
    response = client.get(f"/v1/settlements/{period}/statements/{party}/events")
    assert response.status_code == 200, response.text
    [line] = [x for x in response.json()["lines"] if x["component"] == "commission" and x["kind"] == "payout"]
    listed = {(e["source"], e["id"]) for e in line["events"]}
    events = {}  # every valid event that arrived before that close
    for text in scenario.steps_path.read_text().splitlines():
        step = json.loads(text, parse_float=Decimal)
        if step.get("action") == "close" and step.get("period") == period:
            break
        with contextlib.suppress(EventError):
            event = parse_event(step)
            events[event.key] = event
    start, end = Period.parse(period).start, Period.parse(period).end
    sold = {key for key, event in events.items() if event.type == "sale.closed" and start <= event.time < end
            and any(credit.party_id == party for credit in event.data.credits)}
    assert sold and sold <= listed, sorted(sold - listed)
    assert all(end - timedelta(days=90) <= events[key].time < end for key in listed), sorted(listed)


def _steps_of(scenario: Scenario, keys: set[tuple[str, str]]) -> list[int]:
    steps = [json.loads(line) for line in scenario.steps_path.read_text().splitlines()]
    return [i for i, step in enumerate(steps) if (step.get("source"), step.get("id")) in keys]


async def _run_story(name: str, database: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    async for url in database_urls(database, tmp_path):
        with running_system(tmp_path, scenario.plans_dir, url) as system, system.client() as client:
            refused, duplicates, closed = _drive(client, scenario)
            closes = {}
            for period in closed:
                response = client.get(f"/v1/settlements/{period}")
                assert response.status_code == 200, response.text
                closes[period] = {s["party_id"]: _statement(s) for s in response.json()["statements"] if s["lines"]}
            measures = _live_measures(client, scenario.expected["measures"])
            _assert_live_scorecards_equal_the_replay(client, scenario, measures["period"])
            _assert_lines_list_their_events(client, scenario, closed[0], "ae-1")
            conflicts = _steps_of(scenario, set(await _dead_lettered(system.bootstrap)))
            actual = {"closes": closes, "rejected_steps": sorted(refused + conflicts), "duplicates": duplicates,
                      "measures": measures}
            assert_matches_expected(actual, scenario.expected)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_small_story_pays_every_statement_to_the_cent(database: str, tmp_path: Path) -> None:
    await _run_story("small", database, tmp_path)


@pytest.mark.slow
async def test_quarter_story_pays_every_statement_to_the_cent(tmp_path: Path) -> None:
    await _run_story("quarter", "postgresql", tmp_path)
