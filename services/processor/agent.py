"""The one agent: batches of stream messages, partition by partition, folded, checkpointed, then sent.

Faust assigns the stream topic's partitions to the workers of the group. A worker loads a partition from
its last checkpoint in the database (`services.store.processing`) as soon as it is assigned, and before
its first batch sends again what that checkpoint had to send (receivers skip what they have). A year of
history takes seconds to load, as long as a group join: so a worker restarted in the data directory of
its last run starts loading the partitions it had there (`assigned-<port>.json`) while it joins. Each
batch of a partition is folded (`services.processor.partitions`), checkpointed (changed records, marks
and the messages to send, in one transaction, and only if no other worker has written the partition
since), and then sent; the next batch waits for those sends. So a worker killed at any point loses
nothing: its partitions' next owner starts from their last checkpoint, and what was folded after it is
read again from the stream (Faust commits offsets only of messages whose batch is done).

Every message the agent sends to one partition of a topic goes alone, in a record batch of its own
(`services.broker.batches.send_one_at_a_time` says which broker bug that is for).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.types import TP, EventT, StreamT
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.broker.batches import send_batched, send_one_at_a_time
from services.broker.identity import BrokerIdentity
from services.heap import HeapKeeper
from services.processor.metrics import BATCH_SECONDS, EVENTS, LAG_SECONDS, PARTITION_LAG
from services.processor.partitions import Gap, Outgoing, Partition, Poisoned
from services.processor.web import Status
from services.settings import Settings
from services.store.processing import ProcessorStore

__all__ = ["MAX_BATCH", "RESTART_EXIT_CODE", "fold_agent"]

MAX_BATCH = 20  # stream messages; a relay message holds up to 500 events
EPOCH_CHECK_S = 1.0
RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: a supervisor restarts the worker
log = logging.getLogger(__name__)


def _exit(why: str) -> None:
    log.error("%s; exiting to be restarted", why)
    os._exit(RESTART_EXIT_CODE)


async def send(producer: AIOKafkaProducer, outgoing: list[Outgoing]) -> None:
    """Send and wait: keyed messages batched per topic, messages to a given partition one at a time."""
    by_topic: defaultdict[str, list] = defaultdict(list)
    by_partition: defaultdict[tuple[str, int], list[bytes]] = defaultdict(list)
    for o in outgoing:
        value = None if o.value is None else o.value.encode()
        if o.partition is None:
            by_topic[o.topic].append((None if o.key is None else o.key.encode(), value,
                                      [(name, text.encode()) for name, text in o.headers]))
        elif value is not None:
            by_partition[o.topic, o.partition].append(value)
    futures = [future for topic, messages in by_topic.items()
               for future in await send_batched(producer, topic, messages)]
    await send_one_at_a_time(producer, by_partition)
    await asyncio.gather(*futures)


def outbox_messages(body: str) -> list[Outgoing]:
    """The messages of a checkpoint's outbox (`Folded.checkpoint`)."""
    return [Outgoing(topic, partition, key, value, tuple(map(tuple, headers)))
            for topic, partition, key, value, headers in json.loads(body)]


