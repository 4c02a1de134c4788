"""The stream processor as a real subprocess against a real Tansu: measures, dead letters, a SIGKILL."""

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
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.broker.binding import encode
from services.broker.embedded import free_port
from services.broker.topics import DEAD_LETTER, MEASURES
from services.processor.backfill import Backfill, record_inbound
from services.processor.state import ProcessorState
from services.records import apply_message
from services.settings import Settings
from shared.events import EventError, family_of, parse_event
from shared.fold import Conflict, Fold
from shared.money import render
from shared.payouts import MeasureView
from shared.periods import Period
from tests.support.events import sale
from tests.support.scenarios import load_scenario

pytestmark = pytest.mark.integration

DEADLINE_S = 120  # a fresh Faust worker needs a few seconds to join its group; a killed one's session lapses in 10
PERIOD = Period.parse("2026-03")
WRONG_TOPIC = {"specversion": "1.0", "id": "poison-1", "source": "test", "type": "party.registered",
               "time": "2026-03-01T00:00:00Z", "data": {"party_id": "ghost", "kind": "workforce"}}
GARBAGE = b"{not json"


def scenario_events() -> list[dict]:
    """The small scenario's events, plus a sale that reuses an order id (a conflict), in arrival order."""
    raws = [json.loads(line) for line in load_scenario("small").steps_path.read_text().splitlines() if line]
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


def measures_of(fold: Fold) -> dict[str, dict[str, Decimal | None]]:
    view = MeasureView(fold, PERIOD, PERIOD.end_ts)
    return {party: view.measures(party)[0] for party in fold.parties}


async def publish(producer: AIOKafkaProducer, settings: Settings, raws: list[dict]) -> None:
    """Valid events in the Kafka binding's structured mode; invalid ones as the JSON a source sent."""
    for raw in raws:
        try:
            key, value, headers = encode(parse_event(raw))
        except EventError:
            key, value, headers = None, json.dumps(raw).encode(), []
        topic = settings.topic(f"events.{family_of(raw['type'])}")
        await producer.send(topic, value, key=key, headers=headers)
    await producer.flush()


