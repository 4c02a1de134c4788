"""Catch-up speed of the stream processor, against a bare consumer and an empty Faust agent, in one run.

    python -m tests.benchmarks.bench_processing [--events 200000] [--customers 20000] [--workers 1,2]

Starts an embedded Tansu broker and publishes the generated history (`tests.benchmarks.history`, in the
Kafka binding's structured mode) to the inbound topics of one topic prefix per measurement, all before
the first measurement, so every reader finds the same broker. Each then reads its prefix from offset zero:

* bare consumer: one aiokafka consumer, no group, assigned every inbound partition, `json.loads` on
  every value: the cost of reading the topics;
* empty Faust agent: the project's `ProcessorApp` (the processor's fetch wait, not Faust's 1500 ms, and
  its session timeout), memory store, a fresh group, one agent (`concurrency=1`) taking batches with
  `take_events` as the processor's agent does and doing nothing with them, in a child process: the cost
  of Faust;
* processor: the history appended to a ledger (a SQLite database of its own) and published by the relay
  into the processor's stream, as ingest does; then N `convergence processor` processes started together,
  configured by `CONVERGENCE_*` variables only, each restarted when it exits as `convergence up` restarts
  its processor (the table counts restarts). They have caught up once every partition's checkpoint in the
  database (`processor_partitions`) holds the last ledger row and every message the partitions sent each
  other; their progress is the lowest ledger row any partition has reached.
* restarts: one worker started again on the state of the first processor run, with one more event, timed to
  that event checkpointed in every partition: in the data directory of that run's worker 0 (a worker
  restarted where it ran, which loads the partitions it had there while it joins the group), and in a new
  one (a worker that knows nothing yet, which loads its partitions once the group has given them).

Ends are read from the partitions' last records, not from the broker's end offsets: Tansu reports a
partition's end as the base offset of its last record batch + 1, short of a multi-record last batch.
A reader's start-up is the time from its start to its first progress (its first batch; for the processor,
its first checkpoint), and its events/s counts the events after that over the time until its last one. A
processor run whose checkpoints do not move for `--stall` seconds, or has not caught up after `--timeout`,
is reported with the events it got through, and the command then exits 1. The machine is shared: compare
the ratios, measured in the same run, more than the figures.
Results: a table, `build/bench-processing.json`, and the processors' logs in `build/bench-processing-logs/`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from services.broker.batches import Message, send_batched
from services.broker.binding import encode
from services.broker.embedded import embedded_broker, free_port
from services.broker.identity import BrokerIdentity
from services.broker.topics import ensure_topics, inbound_topic, inbound_topics
from services.ledger.relay import Relay
from services.ledger.rows import event_row
from services.processor.partitions import Partition
from services.processor.transport import ProcessorApp
from services.settings import Settings
from services.store.database import opened_database
from services.store.ledger import LedgerStore
from services.store.processing import ProcessorStore
from services.store.reading import fetch_end_offsets
from services.store.tables import ProcessorPartition
from services.supervisor import Child, settings_env
from shared.events import Event, family_of, parse_event
from tests.benchmarks.history import raw_history
from tests.support.system import CONVERGENCE

BUILD = Path(__file__).resolve().parents[2] / "build"
RESULTS, LOGS = BUILD / "bench-processing.json", BUILD / "bench-processing-logs"
BATCH_BYTES = 256 * 1024  # the producer's record batches: a backlog arrives in large batches
POLL_S = 0.1
# The empty agent's batches and group timings, as the processor's Faust agent has them (not imported: the
# processor may change inside; this harness relies only on its command, group, topics and settings).
AGENT_BATCH, SESSION_TIMEOUT_S, HEARTBEAT_INTERVAL_S = 5000, 10.0, 1.0
READ_TIMEOUT_S = 30.0
LEDGER_CHUNK = 10_000
# a worker's web port by data directory: one started again where it ran keeps its port, as under `up` or in a
# pod, and with it what it knows of its last run (`services.processor.agent`)
PORTS: dict[Path, int] = {}
Ends = dict[TopicPartition, int]


@dataclass
class Progress:
    """Events done over time: (monotonic time, events done) at the first and the last progress."""

    started: float
    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None

    def done(self, events: int) -> None:
        if events and (self.last is None or events > self.last[1]):
            self.last = (time.monotonic(), events)
            self.first = self.first or self.last

    def figures(self) -> dict[str, float | None]:
        """Start-up, time to the last progress, events done and events/s after the first progress (None: not
        seen, or too little progress to time)."""
        first, last = self.first, self.last
        timed = first is not None and last is not None and last[0] > first[0]
        return {"startup_s": None if first is None else first[0] - self.started,
                "seconds": None if last is None else last[0] - self.started,
                "events": 0 if last is None else last[1],
                "events_per_s": (last[1] - first[1]) / (last[0] - first[0]) if timed else None}


def bench_settings(bootstrap: str, prefix: str, partitions: int) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions,
                    kafka_idempotent_producer=False, _env_file=None)


def history_events(raws: Iterable[dict]) -> list[tuple[Event, str]]:
    """A history's events, each with its JSON (the body of its ledger row)."""
    return [(parse_event(raw), json.dumps(raw)) for raw in raws]