def fold_agent(app: faust.App, settings: Settings, epoch: str, sessions: async_sessionmaker[AsyncSession],
               stream_topic: str, status: Status) -> Callable[[StreamT], Coroutine[Any, Any, None]]:
    """The agent function over the stream topic of broker log `epoch`."""
    store = ProcessorStore(sessions)
    identity = BrokerIdentity(settings)
    keeper = HeapKeeper(every=1)
    partitions: dict[int, Partition] = {}
    loading: dict[int, asyncio.Task[tuple[list[tuple[int, str]], Partition]]] = {}  # partition -> (outbox, state)
    one_at_a_time = asyncio.Lock()  # loads compete for the one interpreter: the first is ready sooner alone
    remembered = settings.data_dir / "processor" / f"assigned-{settings.processor_web_port}.json"
    poisoned: defaultdict[int, dict[int, str]] = defaultdict(dict)  # partition -> ledger seq -> why
    seeking: dict[int, int] = {}  # partition -> the offset the consumer was sent back to
    count = 0  # the stream topic's partitions

    def stream_partitions(tps: Iterable[TP]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic == stream_topic}

    @app.on_partitions_revoked.connect
    async def forget_lags(sender: Any, /, *revoked: set[TP], **_: Any) -> None:
        """A partition's lag is reported by its owner only: from its next batch on, maybe on another worker."""
        for number in stream_partitions(set().union(*revoked)):
            PARTITION_LAG.remove(str(number))

    async def same_log() -> None:
        """Exit when the broker's log is not the one the partitions were folded from (`services.broker.identity`):
        nothing of this state may be written into another log; restarted, the processor folds that log anew.

        Checked at the start, then every `EPOCH_CHECK_S` beside the batches (`watch_log`), never in their way:
        a read waits for the broker, up to twice its timeout when it is busy, and the stream would wait with it.
        A read that times out proves nothing and is looked at again at the next check (exiting on it would cost a
        reload of the whole state). Meanwhile nothing crosses logs: every stream message names its log, and a
        partition skips those of another."""
        try:
            now = await identity.read()
        except (TimeoutError, KafkaError) as error:
            log.warning("the broker's identity could not be read (%r): checked again in %.0f s", error,
                        EPOCH_CHECK_S)
            return
        if now is None or now != epoch:  # None: its topics are being made anew
            _exit("the broker's log changed under the processor (it lost its data or was replaced)")

    async def load(number: int) -> tuple[list[tuple[int, str]], Partition]:
        async with one_at_a_time:  # decoded in a thread, so that the loop goes on (a group join, other partitions)
            state = await store.load(epoch, number)
            partition = await asyncio.to_thread(Partition.loaded, settings, epoch, number, count, state)
        log.info("partition %d loaded: checkpoint %d, %d records", number, state.version, len(state.records),
                 extra={"partition": number})
        return state.outbox, partition

    def start_loading(numbers: set[int]) -> None:
        """Load these partitions in the background, and drop the loads of any other."""
        for number in set(loading) - numbers:
            loading.pop(number).cancel()
        for number in numbers - set(loading) - set(partitions):
            loading[number] = asyncio.create_task(load(number), name=f"processor-load-{number}")

    @app.on_partitions_assigned.connect
    async def load_assigned(sender: Any, /, *assigned: set[TP], **_: Any) -> None:
        numbers = stream_partitions(set().union(*assigned))
        if count:  # else the agent has not started: its first batch loads them
            start_loading(numbers)
        written = remembered.with_suffix(".tmp")
        written.write_text(json.dumps(sorted(numbers)))
        written.replace(remembered)

    async def loaded(producer: AIOKafkaProducer, number: int) -> Partition:
        """The partition from its last checkpoint (loaded in the background, or now), what it sent sent again."""
        task = loading.pop(number, None)
        outbox, partition = await task if task is not None else await load(number)
        for _, body in outbox:  # what its last checkpoint sent, maybe not all of it
            await send(producer, outbox_messages(body))
        return partition

    async def fold_partition(producer: AIOKafkaProducer, number: int, messages: list[tuple[int, bytes]]
                             ) -> list[Outgoing]:
        """Fold one partition's messages (offset, value) and checkpoint them; what to send (nothing if the
        partition moved). Only the messages from where its checkpoint reads on count: the consumer may start
        elsewhere (offsets committed for a topic since made anew) or skip some, and is sent back there."""
        while True:
            partition = partitions.get(number) or await loaded(producer, number)
            partitions[number] = partition
            expected = partition.next_offset
            if expected is None:
                tp = TP(stream_topic, number)
                expected = (await app.consumer.earliest_offsets(tp))[tp]
            values = []
            for offset, value in messages:
                if offset > expected:  # a hole before it: read again from where the partition is
                    if seeking.get(number) != expected:
                        log.warning("partition %d: read from %d, not %d: reading again from %d", number, offset,
                                    expected, expected, extra={"partition": number})
                        seeking[number] = expected
                        await app.consumer.seek(TP(stream_topic, number), expected)
                    break
                if offset == expected:
                    values.append(value)
                    expected += 1
            if not values:
                return []
            seeking.pop(number, None)
            try:
                folded = partition.fold_batch(values, expected, poisoned[number])
            except Poisoned as error:  # the fold may hold part of it: fold the batch again without it
                poisoned[number][error.seq] = error.reason
                partitions.pop(number, None)
                continue
            except Gap as error:
                _exit(f"the stream lacks a message ({error})")
            if not await store.checkpoint(epoch, number, partition.version, folded.checkpoint):
                log.warning("partition %d was written by another worker: it moved", number, extra={"partition": number})
                partitions.pop(number, None)
                return []
            partition.version += 1
            EVENTS.labels("applied").inc(folded.applied)
            EVENTS.labels("dead_letter").inc(folded.dead_letters)
            return folded.outgoing

    async def fold_batch(producer: AIOKafkaProducer, events: list[EventT]) -> None:
        assigned = stream_partitions(app.consumer.assignment())
        for number in list(partitions):
            if number not in assigned:  # revoked: its next owner goes on from the database
                del partitions[number]
        by_partition: defaultdict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for event in events:
            if event.message.value is not None:
                by_partition[event.message.partition].append((event.message.offset, event.message.value))
        with BATCH_SECONDS.time():
            outgoing = [o for number, messages in sorted(by_partition.items())
                        for o in await fold_partition(producer, number, messages)]
            await send(producer, outgoing)
        keeper.folded(len(events))
        for number in by_partition:  # the high watermark is known once a fetch returned the partition's messages
            highwater = app.consumer.highwater(TP(stream_topic, number))
            if (partition := partitions.get(number)) and partition.next_offset is not None and highwater is not None:
                PARTITION_LAG.labels(str(number)).set(max(0, highwater - partition.next_offset))
        LAG_SECONDS.set(max(0.0, time.time() - max(event.message.timestamp for event in events)))

    def last_run() -> set[int]:
        """The partitions this worker had when it last ran in this data directory (none known: none)."""
        try:
            return {number for number in json.loads(remembered.read_text()) if 0 <= number < count}
        except (OSError, ValueError, TypeError):
            return set()

    async def watch_log() -> None:
        """Look at the broker's log every `EPOCH_CHECK_S` (`same_log`)."""
        while True:
            await asyncio.sleep(EPOCH_CHECK_S)
            await same_log()

    def exit_on_failure(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            _exit(f"the log watch failed: {task.exception()!r}")

    async def fold(stream: StreamT) -> None:
        nonlocal count
        producer = AIOKafkaProducer(bootstrap_servers=settings.resolved_kafka_bootstrap, acks="all",
                                    enable_idempotence=settings.idempotent_producer)
        await producer.start()
        await same_log()
        count = len(await producer.partitions_for(stream_topic))
        await store.forget_other_logs(epoch)
        start_loading(last_run())
        log.info("loading the partitions of the last run: %s", sorted(loading) or "none")
        watch = asyncio.create_task(watch_log(), name="processor-log-watch")
        watch.add_done_callback(exit_on_failure)
        try:
            async for events in stream.take_events(MAX_BATCH, within=settings.measures_debounce_ms / 1000):  # type: ignore[attr-defined]  # faust's StreamT lacks take_events
                await fold_batch(producer, events)
        except Exception:  # Faust would keep the worker up with a dead agent: exit, to be restarted
            log.exception("the fold agent failed")
            _exit("the fold agent failed")
        finally:
            status.stopped = True
            start_loading(set())
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await identity.stop()
            await producer.stop()

    return fold
