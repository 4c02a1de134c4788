"""The one agent: batches of inbound messages through `ProcessorState`, into the state table and out to Kafka."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import Message as FaustMessage
from faust.types import StreamT, TableT

from services.broker.batches import Message, send_batched
from services.broker.identity import BrokerIdentity
from services.broker.topics import inbound_topics
from services.heap import HeapKeeper
from services.processor.backfill import Backfill
from services.processor.metrics import BATCH_SECONDS, EVENTS, LAG_SECONDS
from services.processor.state import MARKER, Batch, Headers, Inbound, ProcessorState
from services.processor.web import Status
from services.settings import Settings

__all__ = ["MAX_BATCH", "dead_letter_headers", "fold_agent", "inbound"]

MAX_BATCH = 5000
TAIL_CHECK_S = 5.0
RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: a supervisor restarts the worker
log = logging.getLogger(__name__)


def inbound(message: FaustMessage) -> Inbound:
    """The parts of a Faust message the state needs."""
    headers = message.headers or []
    pairs: Headers = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return Inbound(message.topic, message.partition, message.offset, message.key, message.value, pairs,
                   message.timestamp)


def dead_letter_headers(message: Inbound, reason: str) -> Headers:
    """The original headers plus `error` (the reason) and where the message was read."""
    return [*message.headers, ("error", reason.encode()), ("source_topic", message.topic.encode()),
            ("source_partition", str(message.partition).encode()),
            ("source_offset", str(message.offset).encode())]


def fold_agent(settings: Settings, table: TableT, measures: str, dead_letter: str, status: Status
               ) -> Callable[[StreamT], Coroutine[Any, Any, None]]:
    """The agent function: fold each batch into the table, publish its measures and rejections, mark it complete.

    Faust recovers the table from its changelog at start; the agent writes that changelog itself, with
    aiokafka's batch API (one request per partition per batch), around Faust's per-message machinery.
    A batch that skips input offsets is completed by `Backfill` first; a partition that stops moving is
    read from its position by the tail watch (a skipped last record leaves no later offset to notice it).
    """
    state = ProcessorState(settings, table.data)
    keeper = HeapKeeper(every=1)
    changelog = table.changelog_topic.get_topic_name()

    def rejected(batch: Batch) -> list[Message]:
        for rejection in batch.rejected:
            message = rejection.message
            log.info("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset,
                     rejection.reason)
        return [(r.message.key, r.message.value, dead_letter_headers(r.message, r.reason)) for r in batch.rejected]

    async def write(producer: AIOKafkaProducer, batch: Batch) -> None:
        sent = await send_batched(producer, changelog, [(key, value, []) for key, value in batch.changelog])
        sent += await send_batched(producer, measures, [(key, value, []) for key, value in batch.measures])
        sent += await send_batched(producer, dead_letter, rejected(batch))
        await asyncio.gather(*sent)  # the marker must not become durable before the batch's writes
        marker = state.marker(batch)
        await asyncio.gather(*[await producer.send(changelog, marker, key=MARKER, partition=partition)
                               for partition in sorted(await producer.partitions_for(changelog))])

    lock = asyncio.Lock()  # one batch at a time: the stream's, or the tail watch's
    identity = BrokerIdentity(settings)
    epoch: str | None = None

    async def same_log() -> None:
        """Exit when the broker's log is not the one the state was recovered from (`services.broker.identity`):
        nothing of this state may be written into another log; restarted, the processor folds that log anew."""
        now = await identity.read()
        if now is None or now != epoch:  # None: its topics are being made anew
            log.error("the broker's log changed under the processor (it lost its data or was replaced); "
                      "exiting to be restarted on the new log")
            os._exit(RESTART_EXIT_CODE)

    async def fold_batch(producer: AIOKafkaProducer, messages: list[Inbound], backfill: Backfill) -> None:
        nonlocal epoch
        async with lock:
            if epoch is None:  # the first batch comes after Faust's table recovery
                epoch = await identity.read()
                rolled_back = state.restore()
                log.info("state restored from broker log %s: %d events seen, %d entries of an incomplete batch "
                         "rolled back", epoch, len(state.seen), rolled_back)
            with BATCH_SECONDS.time():
                batch = state.process(await backfill.complete(state, messages))
                await same_log()
                await write(producer, batch)
            keeper.folded(len(messages))
            EVENTS.labels("applied").inc(batch.applied)
            EVENTS.labels("duplicate").inc(batch.duplicates)
            EVENTS.labels("dead_letter").inc(len(batch.rejected))
            EVENTS.labels("replayed").inc(batch.replayed)
            if batch.newest_timestamp_s is not None:
                LAG_SECONDS.set(max(0.0, time.time() - batch.newest_timestamp_s))

    async def watch_tails(producer: AIOKafkaProducer, backfill: Backfill) -> None:
        """Fold what the broker holds after input partitions whose position has not moved for a whole
        `TAIL_CHECK_S`: a skipped record with no later one behind it is not seen by `Backfill.complete`.
        Also look at the broker's log: topics deleted and made again (`convergence rebuild`) can leave Faust's
        consumer without a batch to notice it by."""
        topics = set(inbound_topics(settings))
        looked: dict[tuple[str, int], int | None] = {}  # each partition's position at the last look
        while True:
            await asyncio.sleep(TAIL_CHECK_S)
            if epoch is not None:
                await same_log()
            if not status.healthy:
                continue
            assigned = {(tp.topic, tp.partition) for tp in table.app.consumer.assignment() if tp.topic in topics}
            now = {where: state.positions.get(where) for where in assigned}
            stuck = {where: position for where, position in now.items() if looked.get(where, -1) == position}
            looked = now
            found = await backfill.after(stuck)
            if found:
                log.info("%d messages after partitions that did not move: %s", len(found),
                         ", ".join(sorted({f"{m.topic}[{m.partition}]" for m in found})))
                await fold_batch(producer, found, backfill)

    def exit_on_failure(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the tail watch failed; exiting to be restarted", exc_info=task.exception())
            os._exit(RESTART_EXIT_CODE)

    async def fold(stream: StreamT) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.resolved_kafka_bootstrap, acks="all",
                                    enable_idempotence=settings.idempotent_producer)
        await producer.start()
        backfill, tails = Backfill(settings), Backfill(settings)
        watch = asyncio.create_task(watch_tails(producer, tails), name="processor-tail-watch")
        watch.add_done_callback(exit_on_failure)
        try:
            # faust's StreamT declares take() but not take_events(), which the Stream an agent gets has
            async for events in stream.take_events(MAX_BATCH, within=settings.measures_debounce_ms / 1000):  # type: ignore[attr-defined]
                await fold_batch(producer, [inbound(event.message) for event in events], backfill)
        except Exception:  # Faust would keep the worker up with a dead agent: exit, to be restarted
            log.exception("the fold agent failed; exiting to be restarted")
            os._exit(RESTART_EXIT_CODE)
        finally:
            status.stopped = True
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await backfill.stop()
            await tails.stop()
            await identity.stop()
            await producer.stop()

    return fold
