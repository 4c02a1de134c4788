"""What a story run through the real system is checked against: frozen statements, live measures, the replay.

The reference for live state is `shared.replay.Replay` (the code of `convergence replay`): the same steps
through the same fold in one process, no broker, no database.
"""

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
from tests.support.scenarios import Scenario, assert_matches_expected
from tests.support.system import System

__all__ = ["LIVE_TIMEOUT_S", "assert_lines_list_their_events", "assert_live_measures_equal_the_replay",
           "assert_live_scorecards_equal_the_replay", "dead_lettered", "drive", "latest_month", "live_measures",
           "replay_of", "run_story", "same", "statements_of", "steps_of"]

LIVE_TIMEOUT_S = 120
MAX_REPORTED = 25


def same(got: str | None, want: str | None) -> bool:
    """An API value (a decimal as text, or null) equals a reference one; `"absent"` never equals anything."""
    if got is None or want is None:
        return got is want
    return got != "absent" and Decimal(got) == Decimal(want)


def _statement(statement: dict) -> dict:
    return {"lines": statement["lines"], "total": statement["totals"]}


def statements_of(client: httpx.Client, periods: list[str]) -> dict[str, dict[str, dict]]:
    """`GET /v1/settlements/{P}` of every period, in `expected.json`'s shape (statements with lines only)."""
    closes = {}
    for period in periods:
        response = client.get(f"/v1/settlements/{period}")
        assert response.status_code == 200, response.text
        closes[period] = {s["party_id"]: _statement(s) for s in response.json()["statements"] if s["lines"]}
    return closes


def live_measures(client: httpx.Client, expected: dict, timeout_s: float = LIVE_TIMEOUT_S) -> dict:
    """Party measures from the query API, polled until they equal the expected ones (or time runs out)."""
    period, deadline = expected["period"], time.monotonic() + timeout_s
    while True:
        parties = {}
        for party in expected["parties"]:
            response = client.get(f"/v1/parties/{party}/measures", params={"period": period, "window": "period"})
            parties[party] = response.json().get("measures", {}) if response.status_code == 200 else {}
        live = {"period": period, "window": "period", "parties": parties}
        settled = all(same(parties[p].get(m, "absent"), v)
                      for p, values in expected["parties"].items() for m, v in values.items())
        if settled or time.monotonic() > deadline:
            return live
        time.sleep(0.5)


def _steps(path: Path, stop: int | None) -> list:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()[:stop]]


def replay_of(scenario: Scenario, stop: int | None = None) -> Replay:
    """The scenario's steps before `stop` (default: all) through `convergence replay`'s code."""
    replay = Replay(load_plans(scenario.plans_dir))
    return replay.run(_steps(scenario.steps_path, stop), clock=lambda: datetime.now(UTC))


def latest_month(scenario: Scenario, stop: int | None = None) -> Period:
    """The month of the latest event time among the valid events before step `stop`."""
    times = []
    for step in _steps(scenario.steps_path, stop):
        if "action" not in step:
            try:
                times.append(parse_event(step).time)
            except EventError:
                continue
    return Period.parse(max(times).strftime("%Y-%m"))


def assert_live_scorecards_equal_the_replay(client: httpx.Client, scenario: Scenario, period: str) -> None:
    """Every scorecard metric served live equals the same measure computed by `convergence replay`'s code."""
    replay = replay_of(scenario)
    view = MeasureView(replay.fold, Period.parse(period), Period.parse(period).end_ts)
    compared = 0
    for party_id, party in sorted(replay.fold.parties.items()):
        for card in replay.plans.scorecards_for(party_id, party):
            response = client.get(f"/v1/scorecards/{party_id}", params={"period": period})
            assert response.status_code == 200, response.text
            for metric in response.json()["metrics"]:
                mine = render(view.value(party_id, metric["measure"], metric["window"]))
                assert same(metric["value"], mine), (party_id, card.scorecard, metric, mine)
                compared += 1
    assert compared, "no scorecard metric was compared"


