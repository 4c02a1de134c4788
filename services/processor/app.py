"""The processor's Faust app, built by `create_app(settings)`, and `run_worker` to run it until stopped."""

from __future__ import annotations

import asyncio
import logging

import faust

from services.broker.topics import STREAM, ensure_topics
from services.logs import configure_logging
from services.processor.agent import fold_agent
from services.processor.transport import ProcessorApp
from services.processor.web import Status, add_ops_pages
from services.settings import Settings
from services.store.database import create_engine, create_sessions, migrate

__all__ = ["app_id", "create_app", "internal_topics_prefix", "run_worker"]

# A killed worker's group membership lapses after the session timeout, and a join waits for the members it
# knows up to the rebalance timeout (Faust's default is 60 s): keep restarts and hand-overs quick.
SESSION_TIMEOUT_S = 10.0
REBALANCE_TIMEOUT_S = 20.0
HEARTBEAT_INTERVAL_S = 1.0
QUIET_LOGGERS = {"faust": logging.WARNING, "mode": logging.WARNING,
                 "aiokafka": logging.CRITICAL}  # it logs every failed reconnect while the broker is away


def app_id(settings: Settings, epoch: str) -> str:
    """The Faust app id, also its consumer group: one per broker log, so that the workers of a new log join a
    group of their own (not one that waits for members killed with the old log, nor offsets committed in it)."""
    return f"{internal_topics_prefix(settings)}{epoch}"


def internal_topics_prefix(settings: Settings) -> str:
    """What the names of the topics Faust creates for the app (its assignor's) start with."""
    return f"{settings.topic_prefix}processor-"


def create_app(settings: Settings, epoch: str) -> faust.App:
    """The processor app of broker log `epoch`: one agent over the stream topic; its partitions' state is in the
    database."""
    app = ProcessorApp(
        app_id(settings, epoch), broker=f"kafka://{settings.resolved_kafka_bootstrap}", store="memory://",
        fetch_max_wait_ms=settings.fetch_max_wait_ms, idempotent_producer=settings.idempotent_producer,
        topic_partitions=settings.partitions, topic_replication_factor=settings.replication_factor,
        datadir=str(settings.data_dir / "processor"), web_enabled=True, web_port=settings.processor_web_port,
        web_bind=settings.api_host, web_host=settings.api_host, autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=SESSION_TIMEOUT_S, broker_heartbeat_interval=HEARTBEAT_INTERVAL_S,
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S)
    stream = app.topic(settings.topic(STREAM), partitions=settings.partitions, key_serializer="raw",
                       value_serializer="raw")
    status = Status()
    add_ops_pages(app, status)
    sessions = create_sessions(create_engine(settings.resolved_database_url))
    agent = fold_agent(app, settings, epoch, sessions, settings.topic(STREAM), status)
    app.agent(stream, name="fold", concurrency=1)(agent)
    return app


def run_worker(settings: Settings, loglevel: str = "INFO") -> None:
    """Create the topics and the schema, then run the processor in this process until it is stopped (never
    returns). Faust and mode log warnings and errors only, aiokafka nothing below critical; this service logs
    at `loglevel`, in CONVERGENCE_LOG_FORMAT (Faust's own logging setup, which has one format, is off)."""
    configure_logging(settings, "processor", loglevel)
    for noisy, level in QUIET_LOGGERS.items():
        logging.getLogger(noisy).setLevel(level)
    epoch = asyncio.run(ensure_topics(settings))
    asyncio.run(migrate(settings.resolved_database_url))
    (settings.data_dir / "processor").mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    app = create_app(settings, epoch)
    faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False).execute_from_commandline()