class Processor:
    """`python -m services.processor` as a child process, its output in a file."""

    def __init__(self, settings: Settings, log: IO[bytes]) -> None:
        self.web_port = free_port()
        env = {**os.environ, "CONVERGENCE_KAFKA_BOOTSTRAP": settings.resolved_kafka_bootstrap,
               "CONVERGENCE_KAFKA_IDEMPOTENT_PRODUCER": "false", "CONVERGENCE_DATA_DIR": str(settings.data_dir),
               "CONVERGENCE_PARTITIONS": str(settings.partitions),
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
def start_processor(settings: Settings, tmp_path: Path) -> Iterator[Callable[[], Processor]]:
    """Starts processors on demand; stops them all at the end and prints their output (shown on failure)."""
    started: list[Processor] = []
    with (tmp_path / "processor.log").open("w+b") as log:
        yield lambda: started.append(Processor(settings, log)) or started[-1]
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


async def test_processor_publishes_the_reference_measures_and_dead_letters_poison(
        settings: Settings, producer: AIOKafkaProducer, start_processor: Callable[[], Processor]) -> None:
    raws = scenario_events()
    reference, rejected = reference_fold(raws)
    expected = measures_of(reference)
    await publish(producer, settings, raws)
    await producer.send_and_wait(settings.topic("events.sales"), GARBAGE)
    key, value, headers = encode(parse_event(WRONG_TOPIC))
    await producer.send_and_wait(settings.topic("events.sales"), value, key=key, headers=headers)
    measures, dead = await reader(settings, MEASURES), await reader(settings, DEAD_LETTER)
    try:
        processor = start_processor()

        async def done() -> bool:
            await measures.poll()
            await dead.poll()
            return measures_of(measures.fold()) == expected and len(dead.records) >= rejected.total() + 2

        await wait_for(done, "the reference measures and every dead letter")
    finally:
        await measures.consumer.stop()
        await dead.consumer.stop()

    mine = measures_of(measures.fold())
    for party, values in load_scenario("small").expected["measures"]["parties"].items():
        assert as_decimals({name: render(mine[party][name]) for name in values}) == as_decimals(values), party
    reasons = [dict(record.headers)["error"].decode() for record in dead.records]
    assert Counter(reason.split(":", 1)[0] for reason in reasons) == rejected + Counter(
        {"invalid event": 1, "wrong topic": 1}), reasons  # the garbage and the party event on the sales topic
    assert all(dict(record.headers)["source_topic"].startswith(b"convergence.events.") for record in dead.records)
    metrics = httpx.get(f"http://127.0.0.1:{processor.web_port}/metrics").text
    assert 'convergence_processor_events_total{outcome="dead_letter"} ' in metrics
    assert httpx.get(f"http://127.0.0.1:{processor.web_port}/healthz").status_code == 200


async def test_processor_killed_mid_stream_resumes_without_losing_or_double_counting(
        settings: Settings, producer: AIOKafkaProducer, start_processor: Callable[[], Processor]) -> None:
    raws = scenario_events()
    expected = measures_of(reference_fold(raws)[0])
    half = len(raws) // 2
    measures = await reader(settings, MEASURES)
    try:
        await publish(producer, settings, raws[:half])
        first = start_processor()

        async def some_measures() -> bool:
            await measures.poll()
            return bool(measures.records)

        await wait_for(some_measures, "the first measures")
        first.kill()  # SIGKILL: no flush, no commit, no leaving the group
        await publish(producer, settings, raws[half:])
        start_processor()

        async def caught_up() -> bool:  # polled: Tansu's end offsets cannot tell when a topic is read
            await measures.poll()
            return measures_of(measures.fold()) == expected

        await wait_for(caught_up, "the reference measures after the restart")
    finally:
        await measures.consumer.stop()


async def test_an_idle_processor_becomes_healthy_once_its_state_is_recovered(
        start_processor: Callable[[], Processor]) -> None:
    processor = start_processor()

    async def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{processor.web_port}/healthz", timeout=2).status_code == 200:
                return True
        await asyncio.sleep(0.2)
        return False

    await wait_for(healthy, "a 200 from /healthz with no event ever published")


async def test_backfill_reads_back_the_offsets_a_batch_skips(
        settings: Settings, producer: AIOKafkaProducer) -> None:
    topic = settings.topic("events.sales")
    for n in range(12):
        key, value, headers = encode(sale(f"o-{n}", "2026-03-02", "10"))
        await producer.send(topic, value, key=key, headers=headers, partition=0)
    await producer.flush()
    sales = await reader(settings, "events.sales")
    try:
        async def all_read() -> bool:
            await sales.poll()
            return len(sales.records) >= 12

        await wait_for(all_read, "the 12 sales")
    finally:
        await sales.consumer.stop()
    every = [record_inbound(record) for record in sales.records]
    assert [message.offset for message in every] == list(range(12))
    state, backfill = ProcessorState(settings, {}), Backfill(settings)
    try:
        # never read: from the partition's first offset; the batch lacks 0, 4 and 6-7, and arrives out of order
        assert await backfill.complete(state, [every[n] for n in (5, 1, 2, 3, 8)]) == every[:9]
        state.process(every[:9])
        assert await backfill.complete(state, every[9:]) == every[9:]  # contiguous: as it came
        assert await backfill.complete(state, [every[11]]) == every[9:]  # from the state's position
        for position, rest in ((9, every[9:]), (None, every), (12, [])):  # one short read: maybe a prefix
            found = await backfill.after({(topic, 0): position})
            assert found == rest[:len(found)] and bool(found) == bool(rest), position
    finally:
        await backfill.stop()