def history_messages(events: Iterable[tuple[Event, str]]) -> dict[str, list[Message]]:
    """Events as Kafka messages, by unprefixed inbound topic."""
    messages: dict[str, list[Message]] = defaultdict(list)
    for event, _ in events:
        messages[inbound_topic(family_of(event.type))].append(encode(event))
    return messages


async def append_ledger(ledger: LedgerStore, settings: Settings, events: list[tuple[Event, str]]) -> int:
    """Append the history to `ledger` (rows for the topics of `settings`); the last ledger seq."""
    rows = [event_row(event, body, settings) for event, body in events]
    for first in range(0, len(rows), LEDGER_CHUNK):
        await ledger.append(rows[first:first + LEDGER_CHUNK])
    return await ledger.last_seq()


async def publish_ledger(settings: Settings, events: list[tuple[Event, str]]) -> int:
    """Append the history to the ledger and relay it into the stream; the last ledger seq."""
    await ensure_topics(settings)
    async with opened_database(settings.resolved_database_url) as sessions:
        ledger = LedgerStore(sessions)
        last_seq = await append_ledger(ledger, settings, events)
        await Relay(settings, ledger).drain(timeout_s=READ_TIMEOUT_S * 20)
        return last_seq


async def publish(settings: Settings, messages: dict[str, list[Message]]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.resolved_kafka_bootstrap, max_batch_size=BATCH_BYTES,
                                max_request_size=2 * BATCH_BYTES)
    await producer.start()
    try:
        sent = [future for topic, batch in messages.items()
                for future in await send_batched(producer, settings.topic(topic), batch)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def true_ends(settings: Settings) -> Ends:
    """The end offset of every inbound partition. Tansu reports a partition's end as the base offset of its
    last record batch + 1, so the end is taken from the last record of the batch read there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.resolved_kafka_bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=settings.fetch_max_wait_ms)
    await consumer.start()
    try:
        ends = await fetch_end_offsets(consumer, inbound_topics(settings))
        firsts = await consumer.beginning_offsets(list(ends))
        pending = {tp for tp, end in ends.items() if end > firsts[tp]}
        consumer.assign(list(pending))
        for tp in pending:
            consumer.seek(tp, ends[tp] - 1)
        async with asyncio.timeout(READ_TIMEOUT_S):
            while pending:
                for tp, records in (await consumer.getmany(*pending, timeout_ms=500)).items():
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
                    pending.discard(tp)
        return ends
    finally:
        await consumer.stop()


async def bare_consumer(settings: Settings, ends: Ends, timeout_s: float) -> dict:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.resolved_kafka_bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=settings.fetch_max_wait_ms)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        progress, events, left = Progress(time.monotonic()), 0, dict(ends)
        async with asyncio.timeout(timeout_s):
            while left:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for record in records:
                        json.loads(record.value)
                    events += len(records)
                    if records[-1].offset + 1 >= left.get(tp, float("inf")):
                        del left[tp]
                progress.done(events)
        return progress.figures()
    finally:
        await consumer.stop()


def _empty_agent(settings: Settings, ends: dict[tuple[str, int], int], datadir: str, results: Connection) -> None:
    """A Faust worker whose agent does nothing but send its first and last progress once it has seen every
    partition's end (in a child process: the worker owns its event loop and signals)."""
    app = ProcessorApp(f"{settings.topic_prefix}empty-agent", broker=f"kafka://{settings.resolved_kafka_bootstrap}",
                       store="memory://", fetch_max_wait_ms=settings.fetch_max_wait_ms, idempotent_producer=False,
                       topic_partitions=settings.partitions, datadir=datadir, web_enabled=False, autodiscover=False,
                       consumer_auto_offset_reset="earliest", broker_session_timeout=SESSION_TIMEOUT_S,
                       broker_heartbeat_interval=HEARTBEAT_INTERVAL_S)
    source = app.topic(*inbound_topics(settings), key_serializer="raw", value_serializer="raw")

    async def empty(stream) -> None:
        progress, events, left = Progress(0.0), 0, dict(ends)
        async for batch in stream.take_events(AGENT_BATCH, within=settings.measures_debounce_ms / 1000):
            events += len(batch)
            progress.done(events)
            for event in batch:
                where = (event.message.topic, event.message.partition)
                if event.message.offset + 1 >= left.get(where, float("inf")):
                    del left[where]
                    if not left:
                        results.send((progress.first, progress.last))

    app.agent(source, name="empty", concurrency=1)(empty)
    with open(os.devnull, "w") as nowhere:  # its spinner's terminal codes, not this benchmark's output
        faust.Worker(app, loglevel="WARNING", quiet=True, stdout=nowhere).execute_from_commandline()


async def empty_faust_agent(settings: Settings, ends: Ends, tmp: Path, timeout_s: float) -> dict:
    context = multiprocessing.get_context("spawn")
    results, sender = context.Pipe(duplex=False)
    child = context.Process(target=_empty_agent, daemon=True,
                            args=(settings, {(tp.topic, tp.partition): end for tp, end in ends.items()},
                                  str(tmp / "empty-agent"), sender))
    tmp.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level of its datadir
    started = time.monotonic()
    child.start()
    try:
        async with asyncio.timeout(timeout_s):
            while not results.poll():
                if not child.is_alive():
                    raise RuntimeError(f"the empty Faust agent exited with {child.exitcode}")
                await asyncio.sleep(POLL_S)
        # CLOCK_MONOTONIC is one clock for every process of the machine
        return Progress(started, *results.recv()).figures()
    finally:
        child.kill()
        child.join()


@asynccontextmanager
async def _workers(settings: Settings, count: int, tmp: Path, logs: Path) -> AsyncIterator[list[Child]]:
    """`count` processes of `convergence processor`, each restarted when it exits (as `convergence up` does
    with its processor), all killed on exit; the output of worker i in `logs`/worker-i.log. Each has its own
    data directory and web port; they share one database (the configured one, or a new SQLite file). They are
    stopped with SIGTERM and leave the group: the partitions of a killed worker wait for its session to lapse
    (10 s) before the next worker is given them, which would count in the restart's figure."""
    logs.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    database = settings.database_url or settings.model_copy(update={"data_dir": tmp}).resolved_database_url
    children = []
    for number in range(count):
        (logs / f"worker-{number}.log").unlink(missing_ok=True)  # a Child appends
        data = tmp / f"worker-{number}"
        port = PORTS.setdefault(data, free_port())
        own = settings.model_copy(update={"data_dir": data, "processor_web_port": port,
                                          "database_url": database})
        children.append(Child(f"processor {number}", [CONVERGENCE, "processor"], settings_env(own),
                              output=logs / f"worker-{number}.log"))
    runs = [asyncio.create_task(child.run()) for child in children]
    try:
        yield children
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)


