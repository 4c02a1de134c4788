"""The processor's Faust app, built by `create_app(settings)`, and `run_worker` to run it until stopped."""

from __future__ import annotations

import asyncio
import logging

import faust

from services.broker.topics import DEAD_LETTER, MEASURES, ensure_topics, inbound_topics
from services.processor.agent import fold_agent
from services.processor.transport import ProcessorApp
from services.processor.web import Status, add_ops_pages
from services.settings import Settings

__all__ = ["STATE_TABLE", "app_id", "create_app", "internal_topics", "run_worker"]

STATE_TABLE = "state"
# A killed worker's group membership lapses after the session timeout: keep restarts quick.
SESSION_TIMEOUT_S = 10.0
HEARTBEAT_INTERVAL_S = 1.0
QUIET_LOGGERS = {"faust": logging.WARNING, "mode": logging.WARNING,
                 "aiokafka": logging.CRITICAL}  # it logs every failed reconnect while the broker is away


def app_id(settings: Settings) -> str:
    """The Faust app id, also its consumer group and the prefix of its changelog topic."""
    return f"{settings.topic_prefix}processor"


def internal_topics(settings: Settings) -> list[str]:
    """The topics Faust creates for this app: the state's changelog and the assignor's."""
    return [f"{app_id(settings)}-{STATE_TABLE}-changelog", f"{app_id(settings)}-__assignor-__leader"]


def create_app(settings: Settings) -> faust.App:
    """The processor app: one agent over the inbound topics, one state table, the two output topics."""
    app = ProcessorApp(
        app_id(settings), broker=f"kafka://{settings.resolved_kafka_bootstrap}", store="memory://",
        fetch_max_wait_ms=settings.fetch_max_wait_ms, idempotent_producer=settings.idempotent_producer,
        topic_partitions=settings.partitions, topic_replication_factor=settings.replication_factor,
        datadir=str(settings.data_dir / "processor"), web_enabled=True, web_port=settings.processor_web_port,
        web_bind=settings.api_host, web_host=settings.api_host, autodiscover=False,
        table_standby_replicas=0, consumer_auto_offset_reset="earliest",
        broker_session_timeout=SESSION_TIMEOUT_S, broker_heartbeat_interval=HEARTBEAT_INTERVAL_S)
    # bytes keys and values: raw serializers; the partitioner places each key, whatever event wrote it.
    table = app.Table(STATE_TABLE, key_type=bytes, value_type=bytes, partitions=settings.partitions,
                      use_partitioner=True)
    source = app.topic(*inbound_topics(settings), partitions=settings.partitions, key_serializer="raw",
                       value_serializer="raw")
    status = Status()
    add_ops_pages(app, status)
    agent = fold_agent(settings, table, settings.topic(MEASURES), settings.topic(DEAD_LETTER), status)
    app.agent(source, name="fold", concurrency=1)(agent)
    return app


def run_worker(settings: Settings, loglevel: str = "INFO") -> None:
    """Create the topics, then run the processor in this process until it is stopped (never returns).

    Faust and mode log warnings and errors only, aiokafka nothing below critical; this service logs at
    `loglevel`.
    """
    asyncio.run(ensure_topics(settings))
    (settings.data_dir / "processor").mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    app = create_app(settings)
    for noisy, level in QUIET_LOGGERS.items():  # the worker's logging setup leaves named loggers' levels alone
        logging.getLogger(noisy).setLevel(level)
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
