"""The stream processor as real subprocesses (1, 2, 3 workers of one group) against a real Tansu: measures, dead
letters, a SIGKILL, a worker joining."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.broker.embedded import free_port
from services.broker.topics import DEAD_LETTER, MEASURES
from services.ledger.relay import Relay
from services.ledger.rows import event_row
from services.records import apply_message
from services.settings import Settings
from services.store.database import opened_database
from services.store.ledger import LedgerStore
from shared.events import EventError, parse_event
from shared.fold import Conflict, Fold
from shared.money import render
from shared.payouts import MeasureView
from shared.periods import Period
from tests.support.scenarios import load_scenario

pytestmark = pytest.mark.integration

DEADLINE_S = 120  # a fresh Faust worker needs a few seconds to join its group; a killed one's session lapses in 10
MARCH = Period.parse("2026-03")  # the small story's


def scenario_events(name: str = "small") -> list[dict]:
    """A scenario's events, plus a sale that reuses an order id (a conflict), in arrival order."""
    raws = [json.loads(line) for line in load_scenario(name).steps_path.read_text().splitlines() if line]
    events = [raw for raw in raws if "action" not in raw]
    first_sale = next(raw for raw in events if raw["type"] == "sale.closed")
    return [*events, {**first_sale, "id": "conflict-1"}]


def reference_fold(raws: list[dict]) -> tuple[Fold, Counter[str]]:
    """The fold of `raws` computed in process (validate, dedup, apply), and its rejections by kind."""
    fold, seen, rejected = Fold(), set(), Counter()
    for raw in raws:
        try:
            event = parse_event(raw)
            if event.key not in seen:
                fold.apply(event)
                seen.add(event.key)
        except EventError:
            rejected["invalid event"] += 1
        except Conflict:
            rejected["conflict"] += 1
    return fold, rejected


def measures_of(fold: Fold, period: Period = MARCH) -> dict[str, dict[str, Decimal | None]]:
    """Every party's measures, and its team's (which read the parties' registrations), over `period`."""
    view = MeasureView(fold, period, period.end_ts)
    return {f"{party}/{scope}": view.measures(party, scope=scope)[0] for party in fold.parties
            for scope in ("self", "team")}


async def publish(settings: Settings, raws: list[dict]) -> None:
    """Valid events into the ledger, and the ledger into the stream, as ingest and the relay do."""
    rows = []
    for raw in raws:
        with contextlib.suppress(EventError):
            rows.append(event_row(parse_event(raw), json.dumps(raw), settings))
    async with opened_database(settings.resolved_database_url) as sessions:
        ledger = LedgerStore(sessions)
        await ledger.append(rows)
        await Relay(settings, ledger).drain(timeout_s=30)