def resident_bytes(pid: int) -> int:
    """The resident set of process `pid` (`VmRSS` in /proc: Linux, and no psutil to install)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"process {pid} reports no resident set")


async def processor(settings: Settings, last_seq: int, count: int, tmp: Path, args: argparse.Namespace) -> dict:
    """The figures of `count` processors catching up on the stream, with each worker's resident set once caught
    up; `caught_up` is False when their checkpoints stood still for `args.stall` seconds or had not reached
    `last_seq` in `args.timeout`."""
    progress = Progress(time.monotonic())
    async with (_workers(settings, count, tmp, LOGS / processor_dir(count)) as children,
                opened_database(settings.resolved_database_url) as sessions):
        caught_up = await checkpointed(sessions, last_seq, settings.partitions, progress, args.timeout, args.stall)
        rss = [resident_bytes(child.process.pid) for child in children
               if child.process is not None and child.process.returncode is None]
        restarts = sum(child.restarts for child in children)
    return {**progress.figures(), "caught_up": caught_up, "restarts": restarts, "rss_bytes": rss}


async def checkpointed(sessions, last_seq: int, partitions: int, progress: Progress, timeout_s: float,
                        stall_s: float) -> bool:
    """Poll the partitions' checkpoints into `progress` until each holds `last_seq` and every message sent to it
    (True), they stand still for `stall_s` (no checkpoint: the last ledger row may be followed by a long tail of
    messages between partitions) or `timeout_s` has passed (False)."""
    table, deadline = ProcessorPartition.__table__, time.monotonic() + timeout_s
    seen, moved = None, time.monotonic()
    while True:
        async with sessions() as session:
            rows = (await session.execute(select(table.c.partition, table.c.version, table.c.marks,
                                                 table.c.sent))).all()
        heads = {partition: (json.loads(marks), json.loads(sent)) for partition, _, marks, sent in rows}
        versions = sorted((partition, version) for partition, version, _, _ in rows)
        if versions != seen:
            seen, moved = versions, time.monotonic()
        ledger = [heads[p][0].get("ledger", 0) if p in heads else 0 for p in range(partitions)]
        progress.done(min(ledger))
        received = all(heads[q][0].get(str(p), 0) >= count for p, (_, sent) in heads.items()
                       for q, count in ((int(q), n) for q, n in sent.items()) if q in heads)
        if min(ledger) >= last_seq and received and len(heads) == partitions:
            return True
        now = time.monotonic()
        if now > deadline or now - moved > stall_s:
            return False
        await asyncio.sleep(POLL_S)


def restart_event(name: str) -> dict:
    """One more event for a restart to fold, so that it is timed to a checkpoint of every partition."""
    return {"specversion": "1.0", "id": f"{name}-1", "source": "bench", "type": "service.case_resolved",
            "time": "2026-06-30T12:00:00Z",
            "data": {"case_id": f"k-{name}", "customer_id": "cust-0", "resolver_id": "agent-0", "first_contact": True}}


async def restart(settings: Settings, last_seq: int, data: Path, name: str, args: argparse.Namespace) -> dict:
    """One worker started in data directory `data` (`data`/worker-0) on the state a run left, timed to its first
    event folded in every partition; and the time to load every partition's state in this process. In the
    directory of the run's worker 0 it starts loading what that worker had while it joins the group; in a new
    one it knows nothing and loads once the group has given it its partitions."""
    async with opened_database(settings.resolved_database_url) as sessions:
        identity = BrokerIdentity(settings)
        try:
            epoch = await identity.read()
        finally:
            await identity.stop()
        if epoch is None:
            raise RuntimeError("the broker has no identity")
        store, read_s, build_s, records = ProcessorStore(sessions), 0.0, 0.0, 0
        for number in range(settings.partitions):
            started = time.monotonic()
            state = await store.load(epoch, number)
            read = time.monotonic()
            Partition.loaded(settings, epoch, number, settings.partitions, state)
            read_s, build_s = read_s + read - started, build_s + time.monotonic() - read
            records += len(state.records)
    extra = restart_event(name)
    if await publish_ledger(settings, [(parse_event(extra), json.dumps(extra))]) != last_seq + 1:
        raise RuntimeError("the restart's event did not reach the ledger")
    progress = Progress(time.monotonic())
    async with (_workers(settings, 1, data, LOGS / name) as children,
                opened_database(settings.resolved_database_url) as sessions):
        caught_up = await checkpointed(sessions, last_seq + 1, settings.partitions, progress, args.timeout,
                                        args.stall)
        restarts = sum(child.restarts for child in children)
    return {"startup_s": progress.figures()["seconds"], "load_s": read_s + build_s, "read_s": read_s,
            "build_s": build_s, "records": records,
            "caught_up": caught_up, "restarts": restarts}


@dataclass(frozen=True)
class Copies:
    """The history on one broker: `settings[0]` has it in its inbound topics (for the baselines), `settings[n]`
    in a ledger of its own up to `last_seqs[n]`, relayed into its stream (for n processor workers)."""

    settings: dict[int, Settings]
    last_seqs: dict[int, int]
    ends: Ends


@asynccontextmanager
async def published(messages: dict[str, list[Message]], events: list[tuple[Event, str]], workers: list[int],
                    partitions: int, tmp: Path) -> AsyncIterator[Copies]:
    """An embedded broker with a copy of the history per measurement, every copy published before any is
    measured, so that every reader finds the same broker."""
    total = len(events)
    async with embedded_broker(free_port()) as bootstrap:
        # one prefix per measurement (the baselines share one)
        prefixes = {0: "bench-base.", **{count: f"bench-processor-{count}." for count in workers}}
        settings = {count: bench_settings(bootstrap, prefix, partitions) for count, prefix in prefixes.items()}
        started = time.monotonic()
        await publish(settings[0], messages)
        last_seqs = {}
        for count in workers:
            settings[count] = settings[count].model_copy(
                update={"database_url": f"sqlite+aiosqlite:///{tmp / f'processor-{count}.db'}"})
            last_seqs[count] = await publish_ledger(settings[count], events)
        print(f"published {len(settings)} copies at {len(settings) * total / (time.monotonic() - started):,.0f} "
              "events/s (the processors' through a ledger and the relay)")
        ends = await true_ends(settings[0])
        if sum(ends.values()) != total or any(seq != total for seq in last_seqs.values()):
            raise RuntimeError(f"the topics or ledgers do not hold {total} events each: {ends}, {last_seqs}")
        yield Copies(settings, last_seqs, ends)


def processor_run(count: int) -> str:
    """The name of a run of `count` processor workers (in the table, and as the directory of its logs)."""
    return f"processor, {count} worker{'s' if count > 1 else ''}"


def processor_dir(count: int) -> str:
    """The directory of a run of `count` processor workers: of their data directories (worker-i in it), and of
    their logs."""
    return f"processor-{count}"


async def caught_up_processor(copies: Copies, count: int, tmp: Path, args: argparse.Namespace) -> dict:
    """`processor` on the copy of `count` workers; how far it got when it did not catch up is printed."""
    figures = await processor(copies.settings[count], copies.last_seqs[count], count, tmp / processor_dir(count),
                              args)
    if not figures["caught_up"]:
        print(f"{processor_run(count)}: not caught up, {figures['events']:,} of {copies.last_seqs[count]:,} events "
              f"committed; logs in {LOGS / processor_dir(count)}")
    return figures


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, dict]:
    started = time.monotonic()
    events = history_events(raw_history(args.events, args.customers))
    messages = history_messages(events)
    print(f"generated and encoded {len(events):,} events in {time.monotonic() - started:.1f} s")
    async with published(messages, events, args.workers, args.partitions, tmp) as copies:
        base = copies.settings[0]
        results = {"bare consumer": await bare_consumer(base, copies.ends, args.timeout),
                   "empty Faust agent": await empty_faust_agent(base, copies.ends, tmp, args.timeout)}
        for count in args.workers:
            print(f"{processor_run(count)}…")
            results[processor_run(count)] = await caught_up_processor(copies, count, tmp, args)
        first, seq = args.workers[0], copies.last_seqs[args.workers[0]]
        print("restarts with state…")
        results["restart, 1 worker"] = await restart(copies.settings[first], seq, tmp / processor_dir(first),
                                                     "restart", args)
        results["restart, 1 worker, new data directory"] = await restart(copies.settings[first], seq + 1,
                                                                         tmp / "new-worker", "new-worker", args)
    return results


CELLS = (("startup_s", "{:.1f}"), ("load_s", "{:.1f}"), ("seconds", "{:.1f}"), ("events_per_s", "{:,.0f}"),
         ("vs_bare_consumer", "{:.2f}"), ("vs_empty_faust_agent", "{:.2f}"), ("restarts", "{}"))


def _cell(value: float | None, form: str) -> str:
    return "" if value is None else form.format(value)


def _report(args: argparse.Namespace, results: dict[str, dict]) -> dict:
    bare, empty = results["bare consumer"]["events_per_s"], results["empty Faust agent"]["events_per_s"]
    for figures in results.values():
        if figures.get("caught_up") and figures.get("events_per_s"):
            figures["vs_bare_consumer"] = figures["events_per_s"] / bare
            figures["vs_empty_faust_agent"] = figures["events_per_s"] / empty
    table = Table(title=f"{args.events:,} events, {args.partitions} partitions per inbound topic",
                  caption="ratios: the processor's events/s over the baseline's, in this run")
    table.add_column("")
    for column in ("start-up s", "state load s", "total s", "events/s", "/ bare consumer", "/ empty Faust agent",
                   "restarts", "caught up"):
        table.add_column(column, justify="right")
    for name, figures in results.items():
        caught_up = figures.get("caught_up")
        done = "" if caught_up is None else "yes" if caught_up else f"{figures.get('events', 0):,} of {args.events:,}"
        table.add_row(name, *(_cell(figures.get(key), form) for key, form in CELLS), done)
    console = Console()
    console.width = max(console.width, 120)
    console.print(table)
    return {"events": args.events, "customers": args.customers, "partitions": args.partitions, "results": results}


def _counts(text: str) -> list[int]:
    counts = list(dict.fromkeys(int(n) for n in text.split(",")))
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are positive")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", type=_counts, default=[1, 2],
                        help="comma-separated worker counts, one processor run each (default 1,2)")
    parser.add_argument("--partitions", type=int, default=Settings.model_fields["partitions"].default)
    parser.add_argument("--timeout", type=float, default=600, help="seconds each measurement may take")
    parser.add_argument("--stall", type=float, default=180,
                        help="seconds without a new commit after which a processor run counts as stuck")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-processing-") as tmp:
            results = asyncio.run(_run(args, Path(tmp)))
    except KeyboardInterrupt:  # every child is stopped by then
        raise SystemExit(130) from None
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(_report(args, results), indent=2) + "\n")
    print(f"written to {RESULTS}")
    if not all(figures.get("caught_up", True) for figures in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