def _measure_differences(client: httpx.Client, view: MeasureView, parties: list[str], windows: tuple[str, ...]
                         ) -> list[str]:
    problems = []
    for party_id in parties:
        for window in windows:
            response = client.get(f"/v1/parties/{party_id}/measures",
                                  params={"period": str(view.period), "window": window})
            if response.status_code != 200:
                problems.append(f"{party_id} {window}: {response.status_code} {response.text[:200]}")
                continue
            served = response.json()["measures"]
            for measure, value in view.measures(party_id, window)[0].items():
                if not same(served.get(measure, "absent"), render(value)):
                    problems.append(f"{party_id} {window} {measure}: replay {render(value)}, "
                                    f"live {served.get(measure, '<absent>')}")
    return problems


def assert_live_measures_equal_the_replay(client: httpx.Client, replay: Replay, period: Period,
                                          windows: tuple[str, ...] = ("period", "90d"),
                                          timeout_s: float = LIVE_TIMEOUT_S) -> None:
    """Every measure of every party the replay knows, in each window of `period`, equals the replay's.

    Polled until they do: live state converges after the events are acknowledged (or rebuilt)."""
    view = MeasureView(replay.fold, period, period.end_ts)
    parties, deadline = sorted(replay.fold.parties), time.monotonic() + timeout_s
    while problems := _measure_differences(client, view, parties, windows):
        if time.monotonic() > deadline:
            shown = "\n".join(problems[:MAX_REPORTED])
            more = f"\n… and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
            pytest.fail(f"{len(problems)} live measures of {period} still differ from the replay after "
                        f"{timeout_s:.0f} s:\n{shown}{more}", pytrace=False)
        time.sleep(0.5)


async def dead_lettered(bootstrap: str) -> dict[tuple[str, str], str]:
    """(source, id) -> reason of every event the processor sent to the dead-letter topic."""
    consumer = AIOKafkaConsumer("convergence.events.dead-letter", bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        rejected = {}
        for records in batches.values():
            for record in records:
                try:
                    event = json.loads(record.value)
                except (TypeError, ValueError):  # a dead-lettered message that is not even JSON
                    continue
                if isinstance(event, dict) and "source" in event and "id" in event:
                    reason = dict(record.headers).get("error") or b""
                    rejected[(event["source"], event["id"])] = reason.decode(errors="replace")
        return rejected
    finally:
        await consumer.stop()


def steps_of(scenario: Scenario, keys: set[tuple[str, str]]) -> list[int]:
    """The step numbers of the events with these (source, id) keys."""
    steps = [json.loads(line) for line in scenario.steps_path.read_text().splitlines()]
    return [i for i, step in enumerate(steps) if (step.get("source"), step.get("id")) in keys]


def drive(client: httpx.Client, scenario: Scenario) -> tuple[list[int], int, list[str]]:
    """Send every step once, in order; return the steps refused with 422, the duplicates and the closed periods."""
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


def assert_lines_list_their_events(client: httpx.Client, scenario: Scenario, period: str, party: str) -> None:
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


async def run_story(system: System, scenario: Scenario) -> None:
    """The story through a running system, every step once; then every statement, rejection, duplicate and
    expected measure as `expected.json` says, scorecards as the replay, and a line's lineage."""
    with system.client() as client:
        refused, duplicates, closed = drive(client, scenario)
        closes = statements_of(client, closed)
        measures = live_measures(client, scenario.expected["measures"])
        assert_live_scorecards_equal_the_replay(client, scenario, measures["period"])
        assert_lines_list_their_events(client, scenario, closed[0], "ae-1")
        conflicts = steps_of(scenario, set(await dead_lettered(system.bootstrap)))
        actual = {"closes": closes, "rejected_steps": sorted(refused + conflicts), "duplicates": duplicates,
                  "measures": measures}
        assert_matches_expected(actual, scenario.expected)
