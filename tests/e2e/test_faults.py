"""The fault suite: the small story posted by an at-least-once client while parts of `convergence up` are
kill -9'd, then every frozen statement exactly as `expected.json` says and every live measure as the replay's.

SPEC §2.1: an acknowledged event is never lost, whatever crashes, and nothing is counted twice; the ledger is
the record that live state is rebuilt from. Kill steps come from `CONVERGENCE_FAULT_SEED` (default 1234) and
are printed, so a failing run can be repeated: `CONVERGENCE_FAULT_SEED=7 pytest -m faults -s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy.engine import make_url

from services.broker.topics import STREAM
from services.settings import Settings
from services.store.reading import fetch_end_offsets
from tests.support.broker import broker_epoch
from tests.support.databases import database_urls
from tests.support.faults import (
    FIND_TIMEOUT_S,
    AtLeastOnceClient,
    find_child,
    is_broker,
    is_processor,
    kill_9,
    kill_steps,
)
from tests.support.live import (
    assert_live_measures_equal_the_replay,
    assert_live_scorecards_equal_the_replay,
    latest_month,
    live_measures,
    replay_of,
    statements_of,
)
from tests.support.scenarios import Scenario, assert_matches_expected, load_scenario
from tests.support.system import System

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

SEED = int(os.environ.get("CONVERGENCE_FAULT_SEED", "1234"))
BUDGET_S = 230  # every test here is over in less than 4 minutes, or fails
START_TIMEOUT_S = 90
CHECK_RESERVE_S = 45  # kept for the checks after the story
MAX_STRIKE_DELAY_S = 0.05  # a strike lands this long after its step's request left: mid-request, or just after
LIVE_TIMEOUT_S = 60  # for live measures to converge after the story


class Budget:
    """The time a test has left."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, reserve: float = 0) -> float:
        return max(1.0, self.end - reserve - time.monotonic())

    def deadline(self, reserve: float = 0) -> float:
        return time.monotonic() + self.left(reserve)


def ledger_keys(system: System) -> set[tuple[str, str]]:
    """The (source, id) of every event in the system's ledger (its SQLite file, read directly)."""
    with contextlib.closing(sqlite3.connect(make_url(system.env["CONVERGENCE_DATABASE_URL"]).database)) as db:
        return set(db.execute("SELECT source, id FROM events").fetchall())


async def streamed_keys(bootstrap: str, wanted: set[tuple[str, str]], timeout_s: float = 30) -> set[tuple[str, str]]:
    """The (source, id) of the events the relay published into the processor's stream, read until all of
    `wanted` are seen or `timeout_s` passed (Tansu may report end offsets short of a partition's last records:
    no end to wait for)."""
    settings = Settings(kafka_bootstrap=bootstrap, _env_file=None)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    keys: set[tuple[str, str]] = set()
    try:
        partitions = list(await fetch_end_offsets(consumer, [settings.topic(STREAM)]))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not keys >= wanted:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        keys.update((event["source"], event["id"]) for record in records
                                    for _, event in json.loads(record.value).get("events", ()))
        return keys
    finally:
        await consumer.stop()


@contextmanager
def _system(tmp_path: Path, scenario: Scenario, database_url: str | None) -> Iterator[System]:
    """A started system, kill -9'd at the end (these tests are about surviving that; it is also quickest)."""
    system = System(tmp_path, scenario.plans_dir, database_url)
    try:
        system.start(timeout_s=START_TIMEOUT_S)
        yield system
    finally:
        system.kill()


