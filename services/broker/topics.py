"""The topics of SPEC §7, created idempotently with the partitions and replication from settings, and the
broker's identity (`services.broker.identity`)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code

from services.broker.identity import IDENTITY, IDENTITY_CONFIG, claim_epoch
from services.settings import Settings
from shared.events import DATA_MODELS, family_of

__all__ = ["DEAD_LETTER", "MEASURES", "SETTLEMENTS", "STREAM", "delete_topics", "ensure_topics", "inbound_topic",
           "inbound_topics", "topic_names"]

DEAD_LETTER = "events.dead-letter"
MEASURES = "measures"
SETTLEMENTS = "settlements"
STREAM = "processor.stream"  # the processor's input: the ledger and what its partitions send each other
_FAMILIES = tuple(dict.fromkeys(family_of(event_type) for event_type in DATA_MODELS))
_CONFIGS = {MEASURES: {"cleanup.policy": "compact"}}


def inbound_topic(family: str) -> str:
    """The unprefixed name of a family's inbound topic, e.g. `events.sales`."""
    return f"events.{family}"


def inbound_topics(settings: Settings) -> list[str]:
    """The full names of the five inbound topics, in family order."""
    return [settings.topic(inbound_topic(family)) for family in _FAMILIES]


_NAMES = (*(inbound_topic(family) for family in _FAMILIES), DEAD_LETTER, MEASURES, SETTLEMENTS, STREAM)


def topic_names(settings: Settings) -> list[str]:
    """The full names of every topic of this deployment, the identity topic first."""
    return [settings.topic(name) for name in (IDENTITY, *_NAMES)]


def _wanted(settings: Settings) -> list[NewTopic]:
    # one partition: one first record
    identity = NewTopic(settings.topic(IDENTITY), 1, settings.replication_factor, topic_configs=IDENTITY_CONFIG)
    return [identity, *(NewTopic(settings.topic(name), settings.partitions, settings.replication_factor,
                                 topic_configs=_CONFIGS.get(name, {})) for name in _NAMES)]


async def _create_missing(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap,
                                request_timeout_ms=settings.broker_timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in _wanted(settings) if topic.name not in existing]
        if not missing:
            return
        response = await admin.create_topics(missing)
    finally:
        await admin.close()
    for name, code, message in response.topic_errors:
        if code and for_code(code) is not TopicAlreadyExistsError:  # another process may have won the race
            raise for_code(code)(f"cannot create topic {name}: {message}")


async def ensure_topics(settings: Settings) -> str:
    """Create the topics missing on the configured broker and its identity; return its epoch."""
    await _create_missing(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.resolved_kafka_bootstrap, acks="all",
                                request_timeout_ms=settings.broker_timeout_ms)
    await producer.start()
    try:
        return await claim_epoch(settings, producer)
    finally:
        await producer.stop()


async def delete_topics(settings: Settings, *prefixes: str) -> list[str]:
    """Delete this deployment's topics (its identity with them) and every topic whose name starts with one of
    `prefixes` from the broker; return those it deleted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap,
                                request_timeout_ms=settings.broker_timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [name for name in topic_names(settings) if name in existing]
        present += sorted(name for name in existing - set(present) if prefixes and name.startswith(prefixes))
        if present:
            response = await admin.delete_topics(present)
            for name, code, *_ in response.topic_error_codes:
                if code and for_code(code) is not UnknownTopicOrPartitionError:
                    raise for_code(code)(f"cannot delete topic {name}")
        return present
    finally:
        await admin.close()
