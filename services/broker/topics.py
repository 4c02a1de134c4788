"""The topics of SPEC §7, created idempotently with the partitions and replication from settings."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from services.settings import Settings
from shared.events import DATA_MODELS, family_of

__all__ = ["DEAD_LETTER", "MEASURES", "SETTLEMENTS", "ensure_topics", "inbound_topic", "inbound_topics"]

DEAD_LETTER = "events.dead-letter"
MEASURES = "measures"
SETTLEMENTS = "settlements"
_FAMILIES = tuple(dict.fromkeys(family_of(event_type) for event_type in DATA_MODELS))
_CONFIGS = {MEASURES: {"cleanup.policy": "compact"}}


def inbound_topic(family: str) -> str:
    """The unprefixed name of a family's inbound topic, e.g. `events.sales`."""
    return f"events.{family}"


def inbound_topics(settings: Settings) -> list[str]:
    """The full names of the five inbound topics, in family order."""
    return [settings.topic(inbound_topic(family)) for family in _FAMILIES]


def _wanted(settings: Settings) -> list[NewTopic]:
    names = [*(inbound_topic(family) for family in _FAMILIES), DEAD_LETTER, MEASURES, SETTLEMENTS]
    return [NewTopic(settings.topic(name), settings.partitions, settings.replication_factor,
                     topic_configs=_CONFIGS.get(name, {})) for name in names]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics missing on the configured broker; return the names of those it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in _wanted(settings) if topic.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(missing)
    finally:
        await admin.close()
    for name, code, message in response.topic_errors:
        if code and for_code(code) is not TopicAlreadyExistsError:  # another process may have won the race
            raise for_code(code)(f"cannot create topic {name}: {message}")
    return [name for name, code, _ in response.topic_errors if not code]