def _assert_story_outcome(system: System, client: AtLeastOnceClient, scenario: Scenario, budget: Budget) -> None:
    """Every frozen statement, rejection and duplicate as `expected.json` says, and live measures as the
    replay's (polled until they converge: live state may still be catching up after the last fault)."""
    print(client.report())
    with system.client() as http:
        unhealthy = client.wait_healthy(budget.deadline(reserve=CHECK_RESERVE_S - 5))
        assert unhealthy is None, f"/healthz after the story: {unhealthy}\n{system.log_tail()}"
        closes = statements_of(http, client.closed)
        measures = live_measures(http, scenario.expected["measures"],
                                 timeout_s=min(LIVE_TIMEOUT_S, budget.left(reserve=15)))
        actual = {"closes": closes, "rejected_steps": sorted(client.refused), "duplicates": client.duplicates,
                  "measures": measures}
        # the small story has no event refused in processing (a conflict): its rejections are all 422s
        assert_matches_expected(actual, scenario.expected)
        assert_live_scorecards_equal_the_replay(http, scenario, measures["period"])


def _run_under_faults(system: System, scenario: Scenario, budget: Budget,
                      strikes: dict[int, tuple[str, Callable[[], object], float]]) -> AtLeastOnceClient:
    lines = scenario.steps_path.read_text().splitlines()
    client = AtLeastOnceClient(system, deadline=budget.deadline(reserve=CHECK_RESERVE_S))
    with client:
        client.drive(lines, range(len(lines)), strikes)
        client.faults.wait()
        client.faults.check()
        _assert_story_outcome(system, client, scenario, budget)
    return client


def _restart_after_kill_9(system: System) -> str:
    before = system.pid
    system.kill()
    system.start(timeout_s=START_TIMEOUT_S)
    return f"convergence up {before} killed, {system.pid} healthy"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_kill_9_of_the_whole_system_three_times_loses_and_doubles_nothing(database: str,
                                                                                tmp_path: Path) -> None:
    budget, scenario = Budget(BUDGET_S), load_scenario("small")
    steps = kill_steps(SEED, 3, len(scenario.steps_path.read_text().splitlines()))
    delays = random.Random(SEED)
    print(f"fault seed={SEED}, kills of the whole convergence up (then a restart) at steps {steps}")
    async for url in database_urls(database, tmp_path):
        with _system(tmp_path, scenario, url) as system:
            strike = ("kill -9 of the whole system", lambda: _restart_after_kill_9(system))
            _run_under_faults(system, scenario, budget,
                              {step: (*strike, delays.uniform(0, MAX_STRIKE_DELAY_S)) for step in steps})


async def test_kill_9_of_the_embedded_broker_twice_loses_and_doubles_nothing(tmp_path: Path) -> None:
    budget, scenario = Budget(BUDGET_S), load_scenario("small")
    steps = kill_steps(SEED, 2, len(scenario.steps_path.read_text().splitlines()))
    delays = random.Random(SEED)
    print(f"fault seed={SEED}, kills of the embedded broker at steps {steps}")
    killed: list[int] = []

    def kill_the_broker(system: System) -> str:
        broker = find_child(system.pid, is_broker, exclude=killed, what="embedded broker (Tansu)")
        kill_9(broker)
        killed.append(broker)
        started = time.monotonic()
        back = find_child(system.pid, is_broker, timeout_s=FIND_TIMEOUT_S, exclude=killed,
                          what="embedded broker (Tansu) started after the kill")
        return f"broker {broker} killed, {back} started {time.monotonic() - started:.1f} s later"

    async for url in database_urls("sqlite", tmp_path):
        with _system(tmp_path, scenario, url) as system:
            strike = ("kill -9 of the embedded broker", lambda: kill_the_broker(system))
            _run_under_faults(system, scenario, budget,
                              {step: (*strike, delays.uniform(0, MAX_STRIKE_DELAY_S)) for step in steps})
            find_child(system.pid, is_broker, timeout_s=10, exclude=killed, what="embedded broker running again")


