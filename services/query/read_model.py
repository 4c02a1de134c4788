"""The query service's state: a read-only replica of the processor's parties and relationships, and the plans."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from services.broker.consuming import stop_consuming
from services.broker.identity import BrokerIdentity
from services.broker.topics import MEASURES
from services.query.metrics import POSITION, RECORDS
from services.records import apply_message
from services.settings import Settings
from shared.fold import Fold, Span
from shared.measures import Totals
from shared.periods import Window
from shared.plans import PlanSet
from shared.rollups import RollUps

__all__ = ["ReadModel"]

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 1000
EPOCH_CHECK_S = 2.0
MAX_RESULTS = 100_000  # memoized results kept at most; then they are all dropped and computed again

Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
T = TypeVar("T")


class ReadModel:
    """`fold` holds the parties and relationships last published to the measures topic; `plans` are in force.

    Beside the fold it keeps each party's relationships merged (`rollups`): it reads like a fold to
    `shared.payouts.MeasureView` (`totals`, `direct_reports`), a party's totals coming from its roll-up
    instead of a sum over its relationships. It also counts, per party, the records applied that can change
    what the party's live results read (`memo`).

    Batches are applied on the event loop between two awaits, so a request that reads the fold without
    awaiting sees one consistent state.
    """

    def __init__(self, settings: Settings, plans: PlanSet, *, max_records: int = 10_000) -> None:
        self._reset(settings.provider_id)
        self.plans = plans
        self.ready = False
        self.positions: dict[int, int] = {}  # partition -> offset after the newest record applied
        self._settings = settings
        self._max_records = max_records  # bounds how long one batch keeps requests waiting
        self._identity = BrokerIdentity(settings)
        self._epoch: str | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the measures topic from its beginning in the background; the topic must exist."""
        settings = self._settings
        # No group, so nothing is committed: aiokafka assigns every partition of the topic to this consumer
        # (and any added later), and each replica reads the whole compacted topic.
        consumer = AIOKafkaConsumer(settings.topic(MEASURES), bootstrap_servers=settings.resolved_kafka_bootstrap,
                                    group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=settings.fetch_max_wait_ms)
        await consumer.start()
        try:
            self._epoch = await self._identity.read()
            targets = await _from_the_beginning(consumer)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer, targets), name="query-read-model")
        self._task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        """Stop reading; the replica keeps what it has."""
        try:
            await stop_consuming(self._task, self._consumer)
        finally:
            self._task = self._consumer = None
            await self._identity.stop()

    async def healthy(self) -> bool:
        """Ready (caught up with the topic's end as it was at start) and still reading."""
        return self.ready and self._task is not None and not self._task.done()

    def _reset(self, provider_id: str) -> None:
        """An empty replica."""
        self.fold = Fold(provider_id)
        self.rollups = RollUps(self.fold.relationships)
        self._versions: dict[str, int] = {}  # party -> changes that can change its results
        self._results: dict[tuple, tuple] = {}  # (party, key...) -> (plans, version, result)

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Put one measures-topic record into the replica, keeping the roll-ups and change counts in step.

        A relationship's change counts for its party and for the party's manager (whose team measures
        add the party's up); a registration's for the party and for its manager before and after."""
        kind, party_id, *counterparty = json.loads(key)
        fold = self.fold
        if kind == "relationship":
            old = fold.relationships.get(party_id, {}).get(counterparty[0])
            apply_message(fold, key, value)
            self.rollups.replace(party_id, old, fold.relationships[party_id].get(counterparty[0]))
            self._changed(party_id)
        elif kind == "party":
            self._changed(party_id)
            apply_message(fold, key, value)
            self._changed(party_id)
        else:
            apply_message(fold, key, value)

    def _changed(self, party_id: str) -> None:
        versions = self._versions
        versions[party_id] = versions.get(party_id, 0) + 1
        party = self.fold.parties.get(party_id)
        for manager_id in () if party is None else party.managers():
            versions[manager_id] = versions.get(manager_id, 0) + 1

    def memo(self, party_id: str, key: tuple, compute: Callable[[], T]) -> T:
        """`compute()`, or what it gave for the same party and `key` when nothing it can read has changed since:
        the party's relationships and registration, those of its direct reports, the plans in force.

        `key` says what else the result depends on (what it is, the period, the day its windows end)."""
        version = self._versions.get(party_id, 0)
        entry = self._results.get((party_id, *key))
        if entry is not None and entry[0] is self.plans and entry[1] == version:
            return entry[2]
        if len(self._results) >= MAX_RESULTS:
            self._results.clear()
        result = compute()
        self._results[party_id, *key] = (self.plans, version, result)
        return result

    def totals(self, party_id: str, window: Window, counterparty_id: str | None = None,
               spans: list[Span] | None = None) -> Totals:
        """`Fold.totals` of the replica: a party's from its roll-up, one relationship's from the fold."""
        if counterparty_id is None:
            return self.rollups.totals(party_id, window, spans)
        return self.fold.totals(party_id, window, counterparty_id, spans)

    def direct_reports(self, manager_id: str) -> dict[str, list[Span]]:
        """`Fold.direct_reports` of the replica."""
        return self.fold.direct_reports(manager_id)

    def _apply(self, batches: Batches) -> None:
        """Put fetched records into the replica, in offset order per partition."""
        for tp, records in batches.items():
            for record in records:
                self.apply(record.key, record.value)
            self.positions[tp.partition] = records[-1].offset + 1
            POSITION.labels(str(tp.partition)).set(records[-1].offset + 1)
            RECORDS.inc(len(records))

    async def _run(self, consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> None:
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked > EPOCH_CHECK_S:
                checked = time.monotonic()
                targets = await self._same_log(consumer) or targets
            if not self.ready:
                self.ready = await _reached(consumer, targets)
            self._apply(await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=self._max_records))
            await asyncio.sleep(0)  # getmany returns buffered records without yielding: let requests in

    async def _same_log(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int] | None:
        """When the broker's log changed (`services.broker.identity`), start the replica again from the new
        log's beginning and return its new targets; the processor republishes every record there."""
        try:
            epoch = await self._identity.read()
        except KafkaError:
            return None  # the broker is away; look again later
        if epoch is None or epoch == self._epoch:
            return None
        log.warning("the broker's log changed: the replica of the measures is read again")
        self._reset(self._settings.provider_id)
        self.ready, self.positions, self._epoch = False, {}, epoch
        return await _from_the_beginning(consumer)


async def _from_the_beginning(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    """Seek every partition to its beginning; return the end offsets to reach before the replica is ready."""
    partitions = sorted(consumer.assignment())
    await consumer.seek_to_beginning(*partitions)
    return await consumer.end_offsets(partitions)


async def _reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
    # the fetch position, not the last record's offset: compaction may leave gaps before the end
    for tp, end in targets.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the measures consumer stopped; /healthz now fails", exc_info=task.exception())