class Processor:
    """`python -m services.processor` as a child process, its output in a file."""

    def __init__(self, settings: Settings, log: IO[bytes], web_port: int | None = None) -> None:
        self.web_port = web_port or free_port()
        env = {**os.environ, "CONVERGENCE_KAFKA_BOOTSTRAP": settings.resolved_kafka_bootstrap,
               "CONVERGENCE_KAFKA_IDEMPOTENT_PRODUCER": "false", "CONVERGENCE_DATA_DIR": str(settings.data_dir),
               "CONVERGENCE_PARTITIONS": str(settings.partitions),
               "CONVERGENCE_DATABASE_URL": settings.resolved_database_url,
               "CONVERGENCE_PROCESSOR_WEB_PORT": str(self.web_port)}
        self.process = subprocess.Popen([sys.executable, "-m", "services.processor"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class Reader:
    """Everything on a topic so far, read without a consumer group."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.records: list = []

    async def poll(self) -> None:
        for records in (await self.consumer.getmany(timeout_ms=200)).values():
            self.records.extend(records)

    def fold(self) -> Fold:
        fold = Fold()
        for record in self.records:
            apply_message(fold, record.key, record.value)
        return fold


@pytest.fixture
def settings(broker_settings: Settings) -> Settings:
    return broker_settings


async def reader(settings: Settings, topic: str) -> Reader:
    consumer = AIOKafkaConsumer(settings.topic(topic), bootstrap_servers=settings.resolved_kafka_bootstrap,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    return Reader(consumer)


@pytest.fixture
def start_processor(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Processor]]:
    """Starts processors on demand (on a web port of their own, or the one given: with the data directory, a
    worker's place); stops them all at the end and prints their output (shown on failure)."""
    started: list[Processor] = []
    with (tmp_path / "processor.log").open("w+b") as log:
        yield lambda web_port=None: started.append(Processor(settings, log, web_port)) or started[-1]
        for processor in started:
            processor.stop()
        log.seek(0)
        sys.stdout.write(log.read().decode(errors="replace")[-5000:])


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds, or fail once the deadline has passed."""
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE_S}s waiting for {what}")


def as_decimals(values: dict[str, str | None]) -> dict[str, Decimal | None]:
    return {name: None if value is None else Decimal(value) for name, value in values.items()}


def caught_up_with(measures: Reader, expected: dict, period: Period = MARCH) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:  # polled: Tansu's end offsets cannot tell when a topic is read
        await measures.poll()
        return measures_of(measures.fold(), period) == expected
    return check


@pytest.mark.parametrize(("name", "workers"), [
    ("small", 1), ("small", 2), ("small", 3), ("reorg", 1), ("reorg", 2), ("reorg", 3),
    pytest.param("quarter", 2, marks=pytest.mark.slow)])
async def test_workers_together_publish_the_reference_measures_and_dead_letter_conflicts(
        settings: Settings, start_processor: Callable[[], Processor], name: str, workers: int) -> None:
    scenario = load_scenario(name)
    period = Period.parse(scenario.expected["measures"]["period"])
    raws = scenario_events(name)
    reference, rejected = reference_fold(raws)
    conflicts = rejected["conflict"]  # what the processor refuses: invalid events never reach the ledger
    await publish(settings, raws)
    measures, dead = await reader(settings, MEASURES), await reader(settings, DEAD_LETTER)
    try:
        processors = [start_processor() for _ in range(workers)]

        async def done() -> bool:
            await dead.poll()
            return (await caught_up_with(measures, measures_of(reference, period), period)()
                    and len(dead.records) >= conflicts)

        await wait_for(done, "the reference measures and every dead letter")
    finally:
        await measures.consumer.stop()
        await dead.consumer.stop()

    mine = measures_of(measures.fold(), period)
    for party, values in scenario.expected["measures"]["parties"].items():
        assert as_decimals({measure: render(mine[f"{party}/self"][measure]) for measure in values}
                           ) == as_decimals(values), party
    reasons = [dict(record.headers)["error"].decode() for record in dead.records]
    assert Counter(reason.split(":", 1)[0] for reason in reasons) == {"conflict": conflicts}, reasons
    metrics = [httpx.get(f"http://127.0.0.1:{p.web_port}/metrics").text for p in processors]
    counted = 'convergence_processor_events_total{outcome="dead_letter"} ' + f"{conflicts:.1f}"
    assert conflicts and any(counted in text for text in metrics)
    assert all(httpx.get(f"http://127.0.0.1:{p.web_port}/healthz").status_code == 200 for p in processors)


@asynccontextmanager
async def story_in_halves(settings: Settings) -> AsyncIterator[tuple[list[dict], list[dict], Reader]]:
    """The small story's first and second halves, and a reader of the measures topic (stopped afterwards)."""
    raws = scenario_events()
    measures = await reader(settings, MEASURES)
    try:
        yield raws[:len(raws) // 2], raws[len(raws) // 2:], measures
    finally:
        await measures.consumer.stop()


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_worker_killed_mid_stream_hands_over_without_losing_or_double_counting(
        settings: Settings, start_processor: Callable[[], Processor], workers: int) -> None:
    async with story_in_halves(settings) as (first_half, second_half, measures):
        await publish(settings, first_half)
        first, *_ = [start_processor() for _ in range(workers)]

        async def some_measures() -> bool:
            await measures.poll()
            return bool(measures.records)

        await wait_for(some_measures, "the first measures")
        first.kill()  # SIGKILL: no flush, no commit, no leaving the group
        await publish(settings, second_half)
        if workers == 1:
            start_processor()
        expected = measures_of(reference_fold(first_half + second_half)[0])
        await wait_for(caught_up_with(measures, expected), "the reference measures after the kill")


async def test_a_worker_added_mid_stream_takes_partitions_and_changes_nothing(
        settings: Settings, start_processor: Callable[[], Processor]) -> None:
    async with story_in_halves(settings) as (first_half, second_half, measures):
        await publish(settings, first_half)
        start_processor()
        await wait_for(caught_up_with(measures, measures_of(reference_fold(first_half)[0])), "half the story")
        start_processor()
        await publish(settings, second_half)
        expected = measures_of(reference_fold(first_half + second_half)[0])
        await wait_for(caught_up_with(measures, expected), "the whole story with two workers")


async def test_a_worker_restarted_where_it_ran_loads_its_partitions_while_it_joins(
        settings: Settings, start_processor: Callable[..., Processor], tmp_path: Path) -> None:
    async with story_in_halves(settings) as (first_half, second_half, measures):
        await publish(settings, first_half)
        first = start_processor()
        await wait_for(caught_up_with(measures, measures_of(reference_fold(first_half)[0])), "half the story")
        first.kill()
        await publish(settings, second_half)
        start_processor(first.web_port)
        expected = measures_of(reference_fold(first_half + second_half)[0])
        await wait_for(caught_up_with(measures, expected), "the whole story after the restart")
    every = list(range(settings.partitions))
    assert f"loading the partitions of the last run: {every}" in (tmp_path / "processor.log").read_text()


async def test_an_idle_processor_becomes_healthy(start_processor: Callable[[], Processor]) -> None:
    processor = start_processor()

    async def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{processor.web_port}/healthz", timeout=2).status_code == 200:
                return True
        await asyncio.sleep(0.2)
        return False

    await wait_for(healthy, "a 200 from /healthz with no event ever published")