async def test_kill_9_of_the_processor_three_times_the_last_two_while_it_recovers_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    budget, scenario = Budget(BUDGET_S), load_scenario("small")
    first, second = kill_steps(SEED, 2, len(scenario.steps_path.read_text().splitlines()))
    delays = random.Random(SEED)
    pause = delays.uniform(0.3, 1.5)
    print(f"fault seed={SEED}, kills of the processor at steps {first} and {second}, and again {pause:.2f} s "
          f"after its replacement appears")
    killed: list[int] = []

    def kill_the_processor(system: System) -> tuple[int, int]:
        """kill -9 the processor; (its pid, its replacement's) once the supervisor has started another."""
        processor = find_child(system.pid, is_processor, exclude=killed, what="processor")
        kill_9(processor)
        killed.append(processor)
        return processor, find_child(system.pid, is_processor, timeout_s=FIND_TIMEOUT_S, exclude=killed,
                                     what="processor started after the kill")

    def kill_it_twice(system: System) -> str:
        started = time.monotonic()
        one, replacement = kill_the_processor(system)
        time.sleep(pause)  # it is recovering its state now
        apart = time.monotonic() - started
        two, back = kill_the_processor(system)
        assert two == replacement, (two, replacement)
        return (f"processors {one} and {two} killed {apart:.1f} s apart ({pause:.2f} s after {two} started), "
                f"then {back} started")

    async for url in database_urls("sqlite", tmp_path):
        with _system(tmp_path, scenario, url) as system:
            _run_under_faults(system, scenario, budget, {
                first: ("kill -9 of the processor", lambda: "processor {} killed, {} started".format(
                    *kill_the_processor(system)), delays.uniform(0, MAX_STRIKE_DELAY_S)),
                second: ("kill -9 of the processor, twice", lambda: kill_it_twice(system),
                         delays.uniform(0, MAX_STRIKE_DELAY_S))})
            find_child(system.pid, is_processor, timeout_s=10, exclude=killed, what="processor running again")


async def test_convergence_rebuild_republishes_the_ledger_and_live_state_comes_back(tmp_path: Path) -> None:
    """Half the story, `convergence rebuild` (new topics, the ledger republished), live measures as the
    replay's again, then the rest of the story and every statement as `expected.json` says."""
    budget, scenario = Budget(BUDGET_S), load_scenario("small")
    lines = scenario.steps_path.read_text().splitlines()
    half = len(lines) // 2
    month, replay = latest_month(scenario, half), replay_of(scenario, half)
    async for url in database_urls("sqlite", tmp_path):
        with _system(tmp_path, scenario, url) as system, system.client() as http, \
                AtLeastOnceClient(system, deadline=budget.deadline(reserve=CHECK_RESERVE_S)) as client:
            client.drive(lines, range(half))
            assert_live_measures_equal_the_replay(http, replay, month, timeout_s=30)  # before: the reference
            on_its_broker = Settings(kafka_bootstrap=system.bootstrap, _env_file=None)
            epoch_before = await broker_epoch(on_its_broker)
            rebuilt = system.command("rebuild", timeout_s=budget.left(reserve=CHECK_RESERVE_S + 30))
            print(f"convergence rebuild exited with {rebuilt.returncode}:\n{rebuilt.stdout[-2000:]}\n"
                  f"{rebuilt.stderr[-2000:]}")
            assert rebuilt.returncode == 0, (f"convergence rebuild exited with {rebuilt.returncode}:\n"
                                             f"{rebuilt.stdout[-2000:]}\n{rebuilt.stderr[-2000:]}")
            # new topics (a new broker log), holding every event of the ledger once the command is done
            assert await broker_epoch(on_its_broker) not in (None, epoch_before)
            in_ledger = ledger_keys(system)
            assert in_ledger and await streamed_keys(system.bootstrap, in_ledger) >= in_ledger
            unhealthy = client.wait_healthy(budget.deadline(reserve=CHECK_RESERVE_S))
            assert unhealthy is None, f"/healthz after convergence rebuild: {unhealthy}\n{system.log_tail()}"
            assert_live_measures_equal_the_replay(http, replay, month,
                                                  timeout_s=min(LIVE_TIMEOUT_S, budget.left(reserve=CHECK_RESERVE_S)))
            client.drive(lines, range(half, len(lines)))
            _assert_story_outcome(system, client, scenario, budget)
